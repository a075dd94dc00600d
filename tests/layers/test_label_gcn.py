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
