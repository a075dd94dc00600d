"""The label graph's matrices from its counts: eq. 4-5, controls, X'.

Each function takes and returns either dense NumPy arrays (up to
`kmlc.cooccurrence.DENSE_LABELS_LIMIT` labels) or scipy CSR matrices (the
graph of a large vocabulary, where only co-occurring pairs are stored); the
dense code is the reference, and the sparse code gives the same entries.
"""

import numpy as np
import scipy.sparse


def conditional(pair_counts, label_counts):
    """TG: `TG[i, j] = N[i, j] / M[i]`, zero where `M[i] = 0` (eq. 4)."""
    counts = label_counts[:, None]
    if not scipy.sparse.issparse(pair_counts):
        return np.divide(
            pair_counts,
            counts,
            out=np.zeros_like(pair_counts),
            where=counts > 0,
        )
    tg = scipy.sparse.csr_matrix(pair_counts, copy=True)
    rows = np.repeat(np.arange(tg.shape[0]), np.diff(tg.indptr))
    totals = label_counts[rows]
    tg.data = np.divide(tg.data, totals, out=np.zeros_like(tg.data), where=totals > 0)
    tg.eliminate_zeros()
    return tg


def binarize(tg, strategy, tau, k):
    """The binary adjacency X of eq. 5 (or another rule) and the threshold
    of the paper rules (else None); float32, zero diagonal."""
    if scipy.sparse.issparse(tg):
        return _binarize_sparse(tg, strategy, tau, k)
    threshold = None
    if strategy == "paper":
        threshold = float(tg.mean() - tg.std())
        adjacency = tg >= threshold
    elif strategy in ("paper-nonzero", "threshold"):
        adjacency, threshold = _entrywise(tg, strategy, tau)
    else:  # topk
        num_labels = tg.shape[0]
        adjacency = np.zeros_like(tg, dtype=bool)
        k = min(k, num_labels - 1)
        if k > 0:
            # Stable order, so ties go to the lower label index.
            order = np.argsort(-tg, axis=1, kind="stable")[:, :k]
            rows = np.arange(num_labels)[:, None]
            adjacency[rows, order] = True
            adjacency &= tg > 0
    np.fill_diagonal(adjacency, False)
    return adjacency.astype(np.float32), threshold


def _binarize_sparse(tg, strategy, tau, k):
    tg = scipy.sparse.csr_matrix(tg)
    tg.sort_indices()
    values = tg.data
    threshold = None
    if strategy == "paper":
        # Over all D * D entries, the zeros included (as the dense rule).
        size = float(tg.shape[0]) * tg.shape[1]
        mean = values.sum() / size
        squares = ((values - mean) ** 2).sum() + (size - values.size) * mean**2
        variance = squares / size
        threshold = float(mean - np.sqrt(variance))
        _check_keeps_no_zero(threshold, "strategy='paper' (threshold")
        keep = values >= threshold
    elif strategy in ("paper-nonzero", "threshold"):
        if strategy == "threshold":
            _check_keeps_no_zero(tau, "strategy='threshold' (tau")
        keep, threshold = _entrywise(values, strategy, tau)
    else:  # topk: the k largest positive entries of each row, ties to the
        # lower label index (the dense rule's stable sort).
        rows = np.repeat(np.arange(tg.shape[0]), np.diff(tg.indptr))
        order = np.lexsort((tg.indices, -values, rows))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size) - tg.indptr[rows[order]]
        keep = (rank < min(k, tg.shape[0] - 1)) & (values > 0)
    adjacency = scipy.sparse.csr_matrix(
        (keep.astype(np.float32), tg.indices.copy(), tg.indptr.copy()),
        shape=tg.shape,
    )
    adjacency.eliminate_zeros()  # the diagonal of the counts is already 0
    return adjacency, threshold


def _entrywise(values, strategy, tau):
    """The rules that judge each entry alone, on the dense TG or on a CSR
    TG's stored values: the mask of edges and the threshold (`"paper-nonzero"`:
    mean - std of the non-zero entries; `"threshold"`: None)."""
    if strategy == "threshold":
        return values >= tau, None
    nonzero = values[values > 0]
    threshold = float(nonzero.mean() - nonzero.std()) if nonzero.size else 0.0
    return (values > 0) & (values >= threshold), threshold


def _check_keeps_no_zero(threshold, what):
    if threshold <= 0:
        raise ValueError(
            f"{what} {threshold:.4g} <= 0) makes every pair of labels an edge, "
            "also those that never occur together: a complete graph, which a "
            "sparse (large) label graph does not store. Use 'paper-nonzero', "
            f"or a threshold above 0. Received: {what.split(' ')[0]}"
        )


def control(adjacency, name, seed):
    """An ablation control in place of the counted adjacency."""
    if name == "identity":
        if scipy.sparse.issparse(adjacency):
            return scipy.sparse.csr_matrix(adjacency.shape, dtype=np.float32)
        return np.zeros_like(adjacency)
    if name == "shuffled":
        order = permutation(adjacency.shape[0], seed)
        if scipy.sparse.issparse(adjacency):
            return scipy.sparse.csr_matrix(adjacency)[order][:, order].tocsr()
        return np.ascontiguousarray(adjacency[order][:, order])
    return adjacency


def permutation(num_labels, seed):
    """The label order of the `"shuffled"` control: `new[a] = old[order[a]]`."""
    return np.random.default_rng(seed).permutation(num_labels)


def weighted(adjacency, reweight_p):
    """`A + I`, or ML-GCN's re-weighting with `reweight_p` (float64)."""
    sparse = scipy.sparse.issparse(adjacency)
    num_labels = adjacency.shape[0]
    adjacency = adjacency.astype(np.float64)
    if reweight_p is None:
        if sparse:
            return (adjacency + scipy.sparse.identity(num_labels)).tocsr()
        return adjacency + np.eye(num_labels)
    degree = row_sums(adjacency)
    spread_scale = np.divide(
        reweight_p, degree, out=np.zeros_like(degree), where=degree > 0
    )
    self_weight = np.where(degree > 0, 1.0 - reweight_p, 1.0)
    if sparse:
        spread = scipy.sparse.diags(spread_scale) @ adjacency
        return (spread + scipy.sparse.diags(self_weight)).tocsr()
    spread = np.divide(
        reweight_p * adjacency,
        degree[:, None],
        out=np.zeros_like(adjacency),
        where=degree[:, None] > 0,
    )
    return spread + np.diag(self_weight)


def normalize(matrix, method):
    """X' from the weighted adjacency (float32): see `LabelGraph.normalized`."""
    sparse = scipy.sparse.issparse(matrix)
    if method == "none":
        return matrix.astype(np.float32)
    degree = row_sums(matrix)
    if method == "row":
        scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        if sparse:
            return (scipy.sparse.diags(scale) @ matrix).tocsr().astype(np.float32)
        return (scale[:, None] * matrix).astype(np.float32)
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    if sparse:
        diagonal = scipy.sparse.diags(scale)
        return (diagonal @ matrix @ diagonal).tocsr().astype(np.float32)
    return (scale[:, None] * matrix * scale[None, :]).astype(np.float32)


def row_sums(matrix):
    """`[D]` row sums of a dense or sparse matrix."""
    return np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel()
