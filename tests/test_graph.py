"""Tests for kmlc/graph.py against hand-computed graphs, Spektral and Corel-5k."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse
import tensorflow as tf

from kmlc.graph import CooccurrenceCounter
from kmlc.graph import LabelGraph

# The worked example: 6 images, 4 labels a, b, c, d.
Y4 = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [1, 0, 1, 1],
        [0, 1, 0, 1],
        [1, 0, 0, 0],
        [0, 0, 1, 1],
    ],
    dtype=np.uint8,
)
# Counted by hand from the rows above.
M4 = [4, 3, 3, 3]
N4 = [
    [0, 2, 2, 1],
    [2, 0, 1, 1],
    [2, 1, 0, 2],
    [1, 1, 2, 0],
]
# TG[i, j] = N[i, j] / M[i].
TG4 = [
    [0, 1 / 2, 1 / 2, 1 / 4],
    [2 / 3, 0, 1 / 3, 1 / 3],
    [2 / 3, 1 / 3, 0, 2 / 3],
    [1 / 3, 1 / 3, 2 / 3, 0],
]
ALL_EDGES4 = [
    [0, 1, 1, 1],
    [1, 0, 1, 1],
    [1, 1, 0, 1],
    [1, 1, 1, 0],
]
# TG >= 0.5 (the two 1/2 entries of row a are kept: ties at tau count).
TAU05 = [
    [0, 1, 1, 0],
    [1, 0, 0, 0],
    [1, 0, 0, 1],
    [0, 0, 1, 0],
]
# TG >= 0.6: label a has no neighbour left.
TAU06 = [
    [0, 0, 0, 0],
    [1, 0, 0, 0],
    [1, 0, 0, 1],
    [0, 0, 1, 0],
]
# Ties go to the lower label index: row a picks b over c, row c a over d.
TOP1 = [
    [0, 1, 0, 0],
    [1, 0, 0, 0],
    [1, 0, 0, 0],
    [0, 0, 1, 0],
]
TOP2 = [
    [0, 1, 1, 0],
    [1, 0, 1, 0],
    [1, 0, 0, 1],
    [1, 0, 1, 0],
]

# Three labels on a path a - b - c: TG = [[0, 1, 0], [.5, 0, .5], [0, 1, 0]].
Y3 = np.array([[1, 1, 0], [0, 1, 1]])
R2, R6 = 1 / np.sqrt(2), 1 / np.sqrt(6)


def _graph(**kwargs):
    return LabelGraph.from_labels(Y4, **kwargs)


# Counting and eq. 4.


def test_counts_and_conditional_by_hand():
    graph = _graph()
    np.testing.assert_array_equal(graph.pair_counts, N4)
    np.testing.assert_array_equal(graph.label_counts, M4)
    assert graph.num_samples == 6
    assert graph.num_labels == 4
    np.testing.assert_allclose(graph.conditional, TG4, rtol=0, atol=1e-15)


def test_counter_accumulates_batches():
    counter = CooccurrenceCounter(4)
    counter.update(Y4[:2]).update(Y4[2:])
    assert counter.num_samples == 6
    np.testing.assert_array_equal(counter.label_counts, M4)
    # The counter keeps the diagonal (= M); the graph drops it.
    np.testing.assert_array_equal(counter.pair_counts, np.array(N4) + np.diag(M4))


# Eq. 5 and the other strategies.


def test_paper_strategy_by_hand():
    graph = _graph(strategy="paper")
    # Over all 16 entries: sum 67/12, sum of squares 139/48, so
    # mean = 67/192 and std = sqrt(2183)/192.
    assert graph.threshold == pytest.approx((67 - np.sqrt(2183)) / 192, abs=1e-12)
    np.testing.assert_array_equal(graph.adjacency, ALL_EDGES4)
    assert graph.density == 1.0


def test_paper_nonzero_strategy_by_hand():
    graph = _graph(strategy="paper-nonzero")
    # Over the 12 non-zero entries: mean 67/144, std sqrt(515)/144, so the
    # threshold is 0.3077 and only TG[a, d] = 1/4 falls below it.
    assert graph.threshold == pytest.approx((67 - np.sqrt(515)) / 144, abs=1e-12)
    expected = np.array(ALL_EDGES4)
    expected[0, 3] = 0
    np.testing.assert_array_equal(graph.adjacency, expected)
    assert graph.density == pytest.approx(11 / 12)


def test_paper_keeps_zero_pairs_that_paper_nonzero_drops():
    # TG = [[0, .5, 0], [1, 0, 0], [0, 0, 0]]: over all 9 entries mean 1/6,
    # std 1/3, threshold -1/6, so even pairs that never co-occur are edges.
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    paper = LabelGraph.from_labels(y, strategy="paper")
    assert paper.threshold == pytest.approx(-1 / 6)
    np.testing.assert_array_equal(paper.adjacency, [[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    # Non-zero entries .5 and 1: mean .75, std .25, threshold .5 exactly,
    # and the tie TG[a, b] = .5 is kept.
    nonzero = paper.with_strategy("paper-nonzero")
    assert nonzero.threshold == 0.5
    np.testing.assert_array_equal(nonzero.adjacency, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize(
    "tau, expected, density", [(0.5, TAU05, 0.5), (0.6, TAU06, 1 / 3)]
)
def test_threshold_strategy_by_hand(tau, expected, density):
    graph = _graph(strategy="threshold", tau=tau)
    np.testing.assert_array_equal(graph.adjacency, expected)
    assert graph.adjacency.dtype == np.float32
    assert graph.density == pytest.approx(density)


@pytest.mark.parametrize(
    "k, expected", [(1, TOP1), (2, TOP2), (3, ALL_EDGES4), (10, ALL_EDGES4)]
)
def test_topk_strategy_by_hand(k, expected):
    graph = _graph(strategy="topk", k=k)
    np.testing.assert_array_equal(graph.adjacency, expected)


def test_topk_never_picks_zero_entries():
    # Label c co-occurs with nobody; label a only with b.
    y = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    graph = LabelGraph.from_labels(y, strategy="topk", k=2)
    np.testing.assert_array_equal(graph.adjacency, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_density_and_degree_stats_by_hand():
    graph = _graph(strategy="threshold", tau=0.6)
    assert graph.num_edges == 4
    np.testing.assert_array_equal(graph.degrees(), [0, 1, 2, 1])
    assert graph.degree_stats() == {
        "min": 0,
        "max": 2,
        "mean": 1.0,
        "median": 1.0,
        "isolated": 1,
    }
    summary = graph.summary()
    assert summary["num_labels"] == 4
    assert summary["num_samples"] == 6
    assert summary["strategy"] == "threshold"
    assert summary["threshold"] == 0.6
    assert summary["k"] is None
    assert summary["num_edges"] == 4
    assert summary["density"] == pytest.approx(1 / 3)
    assert summary["labels_never_seen"] == 0
    stats = _graph(strategy="threshold", tau=0.5).degree_stats()
    assert stats == {"min": 1, "max": 2, "mean": 1.5, "median": 1.5, "isolated": 0}


# Re-weighting and normalisation (eq. 9).


def test_reweighting_by_hand():
    graph = _graph(strategy="threshold", tau=0.5, reweight_p=0.2)
    expected = [
        [0.8, 0.1, 0.1, 0.0],
        [0.2, 0.8, 0.0, 0.0],
        [0.1, 0.0, 0.8, 0.1],
        [0.0, 0.0, 0.2, 0.8],
    ]
    np.testing.assert_allclose(graph.weighted_adjacency, expected, atol=1e-12)
    # Rows already sum to 1, so both normalisations leave it as it is.
    for method in ("symmetric", "row", "none"):
        np.testing.assert_allclose(graph.normalized(method), expected, atol=1e-7)
    # A label without neighbours keeps all its weight.
    isolated = graph.with_strategy("threshold", tau=0.6)
    np.testing.assert_allclose(
        isolated.weighted_adjacency,
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.2, 0.8, 0.0, 0.0],
            [0.1, 0.0, 0.8, 0.1],
            [0.0, 0.0, 0.2, 0.8],
        ],
        atol=1e-12,
    )


def test_without_reweighting_self_loops_are_added():
    graph = _graph(strategy="threshold", tau=0.5)
    np.testing.assert_array_equal(graph.weighted_adjacency, np.add(TAU05, np.eye(4)))
    np.testing.assert_array_equal(graph.normalized("none"), np.add(TAU05, np.eye(4)))


def test_row_normalization_by_hand():
    graph = _graph(strategy="threshold", tau=0.5)
    expected = [
        [1 / 3, 1 / 3, 1 / 3, 0],
        [1 / 2, 1 / 2, 0, 0],
        [1 / 3, 0, 1 / 3, 1 / 3],
        [0, 0, 1 / 2, 1 / 2],
    ]
    np.testing.assert_allclose(graph.normalized("row"), expected, atol=1e-7)


def test_symmetric_normalization_by_hand():
    # Path a - b - c: degrees of A + I are 2, 3, 2.
    graph = LabelGraph.from_labels(Y3, strategy="threshold", tau=0.5)
    expected = [[1 / 2, R6, 0], [R6, 1 / 3, R6], [0, R6, 1 / 2]]
    np.testing.assert_allclose(graph.normalized("symmetric"), expected, atol=1e-7)
    assert graph.normalized().dtype == np.float32
    # Directed: only a -> b and c -> b; degrees (row sums) 2, 1, 2.
    directed = graph.with_strategy("threshold", tau=0.6)
    expected = [[1 / 2, R2, 0], [0, 1, 0], [0, R2, 1 / 2]]
    np.testing.assert_allclose(directed.normalized("symmetric"), expected, atol=1e-7)


_SPEKTRAL_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from spektral.utils import gcn_filter

    data = np.load(sys.argv[1])
    out = {}
    for name in data.files:
        a = data[name].astype(np.float64)
        out[name + "__symmetric"] = gcn_filter(a)
        out[name + "__row"] = gcn_filter(a, symmetric=False)
    np.savez(sys.argv[2], **out)
    """
)


def test_normalized_equals_spektral_gcn_filter(tmp_path):
    for module in ("spektral", "tf_keras"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    rng = np.random.default_rng(0)
    y = (rng.random((300, 12)) < 0.25).astype(np.uint8)
    y[:, 11] = 0  # a label that never occurs: an isolated node
    graphs = {
        "tau05": _graph(strategy="threshold", tau=0.5),
        "tau06": _graph(strategy="threshold", tau=0.6),
        "path": LabelGraph.from_labels(Y3, strategy="threshold", tau=0.6),
        "random_tau": LabelGraph.from_labels(y, strategy="threshold", tau=0.3),
        "random_topk": LabelGraph.from_labels(y, strategy="topk", k=2),
        "random_paper": LabelGraph.from_labels(y, strategy="paper-nonzero"),
    }
    np.savez(tmp_path / "in.npz", **{k: g.adjacency for k, g in graphs.items()})
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run(
        [sys.executable, "-c", _SPEKTRAL_SCRIPT, "in.npz", "out.npz"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as spektral:
        for name, graph in graphs.items():
            for method in ("symmetric", "row"):
                np.testing.assert_allclose(
                    graph.normalized(method),
                    spektral[f"{name}__{method}"],
                    atol=1e-6,
                    err_msg=f"{name}, {method}",
                )


def test_label_that_never_occurs_gives_zero_row_and_no_nan():
    y = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0]])
    for strategy in ("paper", "paper-nonzero", "threshold", "topk"):
        for p in (None, 0.2):
            graph = LabelGraph.from_labels(y, strategy=strategy, tau=0.3, reweight_p=p)
            tg = graph.conditional
            np.testing.assert_array_equal(tg[3], 0.0)
            np.testing.assert_array_equal(tg[:, 3], 0.0)
            for method in ("symmetric", "row", "none"):
                assert np.all(np.isfinite(graph.normalized(method)))
            assert np.isfinite(graph.density)
            assert graph.summary()["labels_never_seen"] == 1
    # Under a threshold it is isolated: only its self-loop remains.
    graph = LabelGraph.from_labels(y, strategy="threshold", tau=0.3)
    np.testing.assert_array_equal(graph.normalized()[3], [0, 0, 0, 1])


def test_no_pairs_at_all_gives_an_empty_graph():
    graph = LabelGraph.from_labels(np.eye(3), strategy="paper-nonzero")
    assert graph.threshold == 0.0
    assert graph.num_edges == 0
    np.testing.assert_array_equal(graph.normalized(), np.eye(3))


# Saving and re-binarising.


def test_save_load_round_trip(tmp_path):
    graph = _graph(
        strategy="topk", k=2, tau=0.3, reweight_p=0.25, label_names=list("abcd")
    )
    path = tmp_path / "new" / "graph.npz"
    assert graph.save(path) == str(path)
    assert os.listdir(tmp_path / "new") == ["graph.npz"]  # no temporary left
    loaded = LabelGraph.load(path)
    assert loaded.label_names == ["a", "b", "c", "d"]
    assert (loaded.strategy, loaded.k, loaded.tau, loaded.reweight_p) == (
        "topk",
        2,
        0.3,
        0.25,
    )
    assert loaded.num_samples == 6
    np.testing.assert_array_equal(loaded.pair_counts, N4)
    np.testing.assert_array_equal(loaded.label_counts, M4)
    np.testing.assert_array_equal(loaded.adjacency, TOP2)
    np.testing.assert_array_equal(loaded.normalized(), graph.normalized())
    assert loaded.summary() == graph.summary()


def test_with_strategy_rebinarises_the_same_counts():
    graph = _graph(strategy="threshold", tau=0.5, label_names=list("abcd"))
    top1 = graph.with_strategy("topk", k=1)
    np.testing.assert_array_equal(top1.adjacency, TOP1)
    assert top1.label_names == ["a", "b", "c", "d"]
    assert top1.tau == 0.5
    np.testing.assert_array_equal(top1.pair_counts, N4)
    tau06 = graph.with_strategy("threshold", tau=0.6)
    np.testing.assert_array_equal(tau06.adjacency, TAU06)
    # The original is untouched.
    np.testing.assert_array_equal(graph.adjacency, TAU05)
    assert graph.strategy == "threshold"


# Inputs: sparse, chunked, streamed.


def _random_labels(rows=300, cols=9, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((rows, cols)) < 0.25).astype(np.uint8)


def _assert_same_graph(graph, expected):
    np.testing.assert_array_equal(graph.pair_counts, expected.pair_counts)
    np.testing.assert_array_equal(graph.label_counts, expected.label_counts)
    assert graph.num_samples == expected.num_samples
    np.testing.assert_array_equal(graph.adjacency, expected.adjacency)


def test_sparse_dense_and_chunked_counts_agree():
    y = _random_labels()
    expected_pairs = y.astype(np.int64).T @ y.astype(np.int64)
    np.fill_diagonal(expected_pairs, 0)
    dense = LabelGraph.from_labels(y, strategy="topk", k=3)
    np.testing.assert_array_equal(dense.pair_counts, expected_pairs)
    np.testing.assert_array_equal(dense.label_counts, y.sum(axis=0))
    for variant in (
        LabelGraph.from_labels(scipy.sparse.csr_matrix(y), strategy="topk", k=3),
        LabelGraph.from_labels(scipy.sparse.csc_matrix(y), strategy="topk", k=3),
        LabelGraph.from_labels(y, chunk_rows=7, strategy="topk", k=3),
        LabelGraph.from_labels(
            scipy.sparse.csr_matrix(y), chunk_rows=7, strategy="topk", k=3
        ),
        LabelGraph.from_labels(y.astype(bool), strategy="topk", k=3),
        LabelGraph.from_labels(y.tolist(), strategy="topk", k=3),
    ):
        _assert_same_graph(variant, dense)


def test_from_dataset_equals_from_labels():
    y = _random_labels()
    expected = LabelGraph.from_labels(y, strategy="threshold", tau=0.3)
    images = np.zeros((len(y), 4, 4, 3), np.uint8)
    sources = {
        "numpy batches": [y[:50], y[50:51], y[51:]],
        "sparse batches": [scipy.sparse.csr_matrix(y[:100]), y[100:]],
        "tensors": [tf.constant(y[:128]), tf.constant(y[128:])],
        "nested lists": [y[:2].tolist(), y[2:].tolist()],
        "(x, y, w) tuples": [(images[:99], y[:99], None), (images[99:], y[99:], None)],
        "dicts": [{"labels": y}],
        "dataset of pairs": tf.data.Dataset.from_tensor_slices((images, y)).batch(64),
        "dataset of labels": tf.data.Dataset.from_tensor_slices(y).batch(64),
        "unbatched dataset": tf.data.Dataset.from_tensor_slices(y),
    }
    for name, batches in sources.items():
        graph = LabelGraph.from_dataset(batches, strategy="threshold", tau=0.3)
        _assert_same_graph(graph, expected)
        assert graph.strategy == "threshold", name
    given = LabelGraph.from_dataset(iter([y]), num_labels=9, tau=0.3)
    _assert_same_graph(given, expected)
    _assert_same_graph(
        LabelGraph.from_labels(tf.constant(y), strategy="threshold", tau=0.3),
        expected,
    )


# Eq. 5 on the real Corel-5k training labels (docs/design.md's numbers).


def test_eq5_on_corel5k(corel5k_labels):
    y, names = corel5k_labels
    assert y.shape == (4500, 260)
    paper = LabelGraph.from_labels(y, strategy="paper", label_names=names)
    tg = paper.conditional
    assert tg.mean() == pytest.approx(0.0097, abs=5e-4)
    assert tg.std() == pytest.approx(0.059, abs=5e-4)
    assert paper.threshold == pytest.approx(-0.049, abs=5e-4)
    assert paper.density == 1.0
    # With the statistics over non-zero entries the threshold is still
    # negative: the edges are the pairs that co-occurred at least once.
    nonzero = paper.with_strategy("paper-nonzero")
    assert nonzero.threshold < 0
    cooccur = (y.astype(np.float64).T @ y.astype(np.float64)) > 0
    np.fill_diagonal(cooccur, False)
    assert nonzero.density == pytest.approx(cooccur.sum() / (260 * 259))
    assert nonzero.density == pytest.approx(0.097, abs=1e-3)
    ml_gcn = paper.with_strategy("threshold", tau=0.4)
    assert ml_gcn.density == pytest.approx(0.006, abs=5e-4)


# Bad input.


def test_label_matrix_not_binary_names_row_and_column():
    y = Y4.astype(np.float32)
    y[4, 2] = 2
    with pytest.raises(ValueError, match=r"only 0 and 1.*2\.0 at row 4, column 2"):
        LabelGraph.from_labels(y)
    # Chunks keep counting rows from the start of the matrix.
    with pytest.raises(ValueError, match=r"at row 4, column 2"):
        LabelGraph.from_labels(y, chunk_rows=3)
    with pytest.raises(ValueError, match=r"at row 4, column 2"):
        LabelGraph.from_labels(scipy.sparse.csr_matrix(y), chunk_rows=3)
    y[4, 2] = 0.5
    with pytest.raises(ValueError, match=r"0\.5 at row 4, column 2"):
        LabelGraph.from_labels(y)
    with pytest.raises(ValueError, match=r"at row 4, column 2"):
        LabelGraph.from_dataset([y[:3], y[3:]])


@pytest.mark.parametrize("shape", [(0, 4), (3, 0)])
def test_empty_label_matrix(shape):
    with pytest.raises(ValueError, match=r"empty.*Received: shape=\(\d, \d\)"):
        LabelGraph.from_labels(np.zeros(shape))


@pytest.mark.parametrize("y", [np.array([1, 0, 1]), np.ones((2, 3, 4))])
def test_label_matrix_not_2d(y):
    with pytest.raises(ValueError, match=r"2-D multi-hot matrix.*Received: shape="):
        LabelGraph.from_labels(y)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"strategy": "papper"}, r"Unknown strategy.*Received: strategy='papper'"),
        ({"strategy": "topk", "k": 0}, r"k >= 1. Received: k=0"),
        ({"reweight_p": 1.5}, r"reweight_p must be in \[0, 1\]. Received: .*1.5"),
        ({"reweight_p": -0.1}, r"reweight_p must be in \[0, 1\]. Received: .*-0.1"),
        ({"label_names": ["a", "b"]}, r"one name per label \(4\).*Received: 2"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _graph(**kwargs)


def test_bad_counts():
    with pytest.raises(ValueError, match=r"num_labels must be at least 1"):
        CooccurrenceCounter(0)
    with pytest.raises(ValueError, match=r"pair_counts must be \[3, 3\]"):
        LabelGraph(np.zeros((2, 2)), np.zeros(3), 1)


def test_unknown_normalization():
    with pytest.raises(ValueError, match=r"Unknown normalization.*method='sym'"):
        _graph().normalized("sym")


def test_from_dataset_bad_batches():
    with pytest.raises(
        ValueError, match=r"Expected 4 label columns.*shape=\(2, 3\) \(after 6 rows\)"
    ):
        LabelGraph.from_dataset([Y4, Y4[:2, :3]])
    with pytest.raises(ValueError, match=r"Expected 5 label columns.*after 0 rows"):
        LabelGraph.from_dataset([Y4], num_labels=5)
    with pytest.raises(ValueError, match=r"2-D multi-hot matrix"):
        LabelGraph.from_dataset([np.ones((2, 2, 4))])


def test_from_dataset_empty():
    with pytest.raises(ValueError, match=r"yielded no labels"):
        LabelGraph.from_dataset([])
    with pytest.raises(ValueError, match=r"yielded no labels"):
        LabelGraph.from_dataset([np.zeros((0, 4))], num_labels=4)
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 4))).batch(2)
    with pytest.raises(ValueError, match=r"yielded no labels"):
        LabelGraph.from_dataset(empty)


def test_load_a_file_that_is_not_a_graph(tmp_path):
    (tmp_path / "text.npz").write_text("not a graph")
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    for name in ("text.npz", "array.npy", "other.npz", "missing.npz"):
        with pytest.raises(ValueError, match=r"Could not read a label graph from"):
            LabelGraph.load(tmp_path / name)


# Ablation controls.


def _corel_like_graph(**kwargs):
    rng = np.random.default_rng(5)
    y = (rng.random((400, 30)) < 0.12).astype(np.uint8)
    y[:, 1] |= y[:, 0]  # label 1 whenever label 0: a strong edge 0 -> 1
    return LabelGraph.from_labels(y, strategy="threshold", tau=0.3, **kwargs)


def test_identity_control_has_no_edges_and_the_gcn_sees_each_label_alone():
    graph = _corel_like_graph(control="identity", reweight_p=0.2)
    assert graph.num_edges == 0 and _corel_like_graph().num_edges > 0
    np.testing.assert_array_equal(graph.normalized("symmetric"), np.eye(30))
    np.testing.assert_array_equal(graph.normalized("row"), np.eye(30))


def test_shuffled_control_keeps_the_degrees_on_permuted_labels():
    counted = _corel_like_graph()
    shuffled = _corel_like_graph(control="shuffled", control_seed=3)
    order = np.random.default_rng(3).permutation(30)
    np.testing.assert_array_equal(
        shuffled.adjacency, counted.adjacency[order][:, order]
    )
    assert shuffled.num_edges == counted.num_edges
    assert sorted(shuffled.degrees()) == sorted(counted.degrees())
    assert not np.array_equal(shuffled.adjacency, counted.adjacency)
    assert np.all(np.diag(shuffled.adjacency) == 0)


def test_controls_survive_save_and_load(tmp_path):
    graph = _corel_like_graph(control="shuffled", control_seed=7)
    loaded = LabelGraph.load(graph.save(tmp_path / "g.npz"))
    assert loaded.control == "shuffled" and loaded.control_seed == 7
    np.testing.assert_array_equal(loaded.adjacency, graph.adjacency)
    assert graph.summary()["control"] == "shuffled"


def test_an_unknown_control_is_named():
    with pytest.raises(ValueError, match="Received: control='random'"):
        _corel_like_graph(control="random")
