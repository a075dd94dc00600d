"""The label graph: conditional co-occurrence, binarised (paper eq. 4-5).

Plain NumPy/SciPy, apart from the layers: `LabelGraph` counts how often
labels occur together in the *training* labels, turns the counts into
conditional probabilities `TG[i, j] = P(label j | label i)` (eq. 4),
binarises them into an adjacency matrix `X` (eq. 5, or one of the other
strategies below) and normalises it into the `X'` that the GCN multiplies
with (eq. 9).

Conventions (docs/design.md, "the adjacency"):
- pairs are between *different* labels: the diagonal of the counts `N` and of
  `TG` is zero, and self-loops are added explicitly by the normalisation
  (`A + I`), so every strategy sees the same off-diagonal matrix;
- statistics for the `"paper"` strategy are taken over all `D * D` entries of
  that zero-diagonal `TG` (this reproduces docs/design.md's Corel-5k numbers:
  mean 0.0097, std 0.059);
- `density` is the fraction of the `D * (D - 1)` off-diagonal pairs that are
  edges.
"""

import json
import os

import numpy as np
import scipy.sparse

from kmlc import io as kmlc_io

STRATEGIES = ("paper", "paper-nonzero", "threshold", "topk")
# Controls for ablations: graphs with the same parameters and no label
# correlations ("identity": no edges; "shuffled": the same degree sequence
# on permuted labels).
CONTROLS = ("identity", "shuffled")
NORMALIZATIONS = ("symmetric", "row", "none")

_DEFAULT_CHUNK_ROWS = 65536


class CooccurrenceCounter:
    """Accumulates label counts `M` and pair counts `N` over label batches.

    Each batch is a multi-hot matrix `[n, D]` (NumPy, SciPy sparse, or
    anything `np.asarray` accepts, such as a `tf.Tensor`). Used by
    `LabelGraph.from_labels` and `LabelGraph.from_dataset`, so that data that
    does not fit in memory is counted in one streaming pass.

    Args:
        num_labels: int. D, the number of labels.
    """

    def __init__(self, num_labels):
        if num_labels < 1:
            raise ValueError(
                f"num_labels must be at least 1. Received: num_labels={num_labels}"
            )
        self.num_labels = int(num_labels)
        self.pair_counts = np.zeros((num_labels, num_labels), np.float64)
        self.label_counts = np.zeros((num_labels,), np.float64)
        self.num_samples = 0

    def update(self, batch):
        """Adds a multi-hot batch `[n, D]` to the counts."""
        if scipy.sparse.issparse(batch):
            batch = scipy.sparse.csr_matrix(batch)
            _check_shape(batch.shape, self.num_labels, self.num_samples)
            _check_binary(batch.data, batch, self.num_samples)
            batch = batch.astype(np.float64)
            pairs = (batch.T @ batch).toarray()
            counts = np.asarray(batch.sum(axis=0)).ravel()
        else:
            batch = np.asarray(batch)
            _check_shape(batch.shape, self.num_labels, self.num_samples)
            _check_binary(batch, batch, self.num_samples)
            # float32 matmul is exact for 0/1 entries up to 2**24 rows a
            # chunk; the running total is kept in float64.
            batch = batch.astype(np.float32)
            pairs = batch.T @ batch
            counts = batch.sum(axis=0)
        self.pair_counts += pairs
        self.label_counts += counts
        self.num_samples += batch.shape[0]
        return self


def _check_shape(shape, num_labels, offset):
    if len(shape) != 2:
        raise ValueError(
            "Labels must be a 2-D multi-hot matrix [num_images, num_labels]. "
            f"Received: shape={tuple(shape)} (after {offset} rows)"
        )
    if shape[1] != num_labels:
        raise ValueError(
            f"Expected {num_labels} label columns, like the rows before. "
            f"Received: shape={tuple(shape)} (after {offset} rows)"
        )


def _check_binary(values, matrix, offset):
    values = np.asarray(values)
    bad = (values != 0) & (values != 1)
    if not bad.any():
        return
    if scipy.sparse.issparse(matrix):
        coo = matrix.tocoo()
        row, col = int(coo.row[bad][0]), int(coo.col[bad][0])
        value = coo.data[bad][0]
    else:
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = values[row, col]
    raise ValueError(
        "The label matrix must hold only 0 and 1 (multi-hot). "
        f"Received: {value.item()!r} at row {row + offset}, column {col}"
    )


class LabelGraph:
    """The label co-occurrence graph of eq. 4-5.

    Build it with `LabelGraph.from_labels(y)` (a multi-hot matrix) or
    `LabelGraph.from_dataset(batches, num_labels)` (any iterable of label
    batches), never by hand; the constructor takes the raw counts.

    Args:
        pair_counts: array `[D, D]`. N, how often labels i and j occur in the
            same image (the diagonal is ignored).
        label_counts: array `[D]`. M, how often each label occurs.
        num_samples: int. How many images were counted.
        strategy: str. How TG is binarised into the adjacency: `"paper"`
            (eq. 5: keep `TG >= mean(TG) - std(TG)`), `"paper-nonzero"` (the
            same rule with the statistics over non-zero entries, and only
            non-zero entries as candidates), `"threshold"` (keep
            `TG >= tau`, ML-GCN) or `"topk"` (the `k` strongest non-zero
            entries of each row). Defaults to `"threshold"`.
        tau: float. Threshold for `"threshold"`. Defaults to 0.4 (ML-GCN).
        k: int. Neighbours per label for `"topk"`. Defaults to 5.
        reweight_p: float or None. ML-GCN's re-weighting against
            over-smoothing: a node keeps `1 - p` of its own feature and
            spreads `p` evenly over its neighbours. Defaults to None (off).
        label_names: list of str or None. The labels, in column order.
        control: str or None. An ablation control in place of the counted
            graph: `"identity"` (no edges: the GCN sees each label alone) or
            `"shuffled"` (the binarised adjacency with its labels permuted:
            the same degree sequence and density, wrong neighbours).
            Defaults to None (the counted graph).
        control_seed: int. The permutation of `"shuffled"`. Defaults to 0.

    Example:
    >>> y = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]])
    >>> graph = LabelGraph.from_labels(y, strategy="threshold", tau=0.5)
    >>> graph.conditional.round(2).tolist()
    [[0.0, 0.67, 0.33], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """

    def __init__(
        self,
        pair_counts,
        label_counts,
        num_samples,
        strategy="threshold",
        tau=0.4,
        k=5,
        reweight_p=None,
        label_names=None,
        control=None,
        control_seed=0,
    ):
        pair_counts = np.array(pair_counts, dtype=np.float64)
        label_counts = np.asarray(label_counts, dtype=np.float64).ravel()
        num_labels = label_counts.shape[0]
        if pair_counts.shape != (num_labels, num_labels):
            raise ValueError(
                f"pair_counts must be [{num_labels}, {num_labels}] to match "
                f"label_counts. Received: shape={pair_counts.shape}"
            )
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown strategy. Expected one of {STRATEGIES}. "
                f"Received: strategy={strategy!r}"
            )
        if strategy == "topk" and (k is None or int(k) < 1):
            raise ValueError(f"strategy='topk' needs k >= 1. Received: k={k}")
        if control is not None and control not in CONTROLS:
            raise ValueError(
                f"Unknown control. Expected one of {CONTROLS} or None. "
                f"Received: control={control!r}"
            )
        if reweight_p is not None and not 0.0 <= reweight_p <= 1.0:
            raise ValueError(
                f"reweight_p must be in [0, 1]. Received: reweight_p={reweight_p}"
            )
        if label_names is not None:
            label_names = [str(name) for name in label_names]
            if len(label_names) != num_labels:
                raise ValueError(
                    f"label_names must have one name per label ({num_labels}). "
                    f"Received: {len(label_names)} label names"
                )
        np.fill_diagonal(pair_counts, 0.0)
        self.pair_counts = pair_counts
        self.label_counts = label_counts
        self.num_samples = int(num_samples)
        self.strategy = strategy
        self.tau = float(tau)
        self.k = int(k) if k is not None else None
        self.reweight_p = None if reweight_p is None else float(reweight_p)
        self.label_names = label_names
        self.control = control
        self.control_seed = int(control_seed)
        self.threshold = None  # set by _binarize for the paper strategies
        self.adjacency = self._controlled(self._binarize())

    # Construction.

    @classmethod
    def from_labels(cls, y, chunk_rows=_DEFAULT_CHUNK_ROWS, **kwargs):
        """Counts the graph from a multi-hot matrix `y` `[N, D]`.

        `y` may be a NumPy array or a SciPy sparse matrix (10^6 images x
        10^3 labels fits as sparse); dense input is counted in chunks of
        `chunk_rows` rows. Other keyword arguments go to the constructor.
        """
        shape = getattr(y, "shape", None)
        if shape is None:
            y = np.asarray(y)
            shape = y.shape
        if len(shape) != 2:
            raise ValueError(
                "Labels must be a 2-D multi-hot matrix [num_images, "
                f"num_labels]. Received: shape={tuple(shape)}"
            )
        if shape[0] == 0 or shape[1] == 0:
            raise ValueError(
                "The label matrix is empty: there is nothing to count a "
                f"graph from. Received: shape={tuple(shape)}"
            )
        counter = CooccurrenceCounter(shape[1])
        if scipy.sparse.issparse(y):
            y = scipy.sparse.csr_matrix(y)
        for start in range(0, shape[0], chunk_rows):
            counter.update(y[start : start + chunk_rows])
        return cls.from_counter(counter, **kwargs)

    @classmethod
    def from_dataset(cls, batches, num_labels=None, **kwargs):
        """Counts the graph in one pass over label batches.

        Args:
            batches: iterable of multi-hot batches `[n, D]`: NumPy arrays,
                sparse matrices, `tf.Tensor`s, nested lists, or a
                `tf.data.Dataset` of labels or of `(image, labels)` tuples
                (only the labels are kept; a dataset of labels alone skips
                decoding images).
            num_labels: int or None. D; taken from the first batch if None.
        """
        counter = None if num_labels is None else CooccurrenceCounter(num_labels)
        for batch in _label_batches(batches):
            if counter is None:
                counter = CooccurrenceCounter(np.shape(batch)[-1])
            counter.update(batch)
        if counter is None or counter.num_samples == 0:
            raise ValueError(
                "The dataset yielded no labels: there is nothing to count a graph from."
            )
        return cls.from_counter(counter, **kwargs)

    @classmethod
    def from_counter(cls, counter, **kwargs):
        """Builds the graph from a filled `CooccurrenceCounter`."""
        return cls(
            counter.pair_counts,
            counter.label_counts,
            counter.num_samples,
            **kwargs,
        )

    # Derived matrices.

    @property
    def num_labels(self):
        return self.label_counts.shape[0]

    @property
    def conditional(self):
        """TG `[D, D]`: `TG[i, j] = N[i, j] / M[i]` = P(j | i) (eq. 4).

        A label that never occurs has a zero row (never NaN); the diagonal
        is zero.
        """
        counts = self.label_counts[:, None]
        return np.divide(
            self.pair_counts,
            counts,
            out=np.zeros_like(self.pair_counts),
            where=counts > 0,
        )

    def _binarize(self):
        tg = self.conditional
        if self.strategy == "paper":
            self.threshold = float(tg.mean() - tg.std())
            adjacency = tg >= self.threshold
        elif self.strategy == "paper-nonzero":
            nonzero = tg[tg > 0]
            self.threshold = (
                float(nonzero.mean() - nonzero.std()) if nonzero.size else 0.0
            )
            adjacency = (tg > 0) & (tg >= self.threshold)
        elif self.strategy == "threshold":
            adjacency = tg >= self.tau
        else:  # topk
            adjacency = np.zeros_like(tg, dtype=bool)
            k = min(self.k, self.num_labels - 1)
            if k > 0:
                # Stable order, so ties go to the lower label index.
                order = np.argsort(-tg, axis=1, kind="stable")[:, :k]
                rows = np.arange(self.num_labels)[:, None]
                adjacency[rows, order] = True
                adjacency &= tg > 0
        np.fill_diagonal(adjacency, False)
        return adjacency.astype(np.float32)

    def _controlled(self, adjacency):
        if self.control == "identity":
            return np.zeros_like(adjacency)
        if self.control == "shuffled":
            order = np.random.default_rng(self.control_seed).permutation(
                self.num_labels
            )
            return np.ascontiguousarray(adjacency[order][:, order])
        return adjacency

    @property
    def weighted_adjacency(self):
        """The adjacency with self-loops, before normalisation `[D, D]`.

        `A + I`, or with `reweight_p` ML-GCN's re-weighted matrix:
        `p * A[i, j] / sum_j A[i, j]` off the diagonal and `1 - p` on it (a
        label with no neighbours keeps weight 1 on itself).
        """
        adjacency = self.adjacency.astype(np.float64)
        eye = np.eye(self.num_labels)
        if self.reweight_p is None:
            return adjacency + eye
        degree = adjacency.sum(axis=1, keepdims=True)
        spread = np.divide(
            self.reweight_p * adjacency,
            degree,
            out=np.zeros_like(adjacency),
            where=degree > 0,
        )
        self_weight = np.where(degree[:, 0] > 0, 1.0 - self.reweight_p, 1.0)
        return spread + np.diag(self_weight)

    def normalized(self, method="symmetric"):
        """X' `[D, D]`, float32: the matrix the GCN multiplies with.

        Args:
            method: `"symmetric"` for `D^-1/2 (A + I) D^-1/2` with D the row
                sums (the same as `spektral.utils.gcn_filter`), `"row"` for
                `D^-1 (A + I)`, `"none"` for `A + I` as it is.
        """
        if method not in NORMALIZATIONS:
            raise ValueError(
                f"Unknown normalization. Expected one of {NORMALIZATIONS}. "
                f"Received: method={method!r}"
            )
        matrix = self.weighted_adjacency
        if method == "none":
            return matrix.astype(np.float32)
        degree = matrix.sum(axis=1)
        if method == "row":
            scale = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
            return (scale[:, None] * matrix).astype(np.float32)
        scale = np.divide(
            1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0
        )
        return (scale[:, None] * matrix * scale[None, :]).astype(np.float32)

    # Statistics.

    @property
    def num_edges(self):
        """Directed edges in the binary adjacency (self-loops excluded)."""
        return int(self.adjacency.sum())

    @property
    def density(self):
        """Edges over the `D * (D - 1)` possible off-diagonal pairs."""
        pairs = self.num_labels * (self.num_labels - 1)
        return self.num_edges / pairs if pairs else 0.0

    def degrees(self):
        """Out-degree of each label in the binary adjacency `[D]`."""
        return self.adjacency.sum(axis=1).astype(np.int64)

    def degree_stats(self):
        """Degree statistics: min, max, mean, median and isolated labels."""
        degrees = self.degrees()
        return {
            "min": int(degrees.min()),
            "max": int(degrees.max()),
            "mean": float(degrees.mean()),
            "median": float(np.median(degrees)),
            "isolated": int((degrees == 0).sum()),
        }

    def summary(self):
        """A JSON-ready dict: sizes, strategy, threshold, density, degrees."""
        return {
            "num_labels": self.num_labels,
            "num_samples": self.num_samples,
            "strategy": self.strategy,
            "threshold": self.threshold
            if self.strategy.startswith("paper")
            else (self.tau if self.strategy == "threshold" else None),
            "k": self.k if self.strategy == "topk" else None,
            "reweight_p": self.reweight_p,
            "control": self.control,
            "num_edges": self.num_edges,
            "density": self.density,
            "degrees": self.degree_stats(),
            "labels_never_seen": int((self.label_counts == 0).sum()),
        }

    def with_strategy(self, strategy, **kwargs):
        """The same counts binarised another way (no recount)."""
        params = self._params()
        params.update(strategy=strategy, **kwargs)
        return LabelGraph(
            self.pair_counts, self.label_counts, self.num_samples, **params
        )

    def _params(self):
        return {
            "strategy": self.strategy,
            "tau": self.tau,
            "k": self.k,
            "reweight_p": self.reweight_p,
            "label_names": self.label_names,
            "control": self.control,
            "control_seed": self.control_seed,
        }

    # Saving.

    def save(self, path):
        """Writes the counts and parameters to a `.npz` file, atomically."""
        path = os.fspath(path)
        with kmlc_io.atomic_path(path, suffix=".npz") as temp:
            np.savez_compressed(
                temp,
                pair_counts=self.pair_counts,
                label_counts=self.label_counts,
                num_samples=np.int64(self.num_samples),
                params=np.array(json.dumps(self._params())),
            )
        return path

    @classmethod
    def load(cls, path):
        """Reads a graph written by `save`."""
        try:
            data = np.load(os.fspath(path), allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"Could not read a label graph from {path}: {error}"
            ) from error
        if not isinstance(data, np.lib.npyio.NpzFile):
            # A plain .npy array: np.load returns it, not an archive.
            raise ValueError(
                f"Could not read a label graph from {path}: not an .npz "
                f"archive written by LabelGraph.save. Received: {type(data)}"
            )
        try:
            with data:
                params = json.loads(str(data["params"]))
                return cls(
                    data["pair_counts"],
                    data["label_counts"],
                    int(data["num_samples"]),
                    **params,
                )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"Could not read a label graph from {path}: {error}"
            ) from error

    def __repr__(self):
        return (
            f"LabelGraph(num_labels={self.num_labels}, "
            f"num_samples={self.num_samples}, strategy={self.strategy!r}, "
            f"density={self.density:.4f})"
        )


def _label_batches(batches):
    """Yields NumPy label batches from arrays, tensors or a tf.data dataset."""
    for batch in batches:
        # Keras' (x, y) or (x, y, sample_weight) tuples; a list is a batch
        # of label rows (a list of two rows is not an (image, labels) pair).
        if isinstance(batch, tuple) and len(batch) in (2, 3):
            batch = batch[1]
        elif isinstance(batch, dict):
            batch = batch["labels"]
        if scipy.sparse.issparse(batch):
            yield batch
            continue
        if hasattr(batch, "numpy"):
            batch = batch.numpy()
        batch = np.asarray(batch)
        if batch.ndim == 1:
            batch = batch[None, :]
        yield batch
