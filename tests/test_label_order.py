import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score

from kmlc import label_order
from kmlc.graph import LabelGraph
from tests.label_fixtures import planted_labels


def _block_labels(sizes, images_per_block=40, seed=0):
    """Multi-hot labels in which each image shows labels of one block only,
    plus one image that joins the first two blocks; the columns are
    shuffled. Returns `(y, block)`: `block[d]` is label d's block."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(len(sizes)), sizes)
    rows = []
    for b in range(len(sizes)):
        members = np.nonzero(block == b)[0]
        for _ in range(images_per_block):
            row = np.zeros(len(block), np.uint8)
            row[rng.choice(members, size=rng.integers(2, len(members) + 1))] = 1
            rows.append(row)
    bridge = np.zeros(len(block), np.uint8)
    bridge[[np.nonzero(block == 0)[0][0], np.nonzero(block == 1)[0][0]]] = 1
    rows.append(bridge)
    permutation = rng.permutation(len(block))
    return np.array(rows)[:, permutation], block[permutation]


def test_communities_of_a_block_graph_are_contiguous_runs():
    y, block = _block_labels([4, 3, 6, 2])
    graph = LabelGraph.from_labels(y)
    order, community = label_order.label_communities(
        graph.pair_counts, graph.label_counts
    )
    assert sorted(order) == list(range(len(block)))
    # Labels of one block sit next to each other in the order ...
    blocks_along = block[order]
    runs = [blocks_along[0]] + [
        b for prev, b in zip(blocks_along, blocks_along[1:], strict=False) if b != prev
    ]
    assert sorted(runs) == [0, 1, 2, 3]
    # ... and the communities are the blocks, numbered along the order.
    for b in range(4):
        assert len(set(community[block == b])) == 1
    assert len(set(community)) == 4
    assert list(community[order]) == sorted(community[order])


def test_labels_that_never_meet_are_apart_and_edge_cases():
    # Two labels that never occur together are two communities.
    y = np.array([[1, 0], [0, 1], [1, 0]])
    graph = LabelGraph.from_labels(y)
    order, community = label_order.label_communities(
        graph.pair_counts, graph.label_counts
    )
    assert list(order) == [0, 1] and community[0] != community[1]
    graph = LabelGraph.from_labels(np.array([[1, 1], [1, 1]]))
    _, community = label_order.label_communities(graph.pair_counts, graph.label_counts)
    assert community[0] == community[1]


def test_ochiai_weights_are_the_cosine_of_label_columns_dense_or_sparse():
    y = np.random.default_rng(3).random((50, 5)) < 0.4
    graph = LabelGraph.from_labels(y.astype(np.uint8))
    columns = y.astype(float)
    norms = np.linalg.norm(columns, axis=0)
    expected = columns.T @ columns / np.outer(norms, norms)
    np.fill_diagonal(expected, 0.0)
    weights = label_order.ochiai(graph.pair_counts, graph.label_counts)
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    sparse = label_order.ochiai(
        scipy.sparse.csr_matrix(graph.pair_counts), graph.label_counts
    )
    assert scipy.sparse.issparse(sparse)
    np.testing.assert_allclose(sparse.toarray(), expected, atol=1e-12)


def _planted_weights(num_labels=120, num_blocks=6, seed=0):
    y, block = planted_labels(num_labels, num_blocks, 3000, stray=0.2, seed=seed)
    graph = LabelGraph.from_labels(y)
    return label_order.ochiai(graph.pair_counts, graph.label_counts), block


@pytest.mark.parametrize("k", [2, 4, 6, 9])
def test_spectral_communities_are_scikit_learns_spectral_clustering(k):
    weights, _ = _planted_weights()
    assert connected_components(weights)[0] == 1
    expected = SpectralClustering(
        n_clusters=k,
        affinity="precomputed",
        random_state=0,
        assign_labels="cluster_qr",
    ).fit_predict(weights)
    found, by_k = label_order.spectral_communities(weights, num_communities=k)
    assert by_k == {}
    assert adjusted_rand_score(expected, found) == 1.0


def test_auto_finds_the_planted_communities_and_reports_q_by_k():
    weights, block = _planted_weights()
    found, by_k = label_order.spectral_communities(weights, max_communities=12)
    assert sorted(by_k) == list(range(2, 13))
    assert max(by_k, key=by_k.get) == 6
    assert adjusted_rand_score(block, found) == 1.0
    assert by_k[6] == pytest.approx(label_order.modularity(weights, block))
    # Numbered by size, largest first.
    sizes = np.bincount(found)
    assert list(sizes) == sorted(sizes, reverse=True)


def test_the_sparse_eigensolver_gives_the_dense_partition(monkeypatch):
    weights, block = _planted_weights(400, 8)
    dense, dense_q = label_order.spectral_communities(weights, max_communities=12)
    monkeypatch.setattr(label_order, "_DENSE_EIGEN_LIMIT", 50)
    sparse, sparse_q = label_order.spectral_communities(
        scipy.sparse.csr_matrix(weights), max_communities=12
    )
    assert adjusted_rand_score(dense, sparse) == 1.0
    assert adjusted_rand_score(block, sparse) == 1.0
    assert sparse_q == pytest.approx(dense_q, abs=1e-6)


def test_disconnected_parts_are_never_one_community():
    # Two triangles without an edge between them, asked for one community.
    weights = np.zeros((6, 6))
    for a, b in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]:
        weights[a, b] = weights[b, a] = 1
    found, _ = label_order.spectral_communities(weights, num_communities=1)
    assert list(found) == [0, 0, 0, 1, 1, 1]


def test_modularity_of_a_sparse_matrix_is_the_dense_value():
    weights, block = _planted_weights()
    assert label_order.modularity(
        scipy.sparse.csr_matrix(weights), block
    ) == pytest.approx(label_order.modularity(weights, block))


def test_communities_of_10000_labels_from_sparse_counts():
    y, block = planted_labels()
    graph = LabelGraph.from_labels(y)
    assert graph.sparse and graph.num_labels == 10_000
    tracemalloc.start()
    try:
        order, community = label_order.label_communities(
            graph.pair_counts, graph.label_counts
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A D x D array of bytes alone would be 100 MB.
    assert peak < 60e6, peak
    assert sorted(order) == list(range(10_000))
    assert list(community[order]) == sorted(community[order])
    assert adjusted_rand_score(block, community) > 0.95


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_communities": 0}, "num_communities must be 'auto' or an integer >= 1"),
        ({"num_communities": "many"}, "num_communities must be 'auto' or an integ"),
        ({"max_communities": 1}, "max_communities must be an integer >= 2"),
    ],
)
def test_bad_community_counts_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        label_order.label_communities(np.zeros((3, 3)), np.ones(3), **kwargs)
    ((name, value),) = kwargs.items()
    assert str(info.value).endswith(f"Received: {name}={value!r}")
