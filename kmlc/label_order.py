"""An order of the labels that shows the label graph's communities.

`label_communities` orders the labels so that labels which occur together
sit next to each other, and groups them into communities (contiguous runs
of that order): what `kmlc.plots.label_graph` and its HTML view draw.
Plain NumPy/SciPy.
"""

import numpy as np

# Above this many labels the optimal leaf ordering (cubic in the labels:
# 0.1 s at 260 labels, 5 s at 1,000) is skipped; communities stay together.
_MAX_OPTIMAL_ORDERING = 500
# The largest distance at which labels form a community by default.
_MAX_CUT = 0.9


def cooccurrence_similarity(pair_counts, label_counts):
    """`N[i, j] / sqrt(M[i] M[j])` `[D, D]`: how much two labels occur together.

    The cosine between the labels' columns of the multi-hot matrix, in
    [0, 1], symmetric, 1 on the diagonal; 0 for a label never seen.
    """
    pair_counts = np.asarray(pair_counts, np.float64)
    label_counts = np.asarray(label_counts, np.float64)
    scale = np.sqrt(np.outer(label_counts, label_counts))
    similarity = np.divide(
        pair_counts, scale, out=np.zeros_like(pair_counts), where=scale > 0
    )
    similarity = np.clip((similarity + similarity.T) / 2, 0.0, 1.0)
    np.fill_diagonal(similarity, 1.0)
    return similarity


def label_communities(pair_counts, label_counts, cut=None):
    """Labels in an order that keeps co-occurring labels together.

    Average-linkage hierarchical clustering of the labels on the distance
    `1 - cooccurrence_similarity`, with SciPy's optimal leaf ordering (up to
    500 labels). Cutting the tree at a distance gives the communities:
    subtrees whose halves are at most that far apart on average. Every
    community is a contiguous run of the order.

    Args:
        pair_counts: `[D, D]` pair counts N (a `LabelGraph.pair_counts`).
        label_counts: `[D]` label counts M.
        cut: float in (0, 1] or None. The distance at which the tree is cut.
            None takes the cut whose communities have the highest modularity
            on the similarity graph, at most 0.9 (so that a community's
            labels have a mean similarity above 0.1). Defaults to None.

    Returns:
        `(order, community)`: `order` `[D]`, a permutation of the label
        indices; `community` `[D]`, each label's community, numbered 0, 1,
        ... in the order they appear along `order`.
    """
    import scipy.cluster.hierarchy as hierarchy
    import scipy.spatial.distance as distance

    if cut is not None and not 0.0 < cut <= 1.0:
        raise ValueError(f"cut must be in (0, 1] or None. Received: cut={cut}")
    similarity = cooccurrence_similarity(pair_counts, label_counts)
    num_labels = similarity.shape[0]
    if num_labels < 3:
        order = np.arange(num_labels)
        together = num_labels == 2 and 1.0 - similarity[0, 1] <= (cut or _MAX_CUT)
        return order, np.array([0, 0 if together else 1][:num_labels])
    condensed = distance.squareform(1.0 - similarity, checks=False)
    tree = hierarchy.linkage(condensed, method="average")
    if num_labels <= _MAX_OPTIMAL_ORDERING:
        tree = hierarchy.optimal_leaf_ordering(tree, condensed)
    order = hierarchy.leaves_list(tree)
    if cut is None:
        cut = _modularity_cut(tree, similarity)
    clusters = hierarchy.fcluster(tree, t=cut, criterion="distance")
    # Renumber the communities in order of appearance.
    renumbered, community = {}, np.empty(num_labels, np.int64)
    for label in order:
        renumbered.setdefault(clusters[label], len(renumbered))
        community[label] = renumbered[clusters[label]]
    return order, community


def _modularity_cut(tree, similarity, max_candidates=200):
    """The merge height, at most `_MAX_CUT`, whose flat clusters have the
    highest modularity (Newman) on the weighted similarity graph."""
    import scipy.cluster.hierarchy as hierarchy

    weights = similarity - np.eye(len(similarity))
    total = weights.sum()
    heights = np.unique(tree[:, 2][tree[:, 2] <= _MAX_CUT])
    if total <= 0 or not heights.size:
        return _MAX_CUT
    heights = heights[:: max(1, len(heights) // max_candidates)]
    strength = weights.sum(axis=1) / total
    best, best_cut = -np.inf, _MAX_CUT
    for height in heights:
        clusters = hierarchy.fcluster(tree, t=height, criterion="distance")
        inside = weights[clusters[:, None] == clusters[None, :]].sum() / total
        expected = np.square(np.bincount(clusters, weights=strength)).sum()
        if inside - expected > best:
            best, best_cut = inside - expected, float(height)
    return best_cut
