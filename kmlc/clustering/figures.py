"""The figures of a cluster analysis, as PNGs.

- `embedding_map`: a 2-D map of the embedding (PCA, or t-SNE after PCA to
  50 dimensions) of a random sample of the images, coloured by cluster;
- `community_heatmap`: the label co-occurrence weights with the labels
  reordered by community and each community framed;
- `cluster_profiles`: each cluster's mean score of the labels that name
  the clusters.

Each writes one PNG with `kmlc.plots.save_figure` and returns its path.
"""

import numpy as np
import scipy.sparse
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from kmlc import plots
from kmlc.clustering import store
from kmlc.label_order import strengths

MAP_METHODS = ("tsne", "pca")


def project(source, sample_size=2000, method="tsne", seed=0):
    """2-D coordinates of a random sample of rows.

    Args:
        source: `[N, F]` array or `.npy` file.
        method: `"tsne"` or `"pca"`.

    Returns:
        `(rows [n], points [n, 2])`, rows in increasing order.
    """
    if method not in MAP_METHODS:
        raise ValueError(
            f"The map method must be one of {MAP_METHODS}. Received: {method!r}"
        )
    total = store.num_rows(source)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(total, min(total, sample_size), replace=False))
    vectors = np.asarray(store.take_rows(source, rows), np.float32)
    if len(vectors) < 3:
        return rows, np.zeros((len(vectors), 2), np.float32)
    dims = min(50, vectors.shape[1], len(vectors))
    reduced = PCA(dims, random_state=seed).fit_transform(vectors)
    if method == "pca" or len(vectors) < 10:
        return rows, reduced[:, :2].astype(np.float32)
    perplexity = float(min(30, (len(vectors) - 1) / 3))
    points = TSNE(
        2, perplexity=perplexity, init="pca", random_state=seed
    ).fit_transform(reduced)
    return rows, points.astype(np.float32)


def _colours(count):
    plt = plots.pyplot()
    palette = plt.get_cmap("tab20").colors
    return [palette[i % len(palette)] for i in range(count)]


def embedding_map(points, assignments, names, path, title="Embedding map"):
    """A scatter of `points` `[n, 2]` coloured by `assignments` `[n]`.

    Args:
        names: dict. Cluster -> its name, for the legend.
    """
    plt = plots.pyplot()
    figure, axis = plt.subplots(figsize=(9, 6.5))
    colours = _colours(max(len(names), 1))
    noise = assignments < 0
    if noise.any():
        axis.scatter(*points[noise].T, s=6, c="#bbbbbb", label="noise")
    for cluster in sorted(names):
        members = assignments == cluster
        if members.any():
            axis.scatter(
                *points[members].T,
                s=10,
                color=colours[cluster % len(colours)],
                label=f"{cluster}: {names[cluster]}"[:40],
            )
            centre = points[members].mean(axis=0)
            axis.annotate(str(cluster), centre, fontsize=9, weight="bold", ha="center")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title)
    if len(names) <= 24:
        axis.legend(
            loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False
        )
    return plots.save_figure(figure, path)


def community_heatmap(communities, path, max_labels=150):
    """The reordered co-occurrence weights with the communities framed.

    Labels in no community are left out; above `max_labels`, the labels of
    highest degree are kept, in the same order.
    """
    plt = plots.pyplot()
    order = [i for i in communities.order if communities.communities[i] >= 0]
    if len(order) > max_labels:
        degrees = strengths(communities.weights)
        keep = set(sorted(order, key=lambda i: -degrees[i])[:max_labels])
        order = [i for i in order if i in keep]
    size = max(6.0, min(14.0, 0.07 * len(order) + 4))
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    matrix = communities.weights[order][:, order] if order else np.zeros((1, 1))
    if scipy.sparse.issparse(matrix):  # a large collection's weights
        matrix = matrix.toarray()
    image = axis.imshow(matrix, cmap="magma_r", vmin=0, vmax=max(matrix.max(), 1e-9))
    groups = communities.communities[order]
    start = 0
    for position in range(1, len(groups) + 1):
        if position == len(groups) or groups[position] != groups[start]:
            width = position - start
            axis.add_patch(
                plt.Rectangle(
                    (start - 0.5, start - 0.5),
                    width,
                    width,
                    fill=False,
                    edgecolor="tab:cyan",
                    linewidth=1.4,
                )
            )
            axis.text(
                position - 0.5,
                start - 0.7,
                str(groups[start]),
                fontsize=7,
                color="tab:blue",
                ha="right",
                va="bottom",
            )
            start = position
    names = [communities.label_names[i] for i in order]
    if len(order) <= 80:
        axis.set_xticks(range(len(order)), names, rotation=90, fontsize=6)
        axis.set_yticks(range(len(order)), names, fontsize=6)
    else:
        axis.set_xticks([])
        axis.set_yticks([])
    axis.set_title(
        f"Label co-occurrence (Ochiai) by community: {communities.num_communities} "
        f"communities, modularity {communities.modularity:.2f}"
    )
    figure.colorbar(image, ax=axis, fraction=0.04)
    return plots.save_figure(figure, path)


def cluster_profiles(summaries, rates, label_names, path, max_labels=24):
    """Each cluster's mean score of the labels that name the clusters.

    Args:
        summaries: `kmlc.clustering.naming.describe` output.
        rates: `[K, D]` per-cluster mean scores.
    """
    plt = plots.pyplot()
    chosen = []
    for entry in summaries:
        for item in entry["top_labels"][:2]:
            if item["label"] not in chosen:
                chosen.append(item["label"])
    chosen = chosen[:max_labels]
    index = [label_names.index(name) for name in chosen]
    clusters = [entry["cluster"] for entry in summaries]
    matrix = rates[np.ix_(clusters, index)] if index else np.zeros((len(clusters), 1))
    figure, axis = plt.subplots(
        figsize=(max(5, 0.35 * len(chosen) + 3), 0.3 * len(clusters) + 1.8)
    )
    image = axis.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axis.set_xticks(range(len(chosen)), chosen, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(
        range(len(clusters)),
        [f"{e['cluster']}: {e['name']} ({e['size']})"[:42] for e in summaries],
        fontsize=7,
    )
    axis.set_title("Mean label score per cluster")
    figure.colorbar(image, ax=axis)
    return plots.save_figure(figure, path)
