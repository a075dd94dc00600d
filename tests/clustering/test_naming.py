"""Cluster names by lift, central images and outliers, read in chunks."""

import numpy as np

from kmlc.clustering import naming
from kmlc.clustering.algorithms import Partition

NAMES = ["sky", "tiger", "sea", "boat"]


def test_a_cluster_is_named_by_lift_not_by_its_most_frequent_label():
    # sky is everywhere; tiger only in cluster 0, sea and boat in cluster 1.
    scores = np.array(
        [[0.95, 0.7, 0.05, 0.1]] * 10 + [[0.9, 0.0, 0.8, 0.3]] * 10, np.float32
    )
    assignments = np.repeat([0, 1], 10).astype(np.int32)
    partition = Partition(
        assignments, np.linspace(0, 1, 20, dtype=np.float32), np.zeros((2, 4)), "test"
    )
    keys = np.array([f"img{i}" for i in range(20)], object)
    summaries = naming.describe(partition, scores, keys, NAMES, thumbnails=3)
    by_cluster = {entry["cluster"]: entry for entry in summaries}
    assert by_cluster[0]["name"].startswith("tiger")
    assert by_cluster[1]["top_labels"][0]["label"] == "sea"
    tiger = by_cluster[0]["top_labels"][0]
    assert tiger["lift"] == 2.0 and tiger["rate"] == 0.7 and tiger["base_rate"] == 0.35
    assert by_cluster[0]["central_images"] == ["img0", "img1", "img2"]
    assert by_cluster[1]["outliers"][:2] == ["img19", "img18"]
    assert [entry["size"] for entry in summaries] == [10, 10]


def test_labels_below_min_rate_cannot_name_a_cluster():
    base = np.array([0.5, 0.001])
    rates = np.array([0.6, 0.01])  # the rare label has lift 10, rate 1%
    top = naming.characteristic_labels(rates, base, ["sky", "rare"], min_rate=0.1)
    assert [item["label"] for item in top] == ["sky"]
    top = naming.characteristic_labels(rates * 0.1, base, ["sky", "rare"])
    assert [item["label"] for item in top] == ["sky", "rare"]  # fallback: by rate


def test_extremes_in_chunks_match_a_full_sort(tmp_path):
    rng = np.random.default_rng(0)
    assignments = rng.integers(-1, 4, 1000).astype(np.int32)
    distances = rng.random(1000).astype(np.float32)
    central, outliers = naming.extremes(assignments, distances, 4, 5, chunk_rows=64)
    for k in range(4):
        members = np.flatnonzero(assignments == k)
        order = members[np.argsort(distances[members])]
        np.testing.assert_array_equal(central[k], order[:5])
        np.testing.assert_array_equal(outliers[k], order[::-1][:5])
    scores = rng.random((1000, 3)).astype(np.float32)
    rates, base, sizes = naming.label_rates(scores, assignments, 4, chunk_rows=64)
    np.testing.assert_allclose(base, scores.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(
        rates[2], scores[assignments == 2].mean(axis=0), rtol=1e-5
    )
    assert sizes.tolist() == [int((assignments == k).sum()) for k in range(4)]
