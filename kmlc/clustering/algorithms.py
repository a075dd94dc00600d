"""Grouping embeddings: k-means, streaming mini-batch k-means, HDBSCAN.

All from scikit-learn:

- `kmeans`: exact k-means in memory;
- `streaming_kmeans`: `MiniBatchKMeans.partial_fit` over chunks of a `.npy`
  file, then a second pass that assigns every row; memory stays one chunk
  plus the centres, however many rows (assignments and distances go to
  `.npy` files too);
- `hdbscan`: when the number of groups is unknown; images in no group get
  cluster -1 (noise);
- `choose_k`: k by the silhouette of k-means on a sample (`--clusters auto`).

`cluster` picks among them. Every function returns a `Partition`.
"""

import dataclasses
import logging
import os
import time

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.cluster import KMeans
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

from kmlc.clustering import store

logger = logging.getLogger("kmlc.cluster")

ALGORITHMS = ("auto", "kmeans", "minibatch", "hdbscan")
# Above this many bytes of embeddings, "auto" streams (mini-batch k-means).
IN_MEMORY_BYTES = 2**28
# HDBSCAN holds the vectors and a spanning tree in memory.
HDBSCAN_MAX_ROWS = 100_000
K_CANDIDATES = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)


@dataclasses.dataclass
class Partition:
    """Which cluster each row belongs to.

    Attributes:
        assignments: `[N]` int32 array, or the `.npy` file of one: each
            row's cluster, -1 for HDBSCAN's noise.
        distances: `[N]` float32 array or `.npy` file: each row's distance
            to its cluster's centre (noise: to the nearest centre).
        centres: `[K, F]` float32.
        algorithm: str. What produced it.
        silhouettes: dict. k -> silhouette on the sample, when k was chosen.
        seconds: float. Wall time of the clustering.
    """

    assignments: object
    distances: object
    centres: np.ndarray
    algorithm: str
    silhouettes: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def num_clusters(self):
        return len(self.centres)

    def arrays(self):
        """`(assignments, distances)` as in-memory arrays."""
        return (
            store.load(self.assignments).reshape(-1),
            store.load(self.distances).reshape(-1),
        )


def check_num_clusters(num_clusters, num_rows):
    """Raises `ValueError` unless 2 <= k <= the number of images."""
    if num_rows < 2:
        raise ValueError(
            f"Clustering needs at least 2 images. Received: {num_rows} image(s)"
        )
    if not 2 <= int(num_clusters) <= num_rows:
        raise ValueError(
            f"--clusters must be between 2 and the number of images "
            f"({num_rows}). Received: --clusters {num_clusters}"
        )


def _nearest(vectors, centres):
    """`(index [n], distance [n])` of each row's nearest centre."""
    squared = (
        (vectors**2).sum(axis=1, keepdims=True)
        - 2.0 * vectors @ centres.T
        + (centres**2).sum(axis=1)[None]
    )
    index = np.argmin(squared, axis=1)
    # The expansion above loses digits; the distance to the chosen centre
    # is computed directly.
    distance = np.linalg.norm(vectors - centres[index], axis=1)
    return index.astype(np.int32), distance.astype(np.float32)


def kmeans(vectors, num_clusters, seed=0):
    """Exact k-means (`sklearn.cluster.KMeans`, 4 restarts) in memory."""
    vectors = np.asarray(vectors, np.float32)
    check_num_clusters(num_clusters, len(vectors))
    start = time.perf_counter()
    model = KMeans(n_clusters=int(num_clusters), random_state=seed, n_init=4)
    model.fit(vectors)
    centres = model.cluster_centers_.astype(np.float32)
    assignments, distances = _nearest(vectors, centres)
    return Partition(
        assignments, distances, centres, "kmeans", seconds=time.perf_counter() - start
    )


def streaming_kmeans(path, num_clusters, directory, seed=0, chunk_rows=4096, epochs=3):
    """Mini-batch k-means over a `.npy` file that need not fit in memory.

    The centres start from k-means (k-means++, 3 restarts) on a random
    sample of the rows, then
    `MiniBatchKMeans.partial_fit` sees every chunk of `chunk_rows` rows
    `epochs` times (chunks in a fresh random order each time); a last pass
    writes each row's cluster and distance to `assignments.npy` and
    `distances.npy` in `directory`.
    """
    total = store.num_rows(path)
    check_num_clusters(num_clusters, total)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample_size = min(total, max(3 * int(num_clusters), chunk_rows))
    sample = store.take_rows(path, rng.choice(total, sample_size, replace=False))
    initial = KMeans(n_clusters=int(num_clusters), random_state=seed, n_init=3)
    initial.fit(sample.astype(np.float32))
    model = MiniBatchKMeans(
        n_clusters=int(num_clusters),
        init=initial.cluster_centers_,
        batch_size=chunk_rows,
        random_state=seed,
        n_init=1,
        # A chunk may hold one kind of image only (a collection stored by
        # theme): centres it does not visit must not be moved onto it.
        reassignment_ratio=0.0,
    )
    starts = np.arange(0, total, chunk_rows)
    for _ in range(epochs):
        for first in rng.permutation(starts):
            model.partial_fit(store.rows(path, first, first + chunk_rows))
    centres = model.cluster_centers_.astype(np.float32)
    os.makedirs(directory, exist_ok=True)
    assignments = os.path.join(directory, "assignments.npy")
    distances = os.path.join(directory, "distances.npy")
    with (
        store.RowWriter(assignments, total, 1, np.int32) as cluster_rows,
        store.RowWriter(distances, total, 1, np.float32) as distance_rows,
    ):
        for _, rows in store.iter_chunks(path, chunk_rows):
            index, distance = _nearest(rows, centres)
            cluster_rows.write(index[:, None])
            distance_rows.write(distance[:, None])
    return Partition(
        assignments,
        distances,
        centres,
        "minibatch-kmeans",
        seconds=time.perf_counter() - start,
    )


def hdbscan(vectors, min_cluster_size=None, max_dims=50, seed=0):
    """HDBSCAN on the vectors (first reduced to `max_dims` by PCA).

    `min_cluster_size` defaults to 1% of the rows (at least 5). Rows in no
    dense group get cluster -1, and their distance to the nearest centre.
    """
    vectors = np.asarray(vectors, np.float32)
    check_num_clusters(2, len(vectors))
    if len(vectors) > HDBSCAN_MAX_ROWS:
        raise ValueError(
            f"HDBSCAN holds every image in memory; use it on at most "
            f"{HDBSCAN_MAX_ROWS} images, or k-means (--clusters K or auto). "
            f"Received: {len(vectors)} images"
        )
    start = time.perf_counter()
    if min_cluster_size is None:
        min_cluster_size = max(5, len(vectors) // 100)
    reduced = vectors
    if vectors.shape[1] > max_dims and len(vectors) > max_dims:
        reduced = PCA(max_dims, random_state=seed).fit_transform(vectors)
    labels = HDBSCAN(min_cluster_size=int(min_cluster_size), copy=True).fit_predict(
        reduced
    )
    found = sorted(set(labels.tolist()) - {-1})
    if not found:
        raise ValueError(
            f"HDBSCAN found no clusters: all {len(vectors)} images are noise "
            f"at min_cluster_size={min_cluster_size}. Try a smaller "
            "--min-cluster-size, or k-means (--clusters K or auto)."
        )
    assignments = np.full(len(vectors), -1, np.int32)
    for new, old in enumerate(found):
        assignments[labels == old] = new
    centres = np.stack(
        [vectors[assignments == k].mean(axis=0) for k in range(len(found))]
    )
    _, distances = _nearest(vectors, centres)
    members = assignments >= 0
    own = centres[assignments[members]]
    distances[members] = np.linalg.norm(vectors[members] - own, axis=1)
    return Partition(
        assignments,
        distances,
        centres.astype(np.float32),
        "hdbscan",
        seconds=time.perf_counter() - start,
    )


def choose_k(source, candidates=K_CANDIDATES, sample_size=3000, seed=0):
    """k with the best silhouette of k-means on a random sample.

    Returns `(k, {k: silhouette})`.
    """
    total = store.num_rows(source)
    check_num_clusters(2, total)
    rng = np.random.default_rng(seed)
    indices = rng.choice(total, min(total, sample_size), replace=False)
    sample = np.asarray(store.take_rows(source, indices), np.float32)
    candidates = [k for k in candidates if 2 <= k < len(sample)]
    if not candidates:
        raise ValueError(
            f"--clusters auto needs at least 3 images to compare groupings. "
            f"Received: {total} images"
        )
    silhouettes = {}
    for k in candidates:
        labels = KMeans(n_clusters=k, random_state=seed, n_init=2).fit_predict(sample)
        if len(set(labels.tolist())) < 2:
            continue
        silhouettes[k] = float(silhouette_score(sample, labels, random_state=seed))
    if not silhouettes:
        raise ValueError(
            f"--clusters auto found no k that splits the {total} images "
            "(all the vectors are identical?)."
        )
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    logger.info("silhouette by k on %d images: %s", len(sample), silhouettes)
    return best, silhouettes


def cluster(source, clusters, directory, algorithm="auto", seed=0, **options):
    """Clusters the rows of an array or `.npy` file.

    Args:
        source: `[N, F]` array or the path of a `.npy` file.
        clusters: int k, or `"auto"` (k by silhouette; ignored by HDBSCAN).
        directory: where the streaming path writes its `.npy` files.
        algorithm: one of `ALGORITHMS`. `"auto"`: k-means when the vectors
            take at most `IN_MEMORY_BYTES`, mini-batch k-means above.
        options: `min_cluster_size` for HDBSCAN; `chunk_rows`, `epochs` for
            the streaming path.

    Returns:
        `Partition`.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {ALGORITHMS}. Received: algorithm={algorithm!r}"
        )
    total = store.num_rows(source)
    if algorithm == "hdbscan":
        return hdbscan(store.load(source), options.get("min_cluster_size"), seed=seed)
    silhouettes = {}
    if clusters == "auto":
        clusters, silhouettes = choose_k(source, seed=seed)
    check_num_clusters(clusters, total)
    if algorithm == "auto":
        if isinstance(source, np.ndarray):
            width = source.shape[1]
        else:
            width = store.read_header(source)[0][1]
        fits = total * width * 4 <= IN_MEMORY_BYTES
        algorithm = "kmeans" if fits else "minibatch"
    if algorithm == "kmeans":
        partition = kmeans(store.load(source), clusters, seed)
    else:
        partition = streaming_kmeans(
            source,
            clusters,
            directory,
            seed=seed,
            chunk_rows=options.get("chunk_rows", 4096),
            epochs=options.get("epochs", 3),
        )
    partition.silhouettes = silhouettes
    return partition
