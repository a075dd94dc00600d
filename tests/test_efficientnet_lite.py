"""EfficientNet-Lite: the architecture, its ImageNet weights and their errors.

The independent answer for the weights is ImageNet itself: Corel-5k photos
whose labels are ImageNet classes get those classes from the pretrained
classifier.
"""

import importlib.util

import keras
import numpy as np
import pytest
from PIL import Image

from kmlc import backbones
from kmlc import efficientnet_lite as el
from kmlc import torch_checkpoint
from kmlc.layers import ImagePreprocessing
from tests import torch_files

# Corel-5k label -> the ImageNet classes that name it.
IMAGENET_CLASSES = {
    "tiger": {292},
    "polar": {296},  # ice bear
    "zebra": {340},
    "grizzly": {294},  # brown bear
}


@pytest.mark.parametrize(
    "variant, blocks, head_input",
    [
        ("efficientnet_lite0", 16, 320),
        ("efficientnet_lite1", 21, 320),
        ("efficientnet_lite2", 21, 352),
    ],
)
def test_layout_matches_the_published_checkpoints(variant, blocks, head_input):
    layout = el.block_layout(variant)
    assert len(layout) == blocks
    assert layout[0][3] == 32 and layout[-1][4] == head_input
    model = el.efficientnet_lite(variant, include_top=True)
    state = torch_checkpoint.read_state_dict(el.imagenet_checkpoint(variant))
    counted = sum(
        v.size for k, v in state.items() if not k.endswith("num_batches_tracked")
    )
    assert model.count_params() == counted


def test_feature_map_shape():
    model, spec = backbones.build_backbone("efficientnet_lite0", (96, 64))
    assert spec.preprocessing == "lite"
    assert tuple(model.output.shape) == (None, 3, 2, 1280)


def test_imagenet_head_names_corel_photos(corel5k_dir):
    import json

    samples = json.loads((corel5k_dir / "train.json").read_text())["samples"]
    model = el.efficientnet_lite("efficientnet_lite0", include_top=True)
    el.load_weights(model, "efficientnet_lite0", "imagenet")
    preprocess = ImagePreprocessing("lite")
    for label, classes in IMAGENET_CLASSES.items():
        names = [s["image_name"] for s in samples if label in s["image_labels"]][:6]
        images = np.stack(
            [
                np.asarray(
                    Image.open(corel5k_dir / "images" / name)
                    .convert("RGB")
                    .resize((224, 224), Image.BILINEAR),
                    np.float32,
                )
                for name in names
            ]
        )
        top1 = np.argmax(np.asarray(model(preprocess(images))), axis=-1)
        hits = sum(int(c) in classes for c in top1)
        assert hits >= 5, (label, top1)


def test_imagenet_weights_through_build_backbone_and_a_file(tmp_path):
    from_package, _ = backbones.build_backbone("efficientnet-lite0", 64, "imagenet")
    path = tmp_path / "lite0.pth"
    state = torch_checkpoint.read_state_dict(
        el.imagenet_checkpoint("efficientnet_lite0")
    )
    torch_files.write_zip(path, state)
    from_file, _ = backbones.build_backbone("EfficientNetLite0", 64, str(path))
    random, _ = backbones.build_backbone("efficientnet_lite0", 64)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(from_package(x), from_file(x), atol=1e-6)
    assert not np.allclose(from_package(x), random(x), atol=1e-3)


def test_a_checkpoint_of_another_variant_names_key_and_shapes():
    model = el.efficientnet_lite("efficientnet_lite0", (64, 64, 3))
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(ValueError) as error:
        el.load_weights(
            model, "efficientnet_lite0", el.imagenet_checkpoint("efficientnet_lite2")
        )
    # Lite2 has 3 blocks in stage 2, Lite0 2: block 3 is k3 there, k5 here.
    message = str(error.value)
    assert "efficientnet-lite2" in message
    assert "'_blocks.3._depthwise_conv.weight' has shape (144, 1, 3, 3)" in message
    assert "'block3_dwconv'" in message and "needs (144, 1, 5, 5)" in message
    # Nothing was set.
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_missing_and_unmatched_keys():
    model = el.efficientnet_lite("efficientnet_lite0", (64, 64, 3))
    state = torch_checkpoint.read_state_dict(
        el.imagenet_checkpoint("efficientnet_lite0")
    )
    missing = {k: v for k, v in state.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(ValueError, match=r"'_blocks.3._bn1.running_var' is missing"):
        el.load_state_dict(model, missing)
    extra = dict(state, **{"_blocks.99._bn1.weight": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match=r"'_blocks.99._bn1.weight' matches no layer"):
        el.load_state_dict(model, extra)


def test_a_missing_package_names_the_pip_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.endswith("pytorch_model") else real(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite1"):
        backbones.build_backbone("efficientnet_lite1", 64, "imagenet")


def test_offline_keras_imagenet_download_says_what_to_do(monkeypatch):
    def fail(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5")

    monkeypatch.setattr(keras.applications, "MobileNetV2", fail)
    with pytest.raises(ConnectionError) as error:
        backbones.build_backbone("mobilenetv2", 96, "imagenet")
    message = str(error.value)
    assert "Could not download" in message and "MobileNetV2" in message
    assert "weights: null" in message and "efficientnet_lite0" in message
