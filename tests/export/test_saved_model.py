"""Tests for `kmlc.export.saved_model`: the TF Serving SavedModel."""

import errno
import io
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import kmlc
from kmlc import export
from kmlc.export import saved_model
from tests import model_fixtures as fx

SIZE = fx.IMAGE_SIZE
LABELS = fx.LABEL_NAMES
D = len(LABELS)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    version_dir = export.export_saved_model(model, base, "tiny")
    return base, version_dir


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[1])


def random_images(batch, seed=0):
    return fx.images(batch, seed=seed).round()


def encode(array, fmt, mode="RGB"):
    image = Image.fromarray(np.asarray(array, dtype=np.uint8))
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def pil_decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype="float32")


def sigmoid(x):
    """The independent answer for `scores`: float64 NumPy."""
    return 1.0 / (1.0 + np.exp(-x.astype("float64")))


def test_layout_and_first_version(exported):
    base, version_dir = exported
    assert version_dir == os.path.join(base, "tiny", "1")
    assert sorted(os.listdir(os.path.join(base, "tiny"))) == ["1"]
    for path in (
        "saved_model.pb",
        "variables",
        "assets/labels.txt",
        "assets/kmlc_config.json",
        "assets.extra/tf_serving_warmup_requests",
    ):
        assert os.path.exists(os.path.join(version_dir, path)), path


def signature_section(text, name):
    match = re.search(
        rf"signature_def\['{name}'\]:(.*?)(?=signature_def\[|\Z)", text, re.S
    )
    assert match, f"signature {name} not listed"
    return match.group(1)


def tensor_info(section, io_kind, key):
    block = section.split(
        f"The given SavedModel SignatureDef contains the following {io_kind}"
    )[1]
    match = re.search(
        rf"\['{key}'\] tensor_info:\s*dtype: (\w+)\s*shape: (\([^)]*\))", block
    )
    assert match, f"{io_kind} {key} not listed"
    return match.group(1), match.group(2)


def test_saved_model_cli_lists_both_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "show", "--dir", exported[1], "--all"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    text = result.stdout
    default = signature_section(text, "serving_default")
    images = signature_section(text, "serving_images")
    assert tensor_info(default, "input", "images") == ("DT_STRING", "(-1)")
    assert tensor_info(images, "input", "images") == (
        "DT_FLOAT",
        f"(-1, {SIZE}, {SIZE}, 3)",
    )
    for section in (default, images):
        assert tensor_info(section, "output", "scores") == ("DT_FLOAT", f"(-1, {D})")
        assert tensor_info(section, "output", "logits") == ("DT_FLOAT", f"(-1, {D})")
        assert tensor_info(section, "output", "decisions") == (
            "DT_BOOL",
            f"(-1, {D})",
        )
        assert tensor_info(section, "output", "label_names") == (
            "DT_STRING",
            f"(-1, {D})",
        )


@pytest.mark.parametrize("batch", [1, 3])
def test_float_signature_matches_keras(model, loaded, batch):
    images = random_images(batch, seed=batch)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    outputs = loaded.signatures["serving_images"](images=tf.constant(images))
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(outputs["scores"].numpy(), sigmoid(expected), atol=1e-5)
    names = outputs["label_names"].numpy().astype(str)
    assert names.shape == (batch, len(LABELS))
    assert (names == np.array(LABELS)).all()


@pytest.mark.parametrize("batch", [1, 4])
def test_bytes_signature_matches_keras_on_png(model, loaded, batch):
    arrays = random_images(batch, seed=10 + batch)
    encoded = [encode(array, "PNG") for array in arrays]
    decoded = np.stack([pil_decode(data) for data in encoded])
    expected = keras.ops.convert_to_numpy(model(decoded, training=False))
    outputs = loaded.signatures["serving_default"](images=tf.constant(encoded))
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(outputs["scores"].numpy(), sigmoid(expected), atol=1e-5)
    assert outputs["label_names"].shape == (batch, len(LABELS))


def test_bytes_signature_decodes_formats_and_resizes(model, loaded):
    rng = np.random.default_rng(3)
    # Smooth images (JPEG keeps them close), at other sizes than the model's.
    ramp = np.linspace(0, 255, 48)
    smooth = np.stack(
        [
            np.tile(ramp, (40, 1)),
            np.tile(ramp[:40, None], (1, 48)),
            np.full((40, 48), 90),
        ],
        axis=-1,
    )
    encoded = [
        encode(smooth, "JPEG"),
        encode(rng.integers(0, 256, (20, 24, 3)), "PNG", mode="L"),
        encode(rng.integers(0, 256, (SIZE, SIZE, 3)), "PNG", mode="RGBA"),
        encode(rng.integers(0, 256, (SIZE, SIZE, 3)), "BMP"),
        encode(rng.integers(0, 256, (SIZE, SIZE, 3)), "GIF"),
    ]
    # PIL decodes (grayscale -> 3 channels, alpha dropped, palettes applied),
    # then the pipeline's bilinear resize without crop.
    decoded = np.stack(
        [
            tf.image.resize(pil_decode(data), (SIZE, SIZE), method="bilinear").numpy()
            for data in encoded
        ]
    )
    expected = keras.ops.convert_to_numpy(model(decoded, training=False))
    outputs = loaded.signatures["serving_default"](images=tf.constant(encoded))
    np.testing.assert_allclose(outputs["logits"].numpy(), expected, atol=1e-4)


def test_assets(exported, model):
    version_dir = exported[1]
    with open(os.path.join(version_dir, "assets", "labels.txt"), encoding="utf-8") as f:
        assert f.read().splitlines() == LABELS
    with open(os.path.join(version_dir, "assets", "kmlc_config.json")) as f:
        config = json.load(f)
    assert config["heads"] == list(model.heads)
    assert config["image_size"] == [SIZE, SIZE]
    assert config["num_labels"] == len(LABELS)
    assert config["preprocessing"] == "none"
    assert config["backbone"] == "custom:tiny_backbone"
    assert config["kmlc_version"] == kmlc.__version__
    assert config["signatures"] == ["serving_default", "serving_images"]
    # The layers an int8 TFLite conversion keeps in float: every head layer
    # of the "full" preset, not the trunk, the final sum or the output.
    assert config["head_layers"] == [
        "feature_activation",
        "label_gcn",
        "knowledge_fusion",
        "gcn_scores",
        "attention_prior",
        "relation_attention",
    ]
    assert saved_model.read_config(version_dir) == config
    assert saved_model.read_labels(version_dir) == LABELS


def test_warmup_requests_parse_and_run(exported, loaded):
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(exported[1], "assets.extra", "tf_serving_warmup_requests")
    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    assert len(records) == 1
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    request = log.predict_log.request
    assert request.model_spec.name == "tiny"
    assert request.model_spec.signature_name == "serving_default"
    images = tf.make_ndarray(request.inputs["images"])
    assert images.shape == (1,)
    assert pil_decode(images[0]).shape[2] == 3
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    assert outputs["scores"].shape == (1, len(LABELS))


def test_versions_increment_and_are_never_overwritten(exported, model):
    base = exported[0]
    second = export.export_saved_model(model, base, "tiny")
    assert second == os.path.join(base, "tiny", "2")
    assert export.existing_versions(os.path.join(base, "tiny")) == [1, 2]
    stamp = os.path.getmtime(os.path.join(second, "saved_model.pb"))
    with pytest.raises(FileExistsError, match=r"Version 2 .*never overwritten"):
        export.export_saved_model(model, base, "tiny", version=2)
    assert os.path.getmtime(os.path.join(second, "saved_model.pb")) == stamp
    assert sorted(os.listdir(os.path.join(base, "tiny"))) == ["1", "2"]


def fake_writer(calls):
    def write(model, directory, name="kmlc", warmup=True, max_image_pixels=None):
        calls.append(directory)
        os.makedirs(directory)
        with open(os.path.join(directory, "saved_model.pb"), "wb") as f:
            f.write(b"x")

    return write


def test_explicit_version_then_next(model, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(saved_model, "write_saved_model", fake_writer(calls))
    assert export.export_saved_model(model, tmp_path, "m", version=7).endswith("7")
    assert export.export_saved_model(model, tmp_path, "m").endswith("8")
    # Written beside its final place under a name TF Serving ignores.
    for directory in calls:
        assert os.path.dirname(directory) == os.path.join(tmp_path, "m")
        assert os.path.basename(directory).startswith(".tmp-")
    assert sorted(os.listdir(tmp_path / "m")) == ["7", "8"]


def test_disk_full_leaves_no_version(model, tmp_path, monkeypatch):
    def no_space(version_dir, model_name):
        with open(os.path.join(version_dir, "partial"), "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(saved_model, "_write_warmup", no_space)
    with pytest.raises(OSError, match="No space left .*version 1") as info:
        export.export_saved_model(model, tmp_path, "m")
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path / "m") == []


def test_tensorflows_disk_full_error_says_no_space(model, tmp_path, monkeypatch):
    # tf.saved_model.save reports a full disk as ResourceExhaustedError.
    def full_disk(obj, directory, signatures=None, options=None):
        os.makedirs(os.path.join(directory, "variables"))
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{directory}/variables/x; No space left on device"
        )

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    with pytest.raises(OSError, match="No space left .*version 1 of model 'm'"):
        export.export_saved_model(model, tmp_path, "m")
    assert os.listdir(tmp_path / "m") == []


def test_a_killed_exports_leftovers_are_removed_by_the_next(model, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / "m" / f".tmp-1.{dead.pid}.{'0' * 32}"
    os.makedirs(leftover / "variables")
    export.export_saved_model(model, tmp_path, "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]


def test_failure_inside_saved_model_save_leaves_nothing(model, tmp_path, monkeypatch):
    def broken_save(obj, directory, signatures=None, options=None):
        os.makedirs(os.path.join(directory, "variables"))
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="writer crashed"):
        export.export_saved_model(model, tmp_path, "m", version=3)
    assert os.listdir(tmp_path / "m") == []


def test_base_path_that_is_a_file(model, tmp_path):
    path = tmp_path / "not_a_dir"
    path.write_text("x")
    with pytest.raises(ValueError, match="base path must be a directory.*not_a_dir"):
        export.export_saved_model(model, path, "m")


def test_model_dir_that_is_a_file(model, tmp_path):
    (tmp_path / "m").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory of versions"):
        export.export_saved_model(model, tmp_path, "m")


@pytest.mark.parametrize("name", ["", "a/b", ".hidden"])
def test_bad_names(model, tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        export.export_saved_model(model, tmp_path, name)


@pytest.mark.parametrize("version", [-1, 1.5, True])
def test_bad_versions(model, tmp_path, version):
    with pytest.raises(ValueError, match="non-negative integer"):
        export.export_saved_model(model, tmp_path, "m", version=version)


def test_unbuilt_model(tmp_path):
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="never built"):
        export.export_saved_model(model, tmp_path, "m")
    assert not os.path.exists(tmp_path / "m")


@pytest.fixture(scope="module")
def limited(model, tmp_path_factory):
    """An export whose bytes signature refuses images over 2,000 pixels."""
    base = tmp_path_factory.mktemp("limited")
    version_dir = export.export_saved_model(model, base, "tiny", max_image_pixels=2000)
    return version_dir, tf.saved_model.load(version_dir)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
def test_bytes_signature_refuses_images_over_its_pixel_limit(limited, fmt):
    version_dir, loaded = limited
    rng = np.random.default_rng(5)
    small = encode(rng.integers(0, 256, (40, 40, 3)), fmt)  # 1,600 pixels
    large = encode(rng.integers(0, 256, (50, 60, 3)), fmt)  # 3,000 pixels
    signature = loaded.signatures["serving_default"]
    assert signature(images=tf.constant([small]))["scores"].shape == (1, D)
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 2,000"):
        signature(images=tf.constant([small, large]))
    with open(os.path.join(version_dir, "assets", "kmlc_config.json")) as f:
        assert json.load(f)["max_image_pixels"] == 2000


def test_a_png_declaring_20000_by_20000_is_refused_before_decoding(limited):
    _, loaded = limited
    png = bytearray(encode(np.zeros((8, 8, 3)), "PNG"))
    png[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width and height
    with pytest.raises(tf.errors.InvalidArgumentError, match="limit of 2,000"):
        loaded.signatures["serving_default"](images=tf.constant([bytes(png)]))
