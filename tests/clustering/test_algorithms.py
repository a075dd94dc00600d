"""k-means, streaming mini-batch k-means, HDBSCAN and k by silhouette."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from kmlc.clustering import algorithms
from kmlc.clustering import store


def blobs(per_blob=60, centres=((0, 0, 0), (6, 0, 0), (0, 6, 0)), seed=0):
    """Well-separated Gaussian blobs `[n, 3]` and their blob of each row."""
    rng = np.random.default_rng(seed)
    points = np.concatenate(
        [rng.normal(centre, 0.4, (per_blob, 3)) for centre in centres]
    ).astype(np.float32)
    return points, np.repeat(np.arange(len(centres)), per_blob)


def test_kmeans_recovers_the_blobs_and_measures_distances():
    points, truth = blobs()
    partition = algorithms.kmeans(points, 3)
    assert adjusted_rand_score(truth, partition.assignments) == 1.0
    own = partition.centres[partition.assignments]
    np.testing.assert_allclose(
        partition.distances, np.linalg.norm(points - own, axis=1), rtol=1e-4
    )


def test_streaming_kmeans_over_a_file_matches_in_memory_kmeans(tmp_path):
    points, truth = blobs(per_blob=400)
    order = np.argsort(truth, kind="stable")  # sorted: chunks are one blob each
    path = tmp_path / "vectors.npy"
    with store.RowWriter(path, len(points), 3) as writer:
        writer.write(points[order])
    partition = algorithms.streaming_kmeans(
        str(path), 3, tmp_path / "work", chunk_rows=128
    )
    assert partition.algorithm == "minibatch-kmeans"
    assignments, distances = partition.arrays()
    assert isinstance(partition.assignments, str)  # rows went to a file
    assert adjusted_rand_score(truth[order], assignments) == 1.0
    own = partition.centres[assignments]
    np.testing.assert_allclose(
        distances, np.linalg.norm(points[order] - own, axis=1), rtol=1e-4, atol=1e-5
    )


def test_auto_streams_above_the_in_memory_limit(tmp_path, monkeypatch):
    points, truth = blobs()
    path = tmp_path / "vectors.npy"
    np.save(path, points)
    assert algorithms.cluster(str(path), 3, tmp_path).algorithm == "kmeans"
    monkeypatch.setattr(algorithms, "IN_MEMORY_BYTES", 100)
    partition = algorithms.cluster(str(path), 3, tmp_path, chunk_rows=32)
    assert partition.algorithm == "minibatch-kmeans"
    assert adjusted_rand_score(truth, partition.arrays()[0]) == 1.0


def test_auto_k_picks_the_number_of_blobs_by_silhouette(tmp_path):
    points, _ = blobs(centres=((0, 0, 0), (6, 0, 0), (0, 6, 0), (0, 0, 6)))
    partition = algorithms.cluster(points, "auto", tmp_path)
    assert partition.num_clusters == 4
    assert max(partition.silhouettes, key=partition.silhouettes.get) == 4
    assert partition.silhouettes[4] > partition.silhouettes[2]


def test_hdbscan_finds_the_blobs_and_calls_scattered_points_noise():
    points, truth = blobs()
    rng = np.random.default_rng(1)
    scattered = rng.uniform(-20, 30, (10, 3)).astype(np.float32)
    partition = algorithms.hdbscan(np.concatenate([points, scattered]))
    assert partition.num_clusters == 3
    assert adjusted_rand_score(truth, partition.assignments[:180]) == 1.0
    assert (partition.assignments[180:] == -1).sum() >= 8


def test_hdbscan_says_when_everything_is_noise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="all 40 images are noise"):
        algorithms.hdbscan(rng.uniform(size=(40, 3)), min_cluster_size=30)


@pytest.mark.parametrize(
    "clusters, count, message",
    [
        (5, 3, r"between 2 and the number of images \(3\)\. Received: --clusters 5"),
        (1, 3, r"Received: --clusters 1"),
        (2, 1, r"at least 2 images\. Received: 1 image"),
        ("auto", 2, r"at least 3 images to compare groupings\. Received: 2 images"),
    ],
)
def test_bad_cluster_counts_are_refused(tmp_path, clusters, count, message):
    with pytest.raises(ValueError, match=message):
        algorithms.cluster(np.eye(3, dtype=np.float32)[:count], clusters, tmp_path)


def test_an_unknown_algorithm_is_named():
    with pytest.raises(ValueError, match="Received: algorithm='dbscan'"):
        algorithms.cluster(np.eye(3), 2, ".", algorithm="dbscan")
