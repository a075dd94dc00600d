"""LabelGraph at scale: sparse storage past a label count, the same answers
as the dense graph, and counting from every source in one vectorised pass."""

import json

import numpy as np
import pytest
import scipy.sparse
import tensorflow as tf

from kmlc import cooccurrence
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords
from kmlc.graph import DENSE_LABELS_LIMIT
from kmlc.graph import CooccurrenceCounter
from kmlc.graph import LabelGraph
from tests.data.data_fixtures import VOCABULARY
from tests.data.data_fixtures import WrittenDataSet
from tests.test_graph import TAU05
from tests.test_graph import TG4
from tests.test_graph import TOP2
from tests.test_graph import Y4


def _labels(rows=400, cols=40, per_image=3, seed=0):
    """About `per_image` labels an image, with a few strong pairs."""
    rng = np.random.default_rng(seed)
    y = (rng.random((rows, cols)) < per_image / cols).astype(np.uint8)
    y[:, 1] |= y[:, 0]
    y[:, 5] |= y[:, 4] & (rng.random(rows) < 0.7)
    return y


def _reference_counts(y):
    """N and M by integer matrix products, independent of kmlc."""
    y = np.asarray(y, np.int64)
    pairs = y.T @ y
    np.fill_diagonal(pairs, 0)
    return pairs, y.sum(axis=0)


def _dense(matrix):
    return matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)


CONFIGS = [
    {"strategy": "threshold", "tau": 0.3},
    {"strategy": "threshold", "tau": 0.3, "reweight_p": 0.2},
    {"strategy": "paper-nonzero"},
    {"strategy": "topk", "k": 1},
    {"strategy": "topk", "k": 3, "control": "shuffled", "control_seed": 4},
    {"strategy": "threshold", "tau": 0.5, "control": "identity"},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_sparse_graph_equals_dense_graph(config):
    y = _labels()
    dense = LabelGraph.from_labels(y, **config)
    sparse = LabelGraph.from_labels(scipy.sparse.csr_matrix(y), sparse=True, **config)
    assert not dense.sparse and sparse.sparse
    assert scipy.sparse.issparse(sparse.pair_counts)
    assert scipy.sparse.issparse(sparse.adjacency)
    pairs, labels = _reference_counts(y)
    np.testing.assert_array_equal(_dense(sparse.pair_counts), pairs)
    np.testing.assert_array_equal(sparse.label_counts, labels)
    np.testing.assert_array_equal(_dense(sparse.conditional), dense.conditional)
    np.testing.assert_array_equal(_dense(sparse.adjacency), dense.adjacency)
    assert sparse.threshold == dense.threshold
    for method in ("symmetric", "row", "none"):
        np.testing.assert_allclose(
            _dense(sparse.normalized(method)), dense.normalized(method), rtol=1e-6
        )
    np.testing.assert_array_equal(sparse.degrees(), dense.degrees())
    assert sparse.summary() == dense.summary()


def test_sparse_graph_by_hand():
    graph = LabelGraph.from_labels(Y4, strategy="threshold", tau=0.5, sparse=True)
    np.testing.assert_allclose(_dense(graph.conditional), TG4, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(_dense(graph.adjacency), TAU05)  # ties kept
    np.testing.assert_array_equal(
        _dense(graph.with_strategy("topk", k=2).adjacency), TOP2
    )  # ties to the lower label index


def test_paper_rule_on_a_sparse_graph():
    # Every pair always together: TG is 1 off the diagonal; over all 16
    # entries mean 3/4, std sqrt(3)/4, a threshold above 0.
    y = np.ones((5, 4), np.uint8)
    dense = LabelGraph.from_labels(y, strategy="paper")
    sparse = LabelGraph.from_labels(y, strategy="paper", sparse=True)
    assert sparse.threshold == pytest.approx((3 - np.sqrt(3)) / 4, abs=1e-12)
    assert sparse.threshold == pytest.approx(dense.threshold, abs=1e-15)
    np.testing.assert_array_equal(_dense(sparse.adjacency), dense.adjacency)
    # A threshold <= 0 would make every pair an edge: refused when sparse
    # (tests/test_graph.py: this matrix's threshold is -1/6).
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"-0.1667 <= 0.*complete graph.*'paper'"):
        LabelGraph.from_labels(y, strategy="paper", sparse=True)
    with pytest.raises(ValueError, match=r"tau 0 <= 0\).*complete graph"):
        LabelGraph.from_labels(Y4, strategy="threshold", tau=0.0, sparse=True)


def test_large_vocabularies_are_sparse_automatically():
    num_labels = DENSE_LABELS_LIMIT + 500
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(3000), 3)
    cols = rng.integers(0, num_labels, rows.size)
    y = scipy.sparse.csr_matrix(
        (np.ones(rows.size, np.uint8), (rows, cols)), shape=(3000, num_labels)
    )
    y.data[:] = 1  # a repeated label counts once
    graph = LabelGraph.from_labels(y, strategy="topk", k=2)
    assert graph.sparse and scipy.sparse.issparse(graph.normalized())
    expected = (y.T.astype(np.int64) @ y.astype(np.int64)).tocsr()
    expected.setdiag(0)
    expected.eliminate_zeros()
    assert (graph.pair_counts != expected).nnz == 0
    # Memory: the counts hold the co-occurring pairs, not D^2.
    assert graph.pair_counts.nnz == expected.nnz < 6 * 3000
    np.testing.assert_array_equal(graph.label_counts, np.asarray(y.sum(0)).ravel())


def test_sparse_graph_save_and_load(tmp_path):
    y = _labels()
    graph = LabelGraph.from_labels(y, strategy="topk", k=2, sparse=True)
    path = graph.save(tmp_path / "g.npz")
    with np.load(path) as data:
        assert "pair_counts" not in data and "pair_counts_indptr" in data
    loaded = LabelGraph.load(path, sparse=True)
    assert (loaded.pair_counts != graph.pair_counts).nnz == 0
    assert (loaded.adjacency != graph.adjacency).nnz == 0
    # Small, so a plain load gives the dense graph of the same counts.
    dense = LabelGraph.load(path)
    assert not dense.sparse
    np.testing.assert_array_equal(dense.adjacency, _dense(graph.adjacency))


def test_a_file_in_the_first_format_still_loads(tmp_path):
    # What LabelGraph.save wrote before sparse graphs existed.
    pairs, labels = _reference_counts(Y4)
    params = {"strategy": "threshold", "tau": 0.5, "k": 5, "reweight_p": None}
    np.savez_compressed(
        tmp_path / "old.npz",
        pair_counts=pairs.astype(np.float64),
        label_counts=labels.astype(np.float64),
        num_samples=np.int64(6),
        params=np.array(json.dumps(params)),
    )
    graph = LabelGraph.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(graph.adjacency, TAU05)
    assert graph.num_samples == 6


@pytest.mark.parametrize("sparse", [False, True])
def test_counter_flushes_in_chunks_and_between(sparse):
    y = _labels(rows=101)
    counter = CooccurrenceCounter(40, chunk_rows=16, sparse=sparse)
    for start in range(0, 101, 5):
        counter.update(y[start : start + 5])
        if start == 50:  # reading mid-stream sees every row so far
            pairs = _reference_counts(y[:55])[0] + np.diag(y[:55].sum(0))
            np.testing.assert_array_equal(_dense(counter.pair_counts), pairs)
    expected = _reference_counts(y)[0] + np.diag(y.sum(0))
    np.testing.assert_array_equal(_dense(counter.pair_counts), expected)
    assert counter.num_samples == 101


def test_datasets_are_counted_in_groups_across_batches(monkeypatch):
    monkeypatch.setattr(cooccurrence, "_DATASET_GROUP", 3)
    monkeypatch.setattr(cooccurrence, "_DATASET_ROWS", 7)
    y = _labels(rows=101)
    expected = LabelGraph.from_labels(y, strategy="threshold", tau=0.3)
    indices = np.argwhere(y)
    sources = {
        "batched": tf.data.Dataset.from_tensor_slices(y).batch(4),
        "unbatched": tf.data.Dataset.from_tensor_slices(y),
        "bool": tf.data.Dataset.from_tensor_slices(y.astype(bool)).batch(9),
        "float (x, y) pairs": tf.data.Dataset.from_tensor_slices(
            (np.zeros((101, 2)), y.astype(np.float32))
        ).batch(10),
        "sparse": tf.data.Dataset.from_tensor_slices(
            tf.SparseTensor(indices, np.ones(len(indices), np.float32), y.shape)
        ).batch(8),
    }
    for name, dataset in sources.items():
        graph = LabelGraph.from_dataset(dataset, strategy="threshold", tau=0.3)
        np.testing.assert_array_equal(graph.pair_counts, expected.pair_counts, name)
        np.testing.assert_array_equal(graph.label_counts, expected.label_counts)
        assert graph.num_samples == 101, name


def test_dataset_errors_count_rows_across_groups(monkeypatch):
    monkeypatch.setattr(cooccurrence, "_DATASET_GROUP", 2)
    y = _labels(rows=40).astype(np.float32)
    y[29, 6] = 3.0
    with pytest.raises(ValueError, match=r"3\.0 at row 29, column 6"):
        LabelGraph.from_dataset(tf.data.Dataset.from_tensor_slices(y).batch(4))
    with pytest.raises(ValueError, match=r"Expected 41 label columns.*after 0 rows"):
        LabelGraph.from_dataset(
            tf.data.Dataset.from_tensor_slices(y[:8]).batch(4), num_labels=41
        )
    ragged = tf.data.Dataset.from_tensor_slices(np.ones((4, 2, 3))).batch(2)
    with pytest.raises(ValueError, match=r"2-D multi-hot.*the dataset's labels"):
        LabelGraph.from_dataset(ragged)


def test_tensor_inputs(monkeypatch):
    y = _labels(rows=50)
    expected = LabelGraph.from_labels(y)
    indices = np.argwhere(y)
    sparse_tensor = tf.SparseTensor(indices, np.ones(len(indices), np.int32), y.shape)
    for batches in ([tf.constant(y)], [sparse_tensor]):
        graph = LabelGraph.from_dataset(batches)
        np.testing.assert_array_equal(graph.pair_counts, expected.pair_counts)


def test_tfrecord_shards_and_their_sidecar(tmp_path):
    written = WrittenDataSet(tmp_path / "written")
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    pack(image_set, tmp_path / "packed", shard_size=5)
    packed = read_tfrecords(tmp_path / "packed")
    y = np.stack([written.multi_hot[key] for key in written.keys])
    expected_pairs, expected_labels = _reference_counts(y)
    from_shards = LabelGraph.from_dataset(packed.dataset(), len(VOCABULARY))
    from_sidecar = LabelGraph.from_labels(packed.labels)
    for graph in (from_shards, from_sidecar):
        np.testing.assert_array_equal(graph.pair_counts, expected_pairs)
        np.testing.assert_array_equal(graph.label_counts, expected_labels)
        assert graph.num_samples == len(written.keys)
