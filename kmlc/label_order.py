"""Communities of labels that occur together, and an order that shows them.

The one implementation behind `kmlc.plots.label_graph` (the label graph in
community order, `kmlc.graph_view`) and `kmlc.clustering.communities` (the
communities of a collection's labels):

- labels are joined by the Ochiai coefficient `N_ij / sqrt(M_i M_j)` (the
  cosine between the labels' columns of the multi-hot matrix: frequent
  labels do not join everything);
- `spectral_communities` splits the graph by spectral clustering (the
  normalised graph's leading eigenvectors, rounded by Damle et al.'s
  column-pivoted QR), with the number of communities of highest Newman
  modularity Q; labels of different connected components are never in one
  community;
- `label_communities` orders the labels community by community (largest
  first), each by how strongly it co-occurs (hubs first).

Dense `[D, D]` arrays or scipy CSR matrices alike (`LabelGraph.pair_counts`
of either form): on CSR input, memory grows with the co-occurring pairs and
`D` times the number of communities tried, never with `D^2`.

Why spectral: on Corel-5k's 260 labels it reaches Q = 0.48 (a modularity
cut of an average-linkage tree, used here before, 0.32), and on planted
communities of 200-1,000 labels 0.69-0.73 (the tree: 0.12-0.28).
"""

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse.csgraph import connected_components

# Up to this many labels with edges, the eigenvectors come from a dense
# eigensolver (exact; 32 MB at 2,048); beyond, from Lanczos iterations on
# the sparse matrix.
_DENSE_EIGEN_LIMIT = 2048
# Lanczos tolerance: rounding needs the eigenvectors' subspace, not digits
# (at 10,000 random labels: 3 s at 1e-2, 9 s to machine precision).
_LANCZOS_TOLERANCE = 1e-3


def ochiai(pair_counts, label_counts):
    """`N_ij / sqrt(M_i M_j)` `[D, D]`, zero diagonal: the co-occurrence weights.

    In [0, 1], symmetric; zero for a label never seen. A CSR `pair_counts`
    gives a CSR matrix (only the co-occurring pairs).
    """
    root = np.sqrt(np.asarray(label_counts, np.float64).ravel())
    scale = np.divide(1.0, root, out=np.zeros_like(root), where=root > 0)
    if scipy.sparse.issparse(pair_counts):
        scaling = scipy.sparse.diags(scale)
        weights = (scaling @ scipy.sparse.csr_matrix(pair_counts) @ scaling).tocsr()
        weights = (weights + weights.T) / 2
        weights.setdiag(0.0)
        weights.data = np.clip(weights.data, 0.0, 1.0)
        weights.eliminate_zeros()
        return weights.tocsr()
    weights = np.asarray(pair_counts, np.float64) * scale[:, None] * scale[None, :]
    weights = np.clip((weights + weights.T) / 2, 0.0, 1.0)
    np.fill_diagonal(weights, 0.0)
    return weights


def strengths(weights):
    """`[n]` the row sums of a dense or sparse weight matrix."""
    return np.asarray(weights.sum(axis=1), np.float64).ravel()


def modularity(weights, communities):
    """Newman's modularity Q of a partition of a weighted graph.

    Args:
        weights: `[n, n]` symmetric, non-negative; dense or sparse.
        communities: `[n]` community of each node (any integers).
    """
    degrees = strengths(weights)
    total = degrees.sum()
    if total <= 0:
        return 0.0
    _, communities = np.unique(np.asarray(communities), return_inverse=True)
    if scipy.sparse.issparse(weights):
        pairs = weights.tocoo()
        same = communities[pairs.row] == communities[pairs.col]
        inside = pairs.data[same].sum()
    else:
        inside = weights[communities[:, None] == communities[None, :]].sum()
    shares = np.bincount(communities, weights=degrees) / total
    return float(inside / total - np.square(shares).sum())


def spectral_communities(weights, num_communities="auto", max_communities=30, seed=0):
    """Communities of a weighted graph by spectral clustering.

    Args:
        weights: `[n, n]` symmetric, non-negative, zero diagonal; dense or
            sparse.
        num_communities: int or `"auto"`. k, the eigenvectors rounded into
            communities; `"auto"` tries k = 2 ... `max_communities` and keeps
            the partition of highest modularity (ties: the smaller k).
            Disconnected parts of one community are split apart, so there
            may be more than k communities.
        max_communities: int. The largest k tried by `"auto"`.
        seed: int. Seeds the Lanczos start vector (sparse path).

    Returns:
        `(communities, modularity_by_k)`: `communities` `[n]` int64,
        numbered 0, 1, ... by decreasing size, -1 for a node without edges;
        `modularity_by_k` maps each k tried by `"auto"` to its Q (else
        empty).
    """
    auto = num_communities == "auto"
    if not auto and not (_is_int(num_communities) and num_communities >= 1):
        raise ValueError(
            "num_communities must be 'auto' or an integer >= 1. "
            f"Received: num_communities={num_communities!r}"
        )
    if not _is_int(max_communities) or max_communities < 2:
        raise ValueError(
            "max_communities must be an integer >= 2. "
            f"Received: max_communities={max_communities!r}"
        )
    strength = strengths(weights)
    active = np.flatnonzero(strength > 0)
    communities = np.full(len(strength), -1, np.int64)
    if active.size == 0:
        return communities, {}
    if scipy.sparse.issparse(weights):
        sub = scipy.sparse.csr_matrix(weights)[active][:, active]
    else:
        sub = np.asarray(weights, np.float64)[np.ix_(active, active)]
    if auto:
        candidates = list(range(2, min(max_communities, active.size // 2) + 1)) or [1]
    else:
        candidates = [min(int(num_communities), active.size)]
    _, component = connected_components(scipy.sparse.csr_matrix(sub), directed=False)
    embedding = _embedding(sub, strength[active], component, max(candidates), seed)
    partitions = {k: _round(embedding[:, :k], component) for k in candidates}
    by_k = {k: modularity(sub, partition) for k, partition in partitions.items()}
    communities[active] = partitions[max(by_k, key=lambda k: (by_k[k], -k))]
    return relabel_by_size(communities), (by_k if auto else {})


def label_communities(
    pair_counts, label_counts, num_communities="auto", max_communities=30, seed=0
):
    """Labels in an order that keeps co-occurring labels together.

    Communities of the Ochiai weights by `spectral_communities`, largest
    first, each label of a community after the labels that co-occur more
    strongly; then each label that occurs with no other, as a community of
    its own, the frequent ones first. Every community is a contiguous run
    of the order.

    Args:
        pair_counts: `[D, D]` pair counts N (a `LabelGraph.pair_counts`,
            dense or CSR).
        label_counts: `[D]` label counts M.
        num_communities, max_communities, seed: see `spectral_communities`.

    Returns:
        `(order, community)`: `order` `[D]`, a permutation of the label
        indices; `community` `[D]`, each label's community, numbered 0, 1,
        ... in the order they appear along `order`.
    """
    label_counts = np.asarray(label_counts, np.float64).ravel()
    weights = ochiai(pair_counts, label_counts)
    community, _ = spectral_communities(weights, num_communities, max_communities, seed)
    order = community_order(community, strengths(weights), label_counts)
    lone = community[order] < 0
    community[order[lone]] = community.max() + 1 + np.arange(lone.sum())
    return order, community


def community_order(communities, strength, counts=None):
    """Labels by community (0, 1, ..., then -1), then by decreasing
    `strength`, then by decreasing `counts` (if given), then by index."""
    rank = np.where(communities >= 0, communities, communities.max() + 1)
    keys = (-np.asarray(strength), rank)
    if counts is not None:
        keys = (-np.asarray(counts),) + keys
    return np.lexsort(keys)


def relabel_by_size(communities):
    """Community ids 0, 1, ... by decreasing size (ties: first seen); -1 stays."""
    communities = np.asarray(communities, np.int64)
    ids, first, sizes = np.unique(
        communities[communities >= 0], return_index=True, return_counts=True
    )
    mapping = np.full(communities.max() + 2 if communities.size else 1, -1)
    mapping[ids[np.lexsort((first, -sizes))]] = np.arange(ids.size)
    return np.where(communities >= 0, mapping[communities], -1)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _embedding(weights, strength, component, dims, seed):
    """`[n, dims]` spectral embedding: one indicator per connected component
    (largest first), then the leading eigenvectors of the normalised
    weights `S^-1/2 W S^-1/2` outside the components' span, all scaled by
    `S^-1/2` (as scikit-learn's `spectral_embedding`)."""
    n = len(strength)
    root = np.sqrt(strength)
    components = np.bincount(component, weights=strength).argsort(kind="stable")[::-1]
    column = np.empty_like(components)
    column[components] = np.arange(components.size)
    indicators = np.zeros((n, components.size))
    indicators[np.arange(n), column[component]] = root
    indicators /= np.linalg.norm(indicators, axis=0)
    rest = min(dims, n) - components.size
    if rest <= 0:
        return indicators[:, :dims] / root[:, None]
    if n <= _DENSE_EIGEN_LIMIT:
        dense = weights.toarray() if scipy.sparse.issparse(weights) else weights
        normalised = dense / root[:, None] / root[None, :]
        # The components' directions (eigenvalue 1) moved to -1, the bottom.
        normalised -= 2.0 * indicators @ indicators.T
        _, vectors = scipy.linalg.eigh(normalised, subset_by_index=(n - rest, n - 1))
    else:
        scaling = scipy.sparse.diags(1.0 / root)
        normalised = (scaling @ weights @ scaling).tocsr()

        def matvec(x):
            return normalised @ x - 2.0 * indicators @ (indicators.T @ x)

        operator = scipy.sparse.linalg.LinearOperator(
            (n, n), matvec=matvec, dtype=np.float64
        )
        start = np.random.default_rng(seed).random(n)
        values, vectors = scipy.sparse.linalg.eigsh(
            operator, k=rest, which="LA", tol=_LANCZOS_TOLERANCE, v0=start
        )
        vectors = vectors[:, np.argsort(values)]
    # Leading eigenvalue first.
    embedding = np.hstack([indicators, vectors[:, ::-1]])
    return embedding / root[:, None]


def _round(embedding, component):
    """Communities from a `[n, k]` embedding (Damle, Minden and Ying's
    column-pivoted QR rounding, as scikit-learn's `cluster_qr`), with the
    parts in different connected components split apart."""
    left, _, right = scipy.linalg.svd(embedding[_pivots(embedding), :].T)
    labels = np.abs(embedding @ (left @ right)).argmax(axis=1)
    _, partition = np.unique(
        labels * (component.max() + 1) + component, return_inverse=True
    )
    return partition


def _pivots(vectors):
    """The first k pivots of a QR factorisation of `vectors.T` `[k, n]` with
    column pivoting (Businger-Golub: each time the row of largest residual
    norm); LAPACK's is slow on such wide matrices (0.6 s at n = 10,000)."""
    residual = np.array(vectors, np.float64)
    chosen = []
    for _ in range(vectors.shape[1]):
        norms = np.einsum("ij,ij->i", residual, residual)
        row = int(norms.argmax())
        chosen.append(row)
        unit = residual[row] / np.sqrt(norms[row])
        residual -= np.outer(residual @ unit, unit)
    return np.array(chosen)
