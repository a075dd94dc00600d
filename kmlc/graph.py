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

Scale: counting (`kmlc.cooccurrence`) costs about `L^2` per image with L
labels, and holds only the pairs that co-occur. Past
`DENSE_LABELS_LIMIT` labels (2,048) a graph keeps its matrices (`pair_counts`,
`conditional`, `adjacency`, `normalized()`) as scipy CSR matrices instead
of dense arrays, and `save` writes the counts' non-zeros.
"""

import numpy as np
import scipy.sparse

from kmlc import graph_file
from kmlc import graph_rules
from kmlc.cooccurrence import _DEFAULT_CHUNK_ROWS
from kmlc.cooccurrence import DENSE_LABELS_LIMIT
from kmlc.cooccurrence import CooccurrenceCounter
from kmlc.cooccurrence import count

__all__ = ["CooccurrenceCounter", "DENSE_LABELS_LIMIT", "LabelGraph"]

STRATEGIES = ("paper", "paper-nonzero", "threshold", "topk")
# Controls for ablations: graphs with the same parameters and no label
# correlations ("identity": no edges; "shuffled": the same degree sequence
# on permuted labels).
CONTROLS = ("identity", "shuffled")
NORMALIZATIONS = ("symmetric", "row", "none")


class LabelGraph:
    """The label co-occurrence graph of eq. 4-5.

    Build it with `LabelGraph.from_labels(y)` (a multi-hot matrix) or
    `LabelGraph.from_dataset(batches, num_labels)` (any iterable of label
    batches), never by hand; the constructor takes the raw counts.

    Args:
        pair_counts: array or scipy sparse matrix `[D, D]`. N, how often
            labels i and j occur in the same image (the diagonal is ignored).
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
        sparse: bool or None. Keep the matrices as scipy CSR matrices; None:
            when D > `DENSE_LABELS_LIMIT`. Not saved (a loaded graph decides
            by its size again).

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
        sparse=None,
    ):
        label_counts = np.asarray(label_counts, dtype=np.float64).ravel()
        num_labels = label_counts.shape[0]
        self.sparse = num_labels > DENSE_LABELS_LIMIT if sparse is None else sparse
        pair_counts = _counts_matrix(pair_counts, self.sparse)
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
        if self.sparse:
            pair_counts = pair_counts - scipy.sparse.diags(pair_counts.diagonal())
            pair_counts.eliminate_zeros()
            pair_counts.sort_indices()
        else:
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
        # The threshold of the paper strategies (else None).
        adjacency, self.threshold = graph_rules.binarize(
            self.conditional, self.strategy, self.tau, self.k
        )
        self.adjacency = graph_rules.control(adjacency, control, self.control_seed)

    # Construction.

    @classmethod
    def from_labels(cls, y, chunk_rows=_DEFAULT_CHUNK_ROWS, **kwargs):
        """Counts the graph from a multi-hot matrix `y` `[N, D]`.

        `y` may be a NumPy array, a `tf.Tensor` or a SciPy sparse matrix
        (10^6 images x 10^4 labels fits as sparse); it is counted in chunks
        of `chunk_rows` rows. Other keyword arguments go to the constructor.
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
        counter = CooccurrenceCounter(shape[1], chunk_rows, kwargs.get("sparse"))
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
                `tf.data.Dataset` of labels, of `(image, labels[, weight])`
                tuples or of `{"labels": ...}` dicts, batched or not (for
                example `ImageSet.dataset()` of TFRecord shards). Only the
                labels are kept, and a dataset's labels become indices
                inside `tf.data`, thousands of rows a step; a dataset of
                labels alone also skips decoding images.
            num_labels: int or None. D; taken from the first batch if None.
        """
        counter = count(batches, num_labels)
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
        return graph_rules.conditional(self.pair_counts, self.label_counts)

    @property
    def weighted_adjacency(self):
        """The adjacency with self-loops, before normalisation `[D, D]`.

        `A + I`, or with `reweight_p` ML-GCN's re-weighted matrix:
        `p * A[i, j] / sum_j A[i, j]` off the diagonal and `1 - p` on it (a
        label with no neighbours keeps weight 1 on itself).
        """
        return graph_rules.weighted(self.adjacency, self.reweight_p)

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
        return graph_rules.normalize(self.weighted_adjacency, method)

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
        return graph_rules.row_sums(self.adjacency).astype(np.int64)

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
            self.pair_counts,
            self.label_counts,
            self.num_samples,
            sparse=self.sparse,
            **params,
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

    # Saving (the file format is `kmlc.graph_file`'s).

    def save(self, path):
        """Writes the counts and parameters to a `.npz` file, atomically."""
        return graph_file.write(
            path, self.pair_counts, self.label_counts, self.num_samples, self._params()
        )

    @classmethod
    def load(cls, path, sparse=None):
        """Reads a graph written by `save` (either form of the counts);
        `sparse` as in the constructor."""
        pair_counts, label_counts, num_samples, params = graph_file.read(path)
        try:
            return cls(pair_counts, label_counts, num_samples, sparse=sparse, **params)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Could not read a label graph from {path}: {error}"
            ) from error

    def __repr__(self):
        return (
            f"LabelGraph(num_labels={self.num_labels}, "
            f"num_samples={self.num_samples}, strategy={self.strategy!r}, "
            f"density={self.density:.4f})"
        )


def _counts_matrix(pair_counts, sparse):
    """Pair counts as a float64 CSR matrix or dense array (a copy)."""
    if sparse:
        return scipy.sparse.csr_matrix(pair_counts, dtype=np.float64, copy=True)
    if scipy.sparse.issparse(pair_counts):
        return pair_counts.toarray().astype(np.float64)
    return np.array(pair_counts, dtype=np.float64)
