import numpy as np
import pytest

from kmlc import label_order
from kmlc.graph import LabelGraph


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


def test_similarity_is_the_cosine_of_label_columns():
    y = np.random.default_rng(3).random((50, 5)) < 0.4
    graph = LabelGraph.from_labels(y.astype(np.uint8))
    similarity = label_order.cooccurrence_similarity(
        graph.pair_counts, graph.label_counts
    )
    columns = y.astype(float)
    norms = np.linalg.norm(columns, axis=0)
    expected = columns.T @ columns / np.outer(norms, norms)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(similarity, expected, atol=1e-12)


@pytest.mark.parametrize("cut", [0.0, 1.5])
def test_bad_cut(cut):
    with pytest.raises(
        ValueError, match=rf"cut must be in \(0, 1\] or None. Received: cut={cut}"
    ):
        label_order.label_communities(np.zeros((3, 3)), np.ones(3), cut=cut)
