"""Tests for `kmlc.export.onnx`: ONNX through Keras' exporter, run by onnxruntime."""

import json
import os

import keras
import numpy as np
import onnx
import onnxruntime
import pytest

from kmlc.export import onnx as kmlc_onnx
from tests import model_fixtures as fx

LABELS = fx.LABEL_NAMES
SIZE = fx.IMAGE_SIZE

# onnxruntime against Keras, on logits, relative to the largest |logit|.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    return kmlc_onnx.export_onnx(model, tmp_path_factory.mktemp("onnx") / "m.onnx")


@pytest.mark.parametrize("batch", [1, 3])
def test_onnxruntime_matches_keras(model, onnx_path, batch):
    images = np.random.default_rng(batch).uniform(0, 255, (batch, SIZE, SIZE, 3))
    images = images.astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    session = onnxruntime.InferenceSession(str(onnx_path))
    logits, scores = session.run(["logits", "scores"], {"images": images})
    scale = np.abs(expected).max()
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE * scale)
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-expected)), atol=1e-6)


def test_inputs_outputs_and_metadata(onnx_path):
    session = onnxruntime.InferenceSession(str(onnx_path))
    (images,) = session.get_inputs()
    assert images.name == "images"
    assert images.shape[1:] == [SIZE, SIZE, 3]
    assert [output.name for output in session.get_outputs()] == ["logits", "scores"]
    assert kmlc_onnx.read_labels(onnx_path) == LABELS
    meta = session.get_modelmeta().custom_metadata_map
    contract = json.loads(meta["kmlc_contract"])
    assert contract["image_size"] == [SIZE, SIZE]
    assert contract["input"]["range"] == [0.0, 255.0]
    assert contract["opset"] == kmlc_onnx.DEFAULT_OPSET
    assert onnx.load(str(onnx_path)).opset_import[0].version == kmlc_onnx.DEFAULT_OPSET
    with open(f"{onnx_path}.labels.txt", encoding="utf-8") as f:
        assert f.read().splitlines() == LABELS


def test_mixed_precision_model(tmp_path):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = fx.tiny_model(heads="full", seed=0)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    path = kmlc_onnx.export_onnx(model, tmp_path / "mixed.onnx")
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3))
    images = images.astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    (logits,) = onnxruntime.InferenceSession(str(path)).run(
        ["logits"], {"images": images}
    )
    np.testing.assert_allclose(logits, expected, atol=1e-2 * np.abs(expected).max())


def test_output_path_is_a_directory(model, tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        kmlc_onnx.export_onnx(model, tmp_path)


def test_unbuilt_model(tmp_path):
    with pytest.raises(ValueError, match="never built"):
        kmlc_onnx.export_onnx(
            keras.Sequential([keras.layers.Dense(2)]), tmp_path / "m.onnx"
        )


def test_failed_export_leaves_nothing(model, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tf2onnx failed")

    monkeypatch.setattr(onnx, "save", broken)
    with pytest.raises(RuntimeError, match="tf2onnx failed"):
        kmlc_onnx.export_onnx(model, tmp_path / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_read_labels_of_foreign_file(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), tmp_path / "plain.onnx")
    with pytest.raises(ValueError, match="no 'kmlc_labels' metadata"):
        kmlc_onnx.read_labels(tmp_path / "plain.onnx")


def test_every_node_is_a_standard_onnx_op(onnx_path):
    # tf2onnx leaves ops it cannot map (e.g. TF's Log1p) as they are, which no
    # ONNX runtime runs: the checker rejects such nodes.
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
