"""Tests for `kmlc.export.lite_weights`: float32 weights stored as int8."""

import os

import numpy as np
import tensorflow as tf

from kmlc.export import lite
from kmlc.export.lite_runtime import Predictor
from kmlc.export.lite_weights import store_float_weights_as_int8


def dense_and_gather_model(kernel, bias, table, directory):
    """A float32 TFLite model: `x @ kernel + bias` and `table[indices]`."""
    module = tf.Module()

    @tf.function(
        input_signature=[
            tf.TensorSpec([2, kernel.shape[0]], tf.float32),
            tf.TensorSpec([3], tf.int32),
        ]
    )
    def model(x, indices):
        return {
            "dense": tf.matmul(x, tf.constant(kernel)) + tf.constant(bias),
            "gathered": tf.gather(tf.constant(table), indices),
        }

    module.model = model
    tf.saved_model.save(module, str(directory), signatures={"model": model})
    return tf.lite.TFLiteConverter.from_saved_model(str(directory)).convert()


def run_tflite(flatbuffer, **inputs):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return interpreter.get_signature_runner()(**inputs), interpreter


def test_float_weights_stored_as_int8(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 1, (64, 48)).astype("f4")
    kernel[:, 5] *= 100  # one output channel with a much larger range
    bias = rng.normal(0, 1, 48).astype("f4")
    table = rng.normal(0, 1, (50, 40)).astype("f4")
    x = rng.normal(0, 1, (2, 64)).astype("f4")
    indices = np.array([0, 7, 49], dtype="int32")
    float_model = dense_and_gather_model(kernel, bias, table, tmp_path)

    stored = store_float_weights_as_int8(float_model, min_elements=100)

    # The independent answer: numpy with the weights rounded to 255 levels
    # per channel (TFLite's FULLY_CONNECTED keeps the kernel as [out, in], so
    # channels are output columns; the gather table's are its rows).
    def rounded(values, axis):
        scale = np.abs(values).max(axis=axis, keepdims=True) / 127
        return np.round(values / scale) * scale

    outputs, interpreter = run_tflite(stored, x=x, indices=indices)
    np.testing.assert_allclose(
        outputs["dense"], x @ rounded(kernel, axis=0) + bias, rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        outputs["gathered"], rounded(table, axis=1)[indices], rtol=1e-6, atol=1e-6
    )
    float_outputs, _ = run_tflite(float_model, x=x, indices=indices)
    assert not np.array_equal(outputs["dense"], float_outputs["dense"])
    # Per-channel scales: the large column does not coarsen the others.
    column_error = np.abs(outputs["dense"] - float_outputs["dense"]).max(axis=0)
    assert column_error[5] > 20 * np.delete(column_error, 5).max()

    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops.count("DEQUANTIZE") == 2
    int8_tensors = {
        tuple(t["shape"]): t
        for t in interpreter.get_tensor_details()
        if np.dtype(t["dtype"]) == np.int8
    }
    assert set(int8_tensors) == {(48, 64), (50, 40)}
    assert len(int8_tensors[48, 64]["quantization_parameters"]["scales"]) == 48
    # The bias (48 < 100 entries) stays float32; 4 bytes a weight become 1.
    saved = len(float_model) - len(stored)
    weights = kernel.size + table.size
    assert 0.7 * 3 * weights < saved < 3 * weights


def test_float_weights_below_the_size_limit_are_kept(tmp_path):
    rng = np.random.default_rng(1)
    float_model = dense_and_gather_model(
        rng.normal(size=(8, 4)).astype("f4"),
        np.zeros(4, "f4"),
        rng.normal(size=(5, 3)).astype("f4"),
        tmp_path,
    )
    assert store_float_weights_as_int8(float_model) == float_model


def test_int8_and_dynamic_store_the_remaining_float_weights(
    saved_model_dir, images, tmp_path
):
    paths = {}
    for mode, int8_weights in (("int8", True), ("int8", False), ("dynamic", True)):
        paths[mode, int8_weights] = lite.convert(
            saved_model_dir,
            tmp_path / f"{mode}{int8_weights}.tflite",
            quantize=mode,
            representative_data=[images],
            int8_weights=int8_weights,
        )
    contracts = {key: Predictor(p).contract for key, p in paths.items()}
    size = {key: os.path.getsize(path) for key, path in paths.items()}
    assert size["int8", True] < 0.9 * size["int8", False]
    assert contracts["int8", True]["int8_weights"] is True
    assert contracts["int8", False]["int8_weights"] is False
    assert contracts["dynamic", True]["int8_weights"] is True
    # Both int8 models compute the same labels: only the weights' storage differs.
    with_int8, with_float = (
        Predictor(paths["int8", flag]).logits(images) for flag in (True, False)
    )
    scale = np.abs(with_float).max()
    np.testing.assert_allclose(with_int8, with_float, atol=0.05 * scale)
