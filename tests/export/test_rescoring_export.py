"""A model with co-occurrence re-scoring exports with it: the SavedModel
and TFLite float32 give the re-scored logits, in the dense and the
edge-list form of TG."""

import numpy as np
import pytest
import tensorflow as tf

from kmlc import rescoring
from kmlc.export import lite
from kmlc.export import saved_model
from kmlc.export.lite_runtime import Predictor
from kmlc.layers import CooccurrenceRescoring
from kmlc.model import MultiLabelClassifier
from tests import model_fixtures as fx


def _model(propagation):
    base = fx.tiny_model("full", seed=0)
    layer = CooccurrenceRescoring(
        *rescoring.statistics(fx.tiny_graph()),
        gamma=2.0,
        propagation=propagation,
        dtype="float32",
        name="rescoring",
    )
    return base, MultiLabelClassifier.from_config(
        dict(base.get_config(), rescoring=layer)
    )


@pytest.fixture(scope="module", params=["dense", "sparse"])
def models(request, tmp_path_factory):
    base, model = _model(request.param)
    model.set_weights(base.get_weights() + model.rescoring.get_weights())
    directory = str(tmp_path_factory.mktemp("sm") / "model")
    saved_model.write_saved_model(model, directory, warmup=False)
    return base, model, directory, request.param


def test_the_model_rescores(models):
    base, model, _, _ = models
    x = fx.images(3, seed=1)
    assert not np.allclose(np.asarray(model(x)), np.asarray(base(x)), atol=1e-3)
    expected = rescoring.rescore(
        np.asarray(base(x)), *rescoring.statistics(fx.tiny_graph()), gamma=2.0
    )
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 3])
def test_saved_model_matches_keras(models, batch):
    _, model, directory, _ = models
    x = fx.images(3, seed=1)[:batch]
    serving = tf.saved_model.load(directory).signatures["serving_images"]
    got = serving(images=tf.constant(x))["logits"].numpy()
    np.testing.assert_allclose(got, np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_tflite_float32_matches_keras(models, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    _, model, directory, propagation = models
    path = lite.convert(directory, str(tmp_path / "f32.tflite"))
    ops = {op["op_name"] for op in Interpreter(model_path=path)._get_ops_details()}
    if propagation == "sparse":
        assert {"GATHER", "SEGMENT_SUM"} <= ops
    x = fx.images(3, seed=1)
    expected = np.asarray(model(x))
    np.testing.assert_allclose(
        Predictor(path).logits(x), expected, atol=1e-5 * np.abs(expected).max()
    )


def test_onnx_matches_keras(models, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from kmlc.export.onnx import export_onnx

    _, model, _, _ = models
    x = fx.images(3, seed=1)
    path = export_onnx(model, str(tmp_path / "model.onnx"))
    got = onnxruntime.InferenceSession(path).run(["logits"], {"images": x})[0]
    np.testing.assert_allclose(got, np.asarray(model(x)), atol=1e-5)
