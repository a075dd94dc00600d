"""Label communities from co-occurrence and from GCN node features."""

import os
import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from sklearn.metrics import adjusted_rand_score

from kmlc.clustering import figures
from kmlc.clustering.communities import label_communities
from kmlc.clustering.communities import modularity
from kmlc.graph import LabelGraph
from tests.label_fixtures import planted_labels

NAMES = ["sea", "boat", "fish", "road", "car", "house", "moon"]


def two_themes(seed=0):
    """Images of sea things and of street things; "moon" always alone."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((200, 7), np.uint8)
    sea = rng.random(200) < 0.5
    for rows, columns in ((sea, [0, 1, 2]), (~sea, [3, 4, 5])):
        picked = rng.random((200, 3)) < 0.7
        labels[np.ix_(rows, columns)] = picked[rows]
    labels[:5] = 0
    labels[:5, 6] = 1
    return LabelGraph.from_labels(labels, label_names=NAMES)


def test_co_occurring_labels_form_communities_and_lone_labels_none():
    communities = label_communities(two_themes())
    groups = sorted(sorted(group) for group in communities.members())
    assert groups == [["boat", "fish", "sea"], ["car", "house", "road"]]
    assert communities.communities[NAMES.index("moon")] == -1
    assert communities.modularity > 0.4
    assert max(communities.modularity_by_k, key=communities.modularity_by_k.get) == 2
    ordered = [NAMES[i] for i in communities.order[:3]]
    assert sorted(ordered) in (["boat", "fish", "sea"], ["car", "house", "road"])


def test_gcn_node_features_give_their_own_communities():
    rng = np.random.default_rng(0)
    nodes = np.zeros((7, 4))
    nodes[[0, 1, 3], 0] = 1.0  # the GCN puts "road" with the sea labels
    nodes[[2, 4, 5], 1] = 1.0
    nodes += rng.normal(0, 0.05, nodes.shape)
    communities = label_communities(two_themes(), node_features=nodes)
    gcn = communities.summary()["gcn_members"]
    assert sorted(sorted(group) for group in gcn) == [
        ["boat", "road", "sea"],
        ["car", "fish", "house"],
    ]
    assert 0 < communities.agreement < 1


def test_modularity_matches_a_hand_computed_value():
    # Two triangles joined by one edge: Q = 5/14 for the two triangles.
    weights = np.zeros((6, 6))
    for a, b in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]:
        weights[a, b] = weights[b, a] = 1
    assert np.isclose(modularity(weights, np.array([0, 0, 0, 1, 1, 1])), 5 / 14)
    assert np.isclose(modularity(weights, np.zeros(6, int)), 0.0)


def test_communities_of_10000_labels_from_a_sparse_graph(tmp_path):
    y, block = planted_labels()  # 20 planted communities
    graph = LabelGraph.from_labels(y)
    assert graph.sparse
    # Node features that place each label near its community's axis.
    rng = np.random.default_rng(0)
    nodes = np.eye(20)[block] + rng.normal(0, 0.2, (10_000, 20))
    tracemalloc.start()
    try:
        communities = label_communities(graph, node_features=nodes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A D x D array of bytes alone would be 100 MB.
    assert peak < 60e6, peak
    assert scipy.sparse.issparse(communities.weights)
    assert communities.num_communities == 20
    assert adjusted_rand_score(block, communities.communities) > 0.95
    assert adjusted_rand_score(block, communities.gcn_communities) > 0.95
    assert communities.agreement > 0.9
    assert communities.modularity == pytest.approx(
        modularity(communities.weights, communities.communities)
    )
    path = figures.community_heatmap(communities, tmp_path / "communities.png")
    assert os.path.getsize(path) > 0
