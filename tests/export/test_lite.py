"""Tests for `kmlc.export.lite`: TFLite conversion, against the Keras model."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kmlc
from kmlc.export import lite
from kmlc.export.lite_runtime import Predictor
from kmlc.precision import is_mixed_precision
from kmlc.precision import to_float32
from tests import model_fixtures as fx

LABELS = fx.LABEL_NAMES
SIZE = fx.IMAGE_SIZE

# Bounds on |TFLite logits - Keras logits|, relative to the largest |logit|
# of the batch. Measured on these four images (heads "full"): float32
# 2e-7, float16 3.5e-4, dynamic 2.8e-3, int8 5.6e-3 (calibrated on the same
# images; 4.9e-3 on others). Each bound is three to six times the measure
# and at most half the error of a model that ignored its input (which
# `test_each_mode_computes_what_keras_computes` checks).
TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "dynamic": 1e-2, "int8": 2e-2}


def calibration(images):
    """The int8 models' representative data."""
    return [images, images[::-1]]


@pytest.fixture(scope="module")
def converted(saved_model_dir, images, tmp_path_factory):
    directory = tmp_path_factory.mktemp("lite")
    paths = {}
    for mode in lite.QUANTIZE_MODES:
        paths[mode] = lite.convert(
            saved_model_dir,
            str(directory / f"{mode}.tflite"),
            quantize=mode,
            representative_data=calibration(images),
        )
    return paths


def keras_logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.mark.parametrize("mode", lite.QUANTIZE_MODES)
def test_each_mode_computes_what_keras_computes(converted, model, images, mode):
    predictor = Predictor(converted[mode])
    expected = keras_logits(model, images).astype("float64")
    tolerance = TOLERANCE[mode] * np.abs(expected).max()
    # The bound tells models apart: a model that ignored its input (giving
    # the label means) or mixed up the images would exceed it.
    assert tolerance < 0.5 * np.abs(expected - expected.mean(axis=0)).max()
    assert tolerance < 0.5 * np.abs(expected - expected[::-1]).max()
    np.testing.assert_allclose(predictor.logits(images), expected, atol=tolerance)
    # The sigmoid is 1/4-Lipschitz: the scores are within a quarter of it.
    np.testing.assert_allclose(
        predictor.predict(images), 1 / (1 + np.exp(-expected)), atol=tolerance / 4
    )
    # Each image's best label is Keras' best label.
    np.testing.assert_array_equal(
        predictor.logits(images).argmax(axis=1), expected.argmax(axis=1)
    )
    assert predictor.label_names == LABELS
    assert predictor.image_size == (SIZE, SIZE)
    assert predictor.contract["quantize"] == mode
    assert predictor.contract["input"]["range"] == [0.0, 255.0]
    assert predictor.contract["input"]["color"] == "RGB"


def test_sizes_shrink_with_quantization(converted):
    size = {mode: os.path.getsize(path) for mode, path in converted.items()}
    assert size["float16"] < size["float32"]
    assert size["dynamic"] < size["float16"]


def test_signature_has_named_inputs_and_outputs(converted):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=converted["float32"])
    assert interpreter.get_signature_list() == {
        "serving_images": {"inputs": ["images"], "outputs": ["logits", "scores"]}
    }


def test_keras_model_argument(model, images, tmp_path):
    path = lite.convert(model, tmp_path / "m.tflite")
    expected = keras_logits(model, images)
    np.testing.assert_allclose(
        Predictor(path).logits(images), expected, atol=1e-5 * abs(expected).max()
    )
    with open(path + ".labels.txt", encoding="utf-8") as f:
        assert f.read().splitlines() == LABELS


def test_int8_io(saved_model_dir, converted, images, tmp_path):
    path = lite.convert(
        saved_model_dir,
        tmp_path / "io.tflite",
        quantize="int8",
        representative_data=calibration(images),  # as `converted["int8"]`
        int8_io=True,
    )
    predictor = Predictor(path)
    assert predictor.contract["input"]["dtype"] == "int8"
    assert predictor.contract["outputs"]["logits"]["dtype"] == "int8"
    # Int8 I/O is only a quantize/dequantize around the same int8 graph.
    float_io = Predictor(converted["int8"])
    scale = predictor.contract["outputs"]["logits"]["quantization"]["scale"]
    np.testing.assert_allclose(
        predictor.logits(images), float_io.logits(images), atol=2 * scale
    )


def test_mixed_precision_model_converts(tmp_path, images):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = fx.tiny_model(heads="full", seed=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert is_mixed_precision(model)
    path = lite.convert(model, tmp_path / "mixed.tflite")
    assert keras.mixed_precision.global_policy().name == previous
    assert is_mixed_precision(model)  # the user's model is untouched
    float32_model = to_float32(model)
    assert not is_mixed_precision(float32_model)
    expected = keras_logits(float32_model, images)
    got = Predictor(path).logits(images)
    np.testing.assert_allclose(got, expected, atol=1e-5 * abs(expected).max())
    # ... and close to the float16 model itself.
    mixed = keras_logits(model, images)
    np.testing.assert_allclose(got, mixed, atol=1e-2 * abs(mixed).max())


# === Errors ===


def test_int8_without_representative_data(saved_model_dir, tmp_path):
    with pytest.raises(
        ValueError, match=r"needs representative_data.*\[batch, 32, 32, 3\]"
    ):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", quantize="int8")


def test_int8_with_empty_representative_data(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"empty.*\[batch, 32, 32, 3\]"):
        lite.convert(
            saved_model_dir,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=[],
        )
    assert not os.path.exists(tmp_path / "m.tflite")


def test_int8_with_wrong_shape(saved_model_dir, tmp_path):
    wrong = [np.zeros((2, 16, 16, 3), "float32")]
    with pytest.raises(
        ValueError,
        match=r"\[batch, 32, 32, 3\].*Received: a batch of shape \(2, 16, 16, 3\)",
    ):
        lite.convert(
            saved_model_dir,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=wrong,
        )


def test_bad_quantize_mode(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", quantize="int4")


def test_int8_io_needs_int8(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="int8_io=True needs quantize='int8'"):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", int8_io=True)


def test_output_path_is_a_directory(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        lite.convert(saved_model_dir, tmp_path)


def test_missing_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="SavedModel directory"):
        lite.convert(str(tmp_path / "nope"), tmp_path / "m.tflite")


def test_failed_conversion_keeps_the_old_file(saved_model_dir, tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lite, "embed_metadata", no_space)
    with pytest.raises(OSError, match="No space left"):
        lite.convert(saved_model_dir, target)
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]


def test_unsupported_op_names_layer_and_op(tmp_path):
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, strides=2),
            keras.layers.Lambda(lambda x: tf.math.bessel_i0e(x), name="odd_op"),
            keras.layers.Conv2D(16, 3, strides=2),
        ],
        name="odd_backbone",
    )
    model = kmlc.build_model(
        len(LABELS), backbone=backbone, image_size=SIZE, heads="baseline"
    )
    with pytest.raises(
        ValueError, match=r"layer 'kmlc/odd_backbone/odd_op' uses op 'BesselI0e'"
    ):
        lite.convert(model, tmp_path / "m.tflite")
    assert not os.path.exists(tmp_path / "m.tflite")


def test_unsupported_ops_parser():
    message = (
        "Could not translate MLIR to FlatBuffer.<unknown>:0: error: "
        'loc(callsite(fused["Erfinv:", "kmlc_1/head_2/Erfinv@__inference_serving_1"] '
        'at fused["StatefulPartitionedCall:", "StatefulPartitionedCall_1"])): '
        "'tf.Erfinv' op is neither a custom op nor a flex op\n"
        'loc(fused["Erfinv:", "kmlc_1/head_2/Erfinv@__inference_serving_1"]): '
        "'tf.Erfinv' op is neither a custom op nor a flex op\n"
    )
    assert lite.unsupported_ops(message) == [("kmlc/head", "Erfinv")]
    assert lite.unsupported_ops("some other failure") == []


def test_other_converter_errors_are_summarised(saved_model_dir, tmp_path, monkeypatch):
    class FailingConverter:
        def convert(self):
            raise RuntimeError("first line of a converter failure\nlong MLIR dump")

    monkeypatch.setattr(
        tf.lite.TFLiteConverter,
        "from_saved_model",
        staticmethod(lambda *args, **kwargs: FailingConverter()),
    )
    with pytest.raises(
        RuntimeError, match=r"TFLite conversion failed: first line .*float32"
    ):
        lite.convert(saved_model_dir, tmp_path / "m.tflite")
