"""Per-label thresholds in every export: the SavedModel's `decisions`, the
TFLite contract and `Predictor.decisions`, the ONNX contract; each against
`scores >= model.thresholds` from Keras."""

import io
import json

import keras
import numpy as np
import onnxruntime
import pytest
import tensorflow as tf
from PIL import Image

from kmlc.export import lite
from kmlc.export import onnx as kmlc_onnx
from kmlc.export import saved_model
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx

D = fx.NUM_LABELS


@pytest.fixture(scope="module")
def images():
    return fx.images(8, seed=11).round()  # whole values: PNG keeps them


@pytest.fixture(scope="module")
def model(images):
    """The tiny model, its thresholds between its 4th and 5th score of each
    label on `images`: half the images over each, none near a threshold."""
    model = fx.tiny_model(seed=3, label_names=fx.LABEL_NAMES)
    scores = keras_scores(model, images)
    ordered = np.sort(scores, axis=0)[::-1]
    assert (ordered[3] - ordered[4]).min() > 1e-4  # far apart beyond float error
    model.set_thresholds((ordered[3] + ordered[4]) / 2)
    return model


def keras_scores(model, images):
    logits = keras.ops.convert_to_numpy(model(images, training=False))
    return 1 / (1 + np.exp(-logits.astype(np.float64)))


def expected_decisions(model, images):
    decisions = keras_scores(model, images) >= model.thresholds
    assert (decisions.sum(axis=0) == 4).all()  # the independent answer
    return decisions


def png(image):
    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_saved_model_decisions_in_both_signatures(model, images, tmp_path):
    directory = str(tmp_path / "sm")
    saved_model.write_saved_model(model, directory, warmup=False)
    loaded = tf.saved_model.load(directory)
    expected = expected_decisions(model, images)
    floats = loaded.signatures["serving_images"](images=tf.constant(images))
    encoded = tf.constant([png(image) for image in images])
    decoded = loaded.signatures["serving_default"](images=encoded)
    for outputs in (floats, decoded):
        assert outputs["decisions"].dtype == tf.bool
        np.testing.assert_array_equal(outputs["decisions"].numpy(), expected)
        np.testing.assert_array_equal(
            outputs["decisions"].numpy(),
            outputs["scores"].numpy() >= model.thresholds,
        )
    config = saved_model.read_config(directory)
    np.testing.assert_array_equal(np.float32(config["thresholds"]), model.thresholds)
    assert "decisions" in config["outputs"]


def test_tflite_carries_the_thresholds(model, images, tmp_path):
    path = lite.convert(model, tmp_path / "m.tflite")
    predictor = Predictor(path)
    np.testing.assert_array_equal(predictor.thresholds, model.thresholds)
    np.testing.assert_array_equal(
        np.float32(predictor.contract["thresholds"]), model.thresholds
    )
    decisions = predictor.decisions(images)
    assert decisions.dtype == bool
    np.testing.assert_array_equal(decisions, expected_decisions(model, images))


def test_onnx_contract_carries_the_thresholds(model, images, tmp_path):
    path = kmlc_onnx.export_onnx(model, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(path))
    contract = json.loads(session.get_modelmeta().custom_metadata_map["kmlc_contract"])
    thresholds = np.float32(contract["thresholds"])
    np.testing.assert_array_equal(thresholds, model.thresholds)
    (scores,) = session.run(["scores"], {"images": images.astype(np.float32)})
    np.testing.assert_array_equal(
        scores >= thresholds, expected_decisions(model, images)
    )


def test_a_model_without_thresholds_exports_one_half_each(tmp_path):
    model = fx.tiny_model("baseline", seed=0)
    directory = str(tmp_path / "sm")
    saved_model.write_saved_model(model, directory, warmup=False)
    assert saved_model.read_config(directory)["thresholds"] == [0.5] * D
    loaded = tf.saved_model.load(directory)
    x = fx.images(3)
    outputs = loaded.signatures["serving_images"](images=tf.constant(x))
    np.testing.assert_array_equal(
        outputs["decisions"].numpy(), keras_scores(model, x) >= 0.5
    )
