"""The model at a thousand labels: sparse label graph, no [B, D, D] or
[B, D, E] tensor, and configs that reload with the GCN's weight shapes."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import kmlc
from tests import model_fixtures as fx

NUM_LABELS = 1000
CHANNELS = 24  # E, a width no other dimension of the tiny model has
BATCH = 2


def _large_graph(num_labels=NUM_LABELS, seed=0):
    """About 3 labels an image: a graph with well under 1 % edges."""
    rng = np.random.default_rng(seed)
    y = (rng.random((3000, num_labels)) < 3 / num_labels).astype("uint8")
    y[:, 1] = np.maximum(y[:, 1], y[:, 0])  # one real edge at least
    return kmlc.LabelGraph.from_labels(y, strategy="threshold", tau=0.4)


def _large_model(heads="full", num_labels=NUM_LABELS, **kwargs):
    return kmlc.build_model(
        num_labels,
        _large_graph(num_labels),
        backbone=fx.tiny_backbone(channels=CHANNELS),
        image_size=fx.IMAGE_SIZE,
        heads=heads,
        node_dim=8,
        top_k=3,
        **kwargs,
    )


def _shapes_of_a_training_step(model):
    """The static shape of every tensor of a forward and backward pass."""
    x = fx.images(BATCH)
    y = fx.label_matrix(BATCH, NUM_LABELS)
    model.compile(optimizer="sgd")

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x, y, model(x, training=True))
        return tape.gradient(loss, [w.value for w in model.trainable_weights])

    graph = step.get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32), tf.TensorSpec(y.shape, tf.float32)
    ).graph
    return [
        (op.name, tuple(output.shape.as_list()))
        for op in graph.get_operations()
        for output in op.outputs
        if output.shape.rank is not None
    ]


def _per_label_blowups(shapes):
    """Tensors with D twice (`[B, D, D]`, X' `[D, D]`) or with D and E in a
    rank >= 3 shape (`[B, D, E]`)."""
    found = []
    for name, shape in shapes:
        labels = shape.count(NUM_LABELS)
        if labels >= 2 or (labels and len(shape) >= 3 and CHANNELS in shape):
            found.append((name, shape))
    return found


def test_no_tensor_grows_with_labels_squared_or_labels_times_channels():
    model = _large_model()
    assert model.label_gcn.propagation == "sparse"
    shapes = _shapes_of_a_training_step(model)
    assert len(shapes) > 500  # the whole step was traced
    assert _per_label_blowups(shapes) == []


def test_the_check_finds_a_dense_graph_and_eq_3_as_written():
    # The inspection itself can fail: a dense X' [D, D], and eq. 3 taken
    # literally (node_dim=None: C is [B, D, E]).
    model = _large_model(heads="gcn", gcn_propagation="dense")
    found = _per_label_blowups(_shapes_of_a_training_step(model))
    assert any(shape == (NUM_LABELS, NUM_LABELS) for _, shape in found)
    literal = kmlc.build_model(
        NUM_LABELS,
        _large_graph(),
        backbone=fx.tiny_backbone(channels=CHANNELS),
        image_size=fx.IMAGE_SIZE,
        heads="gcn",
        node_dim=None,
    )
    found = _per_label_blowups(_shapes_of_a_training_step(literal))
    assert any(shape == (BATCH, NUM_LABELS, CHANNELS) for _, shape in found)


def test_sparse_model_saves_and_reloads(tmp_path):
    model = _large_model(num_labels=300)
    gcn = model.label_gcn
    assert gcn.propagation == "sparse"
    config = model.get_config()
    assert config["gcn_propagation"] == "sparse"
    assert config["gcn_edges"] == gcn.num_edges
    x = fx.images(BATCH)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.label_gcn.num_edges == gcn.num_edges
    np.testing.assert_array_equal(
        reloaded.label_gcn.adjacency_matrix(), gcn.adjacency_matrix()
    )
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_a_file_saved_before_sparse_propagation_loads_dense(tmp_path):
    # Files written before gcn_propagation / gcn_edges existed hold the
    # dense adjacency weight and no such config keys.
    model = _large_model(num_labels=300, gcn_propagation="dense")
    x = fx.images(BATCH)
    model.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as new:
        files = {name: new.read(name) for name in new.namelist()}
    config = json.loads(files["config.json"])
    del config["config"]["gcn_propagation"], config["config"]["gcn_edges"]
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as old:
        for name, data in files.items():
            old.writestr(name, data)
    reloaded = keras.saving.load_model(tmp_path / "old.keras")
    assert reloaded.label_gcn.propagation == "dense"
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


@pytest.mark.parametrize("propagation", ["dense", "sparse"])
def test_set_graph_in_either_form(propagation):
    graph = _large_graph(300)
    model = _large_model(num_labels=300, gcn_propagation=propagation)
    shuffled = graph.with_strategy(graph.strategy, control="shuffled")
    model.set_graph(shuffled)
    np.testing.assert_allclose(
        model.label_gcn.adjacency_matrix(), shuffled.normalized(), rtol=1e-6
    )
