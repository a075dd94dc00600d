"""The label graph in a model: re-scoring built, saved, replaced, added."""

import json
import zipfile

import keras
import numpy as np
import pytest

import kmlc
from kmlc import model_graph
from kmlc.graph import LabelGraph
from tests import model_fixtures as fx


def _formula(logits, y, gamma, epsilon=1e-3):
    """The re-scoring with TG and P(j) counted here from the labels."""
    y = np.asarray(y, np.float64)
    counts = y.sum(axis=0)
    tg = (y.T @ y) / np.maximum(counts[:, None], 1)
    np.fill_diagonal(tg, 0.0)
    prior = counts / len(y)
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    q = p @ tg / p.sum(axis=1, keepdims=True)
    return logits + gamma * (np.log(epsilon + q) - np.log(epsilon + prior))


@pytest.mark.parametrize("heads", ["baseline", "full"])
def test_the_final_logits_are_the_heads_rescored(heads):
    model = fx.tiny_model(heads, seed=0, rescoring_gamma=2.0)
    x = fx.images(3, seed=1)
    heads_logits = model.head_logits(x)
    plain = sum(np.asarray(heads_logits[h]) for h in model.heads)
    np.testing.assert_allclose(
        np.asarray(model(x)), _formula(plain, fx.label_matrix(), 2.0), atol=1e-4
    )
    # Every head layer is still listed for the int8 export, with the layer.
    assert model.head_layer_names()[-1] == "rescoring"


def test_no_rescoring_by_default_and_training_is_unchanged():
    plain = fx.tiny_model("gcn", seed=0)
    assert plain.rescoring is None and plain.get_config()["rescoring"] is None
    rescored = fx.tiny_model("gcn", seed=0, rescoring_gamma=1.0)
    x, y = fx.images(4, seed=2), fx.label_matrix(4)
    for model in (plain, rescored):
        model.compile(optimizer="sgd", metrics=[])
    # The layer passes the logits through in training: the same loss.
    np.testing.assert_allclose(
        rescored.train_on_batch(x, y), plain.train_on_batch(x, y), rtol=1e-6
    )
    assert not np.allclose(np.asarray(rescored(x)), np.asarray(plain(x)))


def test_build_model_errors():
    with pytest.raises(ValueError, match="needs the label graph's counts.*ndarray"):
        kmlc.build_model(
            6,
            np.eye(6),
            backbone=fx.tiny_backbone(),
            image_size=32,
            heads="baseline",
            rescoring_gamma=1.0,
        )
    for gamma in (-1.0, "auto"):
        with pytest.raises(ValueError, match=f"Received: rescoring_gamma={gamma!r}"):
            fx.tiny_model("baseline", rescoring_gamma=gamma)


def test_saved_and_reloaded_with_its_statistics(tmp_path):
    model = fx.tiny_model("full", seed=0, rescoring_gamma=1.5)
    x = fx.images(2, seed=3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = kmlc.load_model(path)
    assert reloaded.rescoring.gamma == 1.5
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))


def test_a_keras_file_from_before_rescoring_loads(tmp_path):
    model = fx.tiny_model("gcn", seed=0)
    x = fx.images(2, seed=3)
    path = tmp_path / "m.keras"
    model.save(str(path))
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                del config["config"]["rescoring"]
                data = json.dumps(config).encode()
            dst.writestr(item, data)
    reloaded = kmlc.load_model(str(old))
    assert reloaded.rescoring is None
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))


def _other_graph():
    y = fx.label_matrix(seed=5)
    y[:, 3] = y[:, 2]
    return LabelGraph.from_labels(y, strategy="threshold", tau=0.3), y


def test_set_graph_replaces_the_adjacency_and_the_statistics():
    model = fx.tiny_model("full", seed=0, rescoring_gamma=2.0)
    graph, y = _other_graph()
    model.set_graph(graph)
    np.testing.assert_allclose(
        model.label_gcn.adjacency_matrix(), graph.normalized(), rtol=1e-6
    )
    x = fx.images(2, seed=4)
    heads = model.head_logits(x)
    plain = sum(np.asarray(heads[h]) for h in model.heads)
    np.testing.assert_allclose(np.asarray(model(x)), _formula(plain, y, 2.0), atol=1e-4)
    # Without a gcn head, the re-scoring alone.
    baseline = fx.tiny_model("baseline", seed=0, rescoring_gamma=2.0)
    baseline.set_graph(graph)
    plain = np.asarray(baseline.head_logits(x)["cls"])
    np.testing.assert_allclose(
        np.asarray(baseline(x)), _formula(plain, y, 2.0), atol=1e-4
    )


def test_set_graph_refuses_before_changing_anything():
    model = fx.tiny_model("gcn", seed=0, rescoring_gamma=2.0)
    x = fx.images(2, seed=4)
    before = np.asarray(model(x))
    with pytest.raises(ValueError, match="an X' array does not hold.*ndarray"):
        model.set_graph(np.eye(6, dtype="float32"))
    small = LabelGraph.from_labels(fx.label_matrix(num_labels=4))
    with pytest.raises(ValueError, match="graph has 4 labels but num_labels=6"):
        model.set_graph(small)
    np.testing.assert_array_equal(np.asarray(model(x)), before)
    with pytest.raises(ValueError, match="no 'gcn' head and no co-occurrence"):
        fx.tiny_model("baseline").set_graph(fx.tiny_graph())


def test_with_rescoring_adds_it_to_a_trained_model():
    keras.utils.set_random_seed(0)
    model = fx.tiny_model("full")
    model.compile(optimizer="adam", aux_loss_weight=0.5, metrics=[])
    model.train_on_batch(fx.images(4), fx.label_matrix(4))
    x = fx.images(3, seed=6)
    added = model_graph.with_rescoring(model, fx.tiny_graph(), 1.5)
    assert added is not model and added.rescoring.gamma == 1.5
    plain = np.asarray(model(x))
    np.testing.assert_allclose(
        np.asarray(added(x)), _formula(plain, fx.label_matrix(), 1.5), atol=1e-4
    )
    assert added.compiled and added.aux_loss_weight == 0.5
    assert model.rescoring is None  # the original is untouched
