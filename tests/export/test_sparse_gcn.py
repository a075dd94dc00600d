"""A model whose GCN propagates over an edge list exports as a dense one
does: the SavedModel, and TFLite float32 and int8 (heads in float)."""

import numpy as np
import pytest
import tensorflow as tf

from kmlc.export import lite
from kmlc.export import saved_model
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx
from tests.test_model_scale import _large_model

NUM_LABELS = 300


@pytest.fixture(scope="module")
def model():
    model = _large_model(num_labels=NUM_LABELS)
    assert model.label_gcn.propagation == "sparse"
    return model


@pytest.fixture(scope="module")
def saved_model_dir(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("sm") / "model")
    saved_model.write_saved_model(model, directory, warmup=False)
    return directory


@pytest.fixture(scope="module")
def images():
    return fx.images(3, seed=1)


def _keras_logits(model, images):
    return np.asarray(model(images, training=False))


def _ops(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return {op["op_name"] for op in interpreter._get_ops_details()}, interpreter


@pytest.mark.parametrize("batch", [1, 3])
def test_saved_model_matches_keras(model, saved_model_dir, images, batch):
    serving = tf.saved_model.load(saved_model_dir).signatures["serving_images"]
    got = serving(images=tf.constant(images[:batch]))["logits"].numpy()
    expected = _keras_logits(model, images[:batch])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_tflite_float32_matches_keras(model, saved_model_dir, images, tmp_path):
    path = lite.convert(saved_model_dir, str(tmp_path / "f32.tflite"))
    ops, _ = _ops(path)
    assert {"GATHER", "SEGMENT_SUM"} <= ops  # the edge-list product
    expected = _keras_logits(model, images)
    np.testing.assert_allclose(
        Predictor(path).logits(images),
        expected,
        atol=1e-5 * np.abs(expected).max(),
    )


def test_tflite_int8_keeps_the_edge_list_product_in_float(
    model, saved_model_dir, images, tmp_path
):
    path = lite.convert(
        saved_model_dir,
        str(tmp_path / "int8.tflite"),
        quantize="int8",
        representative_data=[fx.images(8, seed=2)],
    )
    ops, interpreter = _ops(path)
    assert "SEGMENT_SUM" in ops
    gcn_types = {
        str(np.dtype(t["dtype"]))
        for t in interpreter.get_tensor_details()
        if "/label_gcn" in t["name"]
    }
    assert gcn_types <= {"float32", "int32"}
    quantized = {
        str(np.dtype(t["dtype"]))
        for t in interpreter.get_tensor_details()
        if "tiny_backbone" in t["name"]
    }
    assert "int8" in quantized  # the backbone is quantized
    got = Predictor(path).logits(images)
    expected = _keras_logits(model, images)
    assert got.shape == expected.shape
    # The backbone's int8 error moves the logits a little; the heads' float
    # product keeps their ranking.
    for row_got, row_expected in zip(got, expected, strict=True):
        assert np.corrcoef(row_got, row_expected)[0, 1] > 0.95


def test_onnx_matches_keras(model, images, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from kmlc.export.onnx import export_onnx

    path = export_onnx(model, str(tmp_path / "model.onnx"))
    session = onnxruntime.InferenceSession(path)
    got = session.run(["logits"], {"images": images})[0]
    np.testing.assert_allclose(got, _keras_logits(model, images), atol=1e-5)
