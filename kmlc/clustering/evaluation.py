"""How well image clusters agree with the images' known label sets.

NMI and ARI need one class per image; a multi-label image has several. kmlc
takes its *dominant* label to be its rarest one in the collection (the
most specific): in a photo collection the frequent labels ("sky", "water",
"people") are shared by scenes that have nothing else in common, while the
rarest label ("tiger", "pyramid", "stained glass") is the one that tells
the scene apart. `rule="frequent"` gives the other reading.

Two measures use the whole label set:

- label purity: for each cluster, the share of its images that carry its
  most common label, averaged over clusters weighted by size;
- the mean Jaccard overlap `|A & B| / |A | B|` of the label sets of two
  images in the same cluster, against two images in different clusters
  (exact up to `EXACT_PAIRS_LIMIT` images, else on sampled pairs). A
  grouping by labels makes the first high and the second low.

Images without labels are left out; HDBSCAN's noise (-1) counts as one more
cluster.
"""

import numpy as np
import scipy.sparse
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics import normalized_mutual_info_score

DOMINANT_RULES = ("rarest", "frequent")
EXACT_PAIRS_LIMIT = 3000


def dominant_labels(labels, rule="rarest"):
    """Each image's dominant label, by its frequency in the collection.

    Args:
        labels: `[N, D]` multi-hot.
        rule: `"rarest"` or `"frequent"`. Ties go to the lower index.

    Returns:
        `[N]` int, -1 for an image without labels.
    """
    if rule not in DOMINANT_RULES:
        raise ValueError(
            f"rule must be one of {DOMINANT_RULES}. Received: rule={rule!r}"
        )
    labels = np.asarray(labels) > 0
    counts = labels.sum(axis=0).astype(np.float64)
    if rule == "rarest":
        key = np.where(labels, counts[None], np.inf)
        dominant = np.argmin(key, axis=1)
    else:
        key = np.where(labels, counts[None], -np.inf)
        dominant = np.argmax(key, axis=1)
    return np.where(labels.any(axis=1), dominant, -1)


def label_purity(assignments, labels):
    """Size-weighted mean over clusters of the share of the cluster's most
    common label."""
    labels = np.asarray(labels) > 0
    total = 0
    for cluster in np.unique(assignments):
        members = labels[assignments == cluster]
        total += members.sum(axis=0).max()
    return float(total / max(len(assignments), 1))


def _jaccard_rows(labels, first, second):
    a, b = labels[first], labels[second]
    inter = np.logical_and(a, b).sum(axis=1)
    union = np.logical_or(a, b).sum(axis=1)
    return inter / np.maximum(union, 1)


def jaccard_within_between(assignments, labels, num_pairs=20000, seed=0):
    """Mean Jaccard overlap of label sets: `(within clusters, between)`.

    Exact over every pair up to `EXACT_PAIRS_LIMIT` images; above, on
    `num_pairs` pairs drawn uniformly from each kind. NaN when there is no
    pair of a kind (one cluster, or only singletons).
    """
    labels = np.asarray(labels) > 0
    assignments = np.asarray(assignments)
    count = len(assignments)
    if count <= EXACT_PAIRS_LIMIT:
        matrix = labels.astype(np.float32)
        inter = matrix @ matrix.T
        sizes = matrix.sum(axis=1)
        values = inter / np.maximum(sizes[:, None] + sizes[None] - inter, 1)
        first, second = np.triu_indices(count, k=1)
        values = values[first, second]
        same = assignments[first] == assignments[second]
        within = values[same].mean() if same.any() else np.nan
        between = values[~same].mean() if (~same).any() else np.nan
        return float(within), float(between)
    rng = np.random.default_rng(seed)
    clusters, inverse, sizes = np.unique(
        assignments, return_inverse=True, return_counts=True
    )
    pair_counts = sizes * (sizes - 1.0)
    within = np.nan
    if pair_counts.sum() > 0:
        chosen = rng.choice(len(clusters), num_pairs, p=pair_counts / pair_counts.sum())
        order = np.argsort(inverse, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        i = rng.integers(0, sizes[chosen])
        j = rng.integers(0, sizes[chosen] - 1)
        j = j + (j >= i)
        first = order[offsets[chosen] + i]
        second = order[offsets[chosen] + j]
        within = _jaccard_rows(labels, first, second).mean()
    first = rng.integers(0, count, 4 * num_pairs)
    second = rng.integers(0, count, 4 * num_pairs)
    keep = np.flatnonzero(assignments[first] != assignments[second])[:num_pairs]
    between = (
        _jaccard_rows(labels, first[keep], second[keep]).mean() if len(keep) else np.nan
    )
    return float(within), float(between)


def evaluate(assignments, labels, rule="rarest", seed=0):
    """Agreement of a clustering with the known labels.

    Args:
        assignments: `[N]` clusters.
        labels: `[N, D]` multi-hot, in the same order.
        rule: how the dominant label is chosen (`dominant_labels`).

    Returns:
        dict: `nmi`, `ari` (against the dominant label), `purity`,
        `jaccard_within`, `jaccard_between`, `images` (with labels),
        `clusters`, `dominant_rule`.
    """
    assignments = np.asarray(assignments).reshape(-1)
    labels = np.asarray(labels) > 0
    if len(assignments) != len(labels):
        raise ValueError(
            f"{len(assignments)} assignments for {len(labels)} label rows."
        )
    known = labels.any(axis=1)
    assignments, labels = assignments[known], labels[known]
    dominant = dominant_labels(labels, rule)
    within, between = jaccard_within_between(assignments, labels, seed=seed)
    return {
        "nmi": float(normalized_mutual_info_score(dominant, assignments)),
        "ari": float(adjusted_rand_score(dominant, assignments)),
        "purity": label_purity(assignments, labels),
        "jaccard_within": within,
        "jaccard_between": between,
        "images": int(known.sum()),
        "clusters": int(len(np.unique(assignments))),
        "dominant_rule": rule,
    }


def labels_known(labels):
    """Whether any image has a label (`labels`: dense or SciPy sparse)."""
    if scipy.sparse.issparse(labels):
        return bool(labels.nnz)
    return bool(np.asarray(labels).any())
