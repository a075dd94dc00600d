"""What each cluster is: a name, its size, its central images, its outliers.

A cluster is named by its most *characteristic* labels, not its most
frequent ones: "sky" is the most frequent label of half the clusters of a
photo collection and names none of them. A label's rate in a cluster is the
mean of its predicted score over the cluster's images (so unlabelled
collections are named too); its lift is that rate over the label's rate in
the whole collection (its base rate). The name is the labels of highest
lift among those with a rate of at least `min_rate` in the cluster, so a
label that three images of ten thousand carry cannot name a cluster alone.

Everything here reads the scores, assignments and distances a chunk at a
time (arrays or `.npy` files, `kmlc.clustering.store`).
"""

import numpy as np
import scipy.sparse

from kmlc.clustering import store


def cluster_sums(clusters, values, num_clusters):
    """Sums of `values` `[n, F]` per cluster `[K, F]`; rows of cluster -1
    are left out."""
    members = np.flatnonzero(clusters >= 0)
    one_hot = scipy.sparse.csr_matrix(
        (np.ones(len(members)), (clusters[members], members)),
        shape=(num_clusters, len(clusters)),
    )
    return np.asarray(one_hot @ np.asarray(values, np.float64))


def label_rates(scores, assignments, num_clusters, chunk_rows=65536):
    """Per-cluster and collection-wide mean label scores.

    Args:
        scores: `[N, D]` array or `.npy` file.
        assignments: `[N]` (or `[N, 1]`) array or `.npy` file; -1 (noise)
            counts in the base rate only.
        num_clusters: int. K.

    Returns:
        `(rates [K, D], base [D], sizes [K])`.
    """
    sums, totals, sizes, count = None, None, np.zeros(num_clusters, np.int64), 0
    for start, block in store.iter_chunks(scores, chunk_rows):
        clusters = store.rows(assignments, start, start + len(block)).reshape(-1)
        if sums is None:
            sums = np.zeros((num_clusters, block.shape[1]), np.float64)
            totals = np.zeros(block.shape[1], np.float64)
        sums += cluster_sums(clusters, block, num_clusters)
        sizes += np.bincount(clusters[clusters >= 0], minlength=num_clusters)
        totals += block.sum(axis=0)
        count += len(block)
    rates = sums / np.maximum(sizes, 1)[:, None]
    return rates, totals / max(count, 1), sizes


def characteristic_labels(rates, base, label_names, count=5, min_rate=0.1):
    """The labels of highest lift in one cluster.

    Args:
        rates: `[D]` the cluster's mean scores.
        base: `[D]` the collection's.
        count: int. How many labels.
        min_rate: float. A label needs at least this rate in the cluster;
            if none has, the labels of highest rate are given instead.

    Returns:
        list of `{"label", "rate", "base_rate", "lift"}`, highest lift first.
    """
    lift = rates / np.maximum(base, 1e-9)
    eligible = np.flatnonzero(rates >= min_rate)
    if len(eligible):
        order = eligible[np.argsort(-lift[eligible], kind="stable")]
    else:
        order = np.argsort(-rates, kind="stable")
    return [
        {
            "label": label_names[i],
            "rate": round(float(rates[i]), 4),
            "base_rate": round(float(base[i]), 4),
            "lift": round(float(lift[i]), 3),
        }
        for i in order[:count]
    ]


def cluster_name(top_labels, words=3):
    """`"tiger · grass · forest"` from `characteristic_labels`."""
    return " · ".join(item["label"] for item in top_labels[:words]) or "(no labels)"


def extremes(assignments, distances, num_clusters, count=12, chunk_rows=65536):
    """The rows nearest to and farthest from each cluster's centre.

    Returns:
        `(central, outliers)`: lists of K arrays of row indices, nearest
        first and farthest first.
    """
    near = [np.zeros((0, 2)) for _ in range(num_clusters)]
    far = [np.zeros((0, 2)) for _ in range(num_clusters)]
    for start, block in store.iter_chunks(distances, chunk_rows):
        block = block.reshape(-1)
        clusters = store.rows(assignments, start, start + len(block)).reshape(-1)
        rows = np.arange(start, start + len(block))
        for k in np.unique(clusters[clusters >= 0]):
            members = clusters == k
            pairs = np.stack([block[members], rows[members]], axis=1)
            near[k] = _keep(np.concatenate([near[k], pairs]), count, smallest=True)
            far[k] = _keep(np.concatenate([far[k], pairs]), count, smallest=False)
    return (
        [pairs[:, 1].astype(np.int64) for pairs in near],
        [pairs[:, 1].astype(np.int64) for pairs in far],
    )


def _keep(pairs, count, smallest):
    """The `count` (distance, row) pairs of smallest or largest distance."""
    key = pairs[:, 0] if smallest else -pairs[:, 0]
    order = np.lexsort((pairs[:, 1], key))[:count]
    return pairs[order]


def describe(
    partition,
    scores,
    keys,
    label_names,
    top_labels=5,
    min_rate=0.1,
    thumbnails=12,
    outliers=4,
):
    """One summary per cluster, largest first.

    Args:
        partition: `kmlc.clustering.algorithms.Partition`.
        scores: `[N, D]` label scores, array or `.npy` file.
        keys: `[N]` image names.
        label_names: list of D names.

    Returns:
        list of dicts: `cluster`, `name`, `size`, `share`, `top_labels`
        (see `characteristic_labels`), `mean_distance`, `central_images`
        and `outliers` (image names), and `central_rows`, `outlier_rows`
        (row indices).
    """
    k = partition.num_clusters
    rates, base, sizes = label_rates(scores, partition.assignments, k)
    central, far = extremes(
        partition.assignments, partition.distances, k, max(thumbnails, outliers)
    )
    distance_sums = np.zeros(k)
    for start, block in store.iter_chunks(partition.distances):
        clusters = store.rows(partition.assignments, start, start + len(block))
        distance_sums += cluster_sums(clusters.reshape(-1), block.reshape(-1, 1), k)[
            :, 0
        ]
    total = len(keys)
    summaries = []
    for cluster in range(k):
        top = characteristic_labels(
            rates[cluster], base, label_names, top_labels, min_rate
        )
        summaries.append(
            {
                "cluster": cluster,
                "name": cluster_name(top),
                "size": int(sizes[cluster]),
                "share": round(float(sizes[cluster]) / max(total, 1), 4),
                "top_labels": top,
                "mean_distance": round(
                    float(distance_sums[cluster] / max(sizes[cluster], 1)), 4
                ),
                "central_images": [str(keys[i]) for i in central[cluster][:thumbnails]],
                "outliers": [str(keys[i]) for i in far[cluster][:outliers]],
                "central_rows": central[cluster][:thumbnails].tolist(),
                "outlier_rows": far[cluster][:outliers].tolist(),
            }
        )
    summaries.sort(key=lambda entry: (-entry["size"], entry["cluster"]))
    return summaries
