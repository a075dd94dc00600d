import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kmlc.graph import LabelGraph
from kmlc.layers import LabelGCN
from tests.layers.layer_test_case import run_layer_test

# Runs stacked spektral.layers.GCNConv with given weights. spektral 1.3.1
# works only with the legacy tf-keras, hence the subprocess (docs/design.md).
SPEKTRAL_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from spektral.layers import GCNConv
    from spektral.utils import gcn_filter

    data = np.load(sys.argv[1])
    x, binary = data["x"], data["binary"]
    a = gcn_filter(binary + 0.0)  # spektral's own normalisation of A + I
    count = int(data["num_layers"])
    for i in range(count):
        kernel, bias = data[f"kernel_{i}"], data[f"bias_{i}"]
        activation = "relu" if i < count - 1 else None
        layer = GCNConv(kernel.shape[1], activation=activation)
        layer([x, a])  # builds
        layer.set_weights([kernel, bias])
        x = layer([x, a]).numpy()
    np.savez(sys.argv[2], out=x, a=a)
    """
)


def _graph():
    y = np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 1, 1, 0, 0],
            [0, 0, 0, 1, 1],
            [1, 0, 0, 1, 0],
            [0, 0, 1, 0, 1],
        ]
    )
    return LabelGraph.from_labels(y, strategy="threshold", tau=0.3)


def test_contract(tmp_path):
    graph = _graph()
    nodes = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    run_layer_test(
        LabelGCN,
        {"adjacency": graph.normalized(), "units": [6, 3]},
        (nodes,),
        [(2, 5, 3)],
        tmp_path,
    )


def test_adjacency_is_a_saved_non_trainable_weight():
    graph = _graph()
    layer = LabelGCN(graph.normalized(), num_layers=2)
    layer.build((None, 5, 4))
    assert [w.name for w in layer.non_trainable_weights] == ["adjacency"]
    np.testing.assert_array_equal(layer.adjacency.numpy(), graph.normalized())
    assert "adjacency" not in layer.get_config()
    assert len(layer.trainable_weights) == 4  # two kernels, two biases


def test_equals_spektral_gcnconv(tmp_path):
    pytest.importorskip("spektral", reason="needs the dev extra (spektral)")
    graph = _graph()
    rng = np.random.default_rng(1)
    nodes = rng.normal(size=(3, 5, 4)).astype("float32")
    layer = LabelGCN(
        graph.normalized("symmetric"),
        units=[6, 6, 2],
        activation="relu",
        output_activation=None,
    )
    layer.build(nodes.shape)
    for weight in layer.trainable_weights:  # non-zero biases too
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    ours = np.asarray(layer(nodes))

    arrays = {"x": nodes, "binary": graph.adjacency, "num_layers": 3}
    for i in range(3):
        arrays[f"kernel_{i}"] = layer.kernels[i].numpy()
        arrays[f"bias_{i}"] = layer.biases[i].numpy()
    np.savez(tmp_path / "in.npz", **arrays)
    script = tmp_path / "spektral_gcn.py"
    script.write_text(SPEKTRAL_SCRIPT)
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "in.npz"),
            str(tmp_path / "out.npz"),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    theirs = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(theirs["a"], graph.normalized("symmetric"), atol=1e-6)
    np.testing.assert_allclose(ours, theirs["out"], rtol=1e-5, atol=1e-5)


def test_stacked_layers_match_numpy():
    graph = _graph()
    adjacency = graph.normalized()
    nodes = np.random.default_rng(2).normal(size=(2, 5, 4)).astype("float32")
    layer = LabelGCN(adjacency, units=3, num_layers=3)
    out = np.asarray(layer(nodes))
    expected = nodes
    for i in range(3):
        expected = (
            adjacency @ (expected @ layer.kernels[i].numpy()) + layer.biases[i].numpy()
        )
        if i < 2:
            expected = np.where(expected > 0, expected, 0.2 * expected)  # leaky 0.2
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_set_adjacency_checks_the_label_count():
    layer = LabelGCN(num_layers=1)
    layer.build((None, 5, 4))
    with pytest.raises(ValueError, match="graph has 3 labels but the model has 5"):
        layer.set_adjacency(np.eye(3))
    with pytest.raises(ValueError, match="graph has 3 labels but the model has 5"):
        LabelGCN(np.eye(3)).build((None, 5, 4))


def test_needs_a_layer():
    with pytest.raises(ValueError, match="at least one layer"):
        LabelGCN(num_layers=0)


def _sparse_adjacency(num_labels=200, seed=0):
    """A normalised X' with under 1 % non-zeros, an isolated label and a
    label that is no other label's neighbour."""
    rng = np.random.default_rng(seed)
    binary = (rng.random((num_labels, num_labels)) < 0.003).astype("float32")
    binary[3, :] = 0  # label 3 points nowhere
    binary[:, 7] = 0  # nothing points to label 7
    np.fill_diagonal(binary, 1.0)
    degree = binary.sum(axis=1)
    scale = 1.0 / np.sqrt(degree)
    return scale[:, None] * binary * scale[None, :]


def _twins(adjacency, **kwargs):
    """A dense and a sparse LabelGCN with the same random weights."""
    dense = LabelGCN(adjacency, propagation="dense", **kwargs)
    sparse = LabelGCN(adjacency, propagation="sparse", **kwargs)
    return dense, sparse


def _outputs_and_gradients(layer, nodes):
    import tensorflow as tf

    nodes = tf.constant(nodes)
    with tf.GradientTape() as tape:
        tape.watch(nodes)
        out = layer(nodes)
        loss = tf.reduce_sum(tf.sin(out))
    weights = [w.value for w in layer.trainable_weights]
    grads = tape.gradient(loss, [nodes, *weights])
    return out.numpy(), [g.numpy() for g in grads]


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_sparse_propagation_equals_dense(activation):
    adjacency = _sparse_adjacency()
    rng = np.random.default_rng(1)
    nodes = rng.normal(size=(3, 200, 6)).astype("float32")
    dense, sparse = _twins(adjacency, units=[5, 4], activation=activation)
    dense.build(nodes.shape)
    sparse.build(nodes.shape)
    for a, b in zip(dense.trainable_weights, sparse.trainable_weights, strict=True):
        value = rng.normal(size=a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    dense_out, dense_grads = _outputs_and_gradients(dense, nodes)
    sparse_out, sparse_grads = _outputs_and_gradients(sparse, nodes)
    np.testing.assert_allclose(sparse_out, dense_out, rtol=1e-5, atol=1e-5)
    for got, expected in zip(sparse_grads, dense_grads, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # And both equal X' @ (P W) + b, layer by layer, in NumPy.
    expected = nodes
    for i in range(2):
        expected = adjacency @ (expected @ dense.kernels[i].numpy())
        expected = expected + dense.biases[i].numpy()
        if i == 0:
            expected = (
                np.where(expected > 0, expected, 0.2 * expected)
                if activation == "leaky_relu"
                else np.tanh(expected)
            )
    np.testing.assert_allclose(sparse_out, expected, rtol=1e-4, atol=1e-4)


def test_auto_chooses_by_size_and_density():
    sparse = _sparse_adjacency()
    assert LabelGCN(sparse).propagation == "sparse"
    assert LabelGCN(_graph().normalized()).propagation == "dense"  # 5 labels
    crowded = np.full((200, 200), 1 / 200, "float32")  # every pair an edge
    assert LabelGCN(crowded).propagation == "dense"
    assert LabelGCN(num_layers=1).propagation == "dense"  # no graph yet
    assert LabelGCN(num_layers=1, num_edges=40).propagation == "sparse"


def test_sparse_weights_are_an_edge_list_sized_by_the_non_zeros():
    import scipy.sparse

    adjacency = _sparse_adjacency()
    nnz = int(np.count_nonzero(adjacency))
    for given in (adjacency, scipy.sparse.csr_matrix(adjacency)):
        layer = LabelGCN(given, num_layers=2)
        layer.build((None, 200, 4))
        shapes = {w.name: tuple(w.shape) for w in layer.non_trainable_weights}
        names = ("edge_targets", "edge_sources", "edge_weights", "edge_transpose")
        assert shapes == {name: (nnz + 1,) for name in names}
        assert layer.get_config()["num_edges"] == nnz + 1
        np.testing.assert_allclose(layer.adjacency_matrix(), adjacency, rtol=1e-6)


def test_sparse_contract(tmp_path):
    nodes = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    run_layer_test(
        LabelGCN,
        {"adjacency": _graph().normalized(), "units": [6, 3], "propagation": "sparse"},
        (nodes,),
        [(2, 5, 3)],
        tmp_path,
    )


def test_sparse_set_adjacency_pads_or_refuses():
    adjacency = _sparse_adjacency()
    layer = LabelGCN(adjacency, num_layers=1)
    layer.build((None, 200, 4))
    fewer = adjacency.copy()
    fewer[fewer < 0.3] = 0.0  # drops edges, keeps some
    layer.set_adjacency(fewer)
    np.testing.assert_allclose(layer.adjacency_matrix(), fewer, rtol=1e-6)
    nodes = np.random.default_rng(2).normal(size=(2, 200, 4)).astype("float32")
    dense = LabelGCN(fewer, num_layers=1, propagation="dense")
    dense.build(nodes.shape)
    dense.kernels[0].assign(layer.kernels[0])
    np.testing.assert_allclose(layer(nodes), dense(nodes), rtol=1e-5, atol=1e-5)
    nnz = np.count_nonzero(adjacency)
    more = np.full((200, 200), 1 / 200, "float32")
    message = f"holds {nnz} edges, and the new graph has 40000 non-zeros"
    with pytest.raises(ValueError, match=message):
        layer.set_adjacency(more)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"propagation": "sparse"}, "needs num_edges .*Received: num_edges=None"),
        ({"propagation": "csr"}, "Unknown propagation.*Received: propagation='csr'"),
    ],
)
def test_bad_propagation_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LabelGCN(**kwargs)


def test_non_finite_or_non_square_adjacency():
    adjacency = _sparse_adjacency()
    adjacency[4, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        LabelGCN(adjacency).build((None, 200, 4))
    with pytest.raises(ValueError, match=r"matrix \[D, D\]. Received: shape=\(5,\)"):
        LabelGCN(np.ones(5))


JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import jax
    import keras
    import numpy as np
    import kmlc  # registers the layers

    assert keras.backend.backend() == "jax"
    folder = sys.argv[1]
    nodes = np.load(f"{folder}/nodes.npy")
    model = keras.saving.load_model(f"{folder}/sparse.keras")
    assert model.layers[-1].propagation == "sparse"
    out = model.predict(nodes, verbose=0)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss(x):
        out, _ = model.stateless_call(trainable, non_trainable, x)
        return keras.ops.sum(keras.ops.sin(out))

    grad = jax.jit(jax.grad(loss))(nodes)
    np.savez(f"{folder}/jax.npz", out=out, grad=np.asarray(grad))
    """
)


def test_sparse_propagation_on_jax_equals_dense_on_tensorflow(tmp_path):
    pytest.importorskip("jax", reason="needs the dev extra (jax)")
    import keras
    import tensorflow as tf

    adjacency = _sparse_adjacency()
    nodes = np.random.default_rng(3).normal(size=(2, 200, 4)).astype("float32")
    dense, sparse = _twins(adjacency, units=[5, 3])
    dense.build(nodes.shape)
    sparse.build(nodes.shape)
    for a, b in zip(dense.trainable_weights, sparse.trainable_weights, strict=True):
        b.assign(a)
    inputs = keras.Input((200, 4))
    keras.Model(inputs, sparse(inputs)).save(tmp_path / "sparse.keras")
    np.save(tmp_path / "nodes.npy", nodes)
    x = tf.constant(nodes)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = dense(x)
        loss = tf.reduce_sum(tf.sin(out))
    grad = tape.gradient(loss, x).numpy()

    (tmp_path / "run_jax.py").write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "run_jax.py"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = np.load(tmp_path / "jax.npz")
    np.testing.assert_allclose(got["out"], out.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["grad"], grad, rtol=1e-4, atol=1e-4)
