"""Re-scoring the logits with the label co-occurrence statistics (eq. 4)."""

import keras
import numpy as np
import scipy.sparse
from keras import ops

from kmlc.layers.label_gcn import PROPAGATIONS
from kmlc.layers.label_gcn import _as_coo
from kmlc.layers.label_gcn import _gather_sum
from kmlc.layers.label_gcn import resolve_propagation

# Keeps the normaliser of q away from 0 when every sigmoid underflows.
_MIN_TOTAL = 1e-30


@keras.saving.register_keras_serializable(package="kmlc")
class CooccurrenceRescoring(keras.layers.Layer):
    """Moves each label's logit by how likely the image's other labels make it.

    With `p = sigmoid(z)` the logits' probabilities, for every label j:

        q_j  = sum_i p_i TG[i, j] / sum_i p_i
        z'_j = z_j + gamma * [log(eps + q_j) - log(eps + P(j))]

    TG is eq. 4's conditional `P(j | i)` and P(j) the labels' frequencies,
    both counted on the training labels (`kmlc.rescoring.statistics` takes
    them from a `LabelGraph`). `q_j` is the chance of label j next to a
    label drawn from what the image is believed to show, so label j rises
    when those labels make it more likely than its base rate and falls when
    they make it less likely. Independent labels (`TG[i, j] = P(j)`) give
    no change, and so does `TG = 0, P = 0` (the `identity` control).
    Training-free: TG and P(j) are non-trainable weights, saved with the
    model (exports carry them) and not part of the config. Called with
    `training=True` it passes the logits through, so a model trains as it
    would without it. Computed in float32 whatever the dtype policy.

    TG is held like `kmlc.layers.LabelGCN`'s X', in one of two forms:
    `"dense"`, the matrix (weight `conditional` `[D, D]`; `q` is one
    matmul), or `"sparse"`, TG's non-zeros as an edge list sorted by target
    (`edge_targets`, `edge_sources`, `edge_weights`, `[num_edges]`, padded
    with at least one zero-weight edge; `q` is a gather and a sorted
    segment sum, `num_edges * B` products, no `[D, D]` weight). `"auto"`
    applies `LabelGCN`'s rule: sparse for at least 128 labels with at most
    1 % of TG non-zero. Both give the same outputs up to float rounding.
    The label frequencies are the weight `prior` `[D]`.

    Args:
        conditional: array `[D, D]`, scipy sparse matrix or None. TG; None
            leaves zeros until weights are loaded or `set_statistics` is
            called.
        prior: array `[D]` or None. P(j); required with `conditional`.
        gamma: float >= 0. The strength. Defaults to 1.0.
        epsilon: float > 0. Keeps the logs finite. Defaults to 1e-3.
        propagation: `"auto"`, `"dense"` or `"sparse"`. Defaults to
            `"auto"` (without statistics: `"sparse"` if `num_edges` is
            given, else `"dense"`).
        num_edges: int or None. The sparse edge list's length; taken from
            `conditional` when given (the config records it, so that a
            reloaded layer has weights of the saved shapes).

    Call:
        logits: `[B, D]`.
        Returns the re-scored logits `[B, D]`.

    Example:
    >>> graph = kmlc.LabelGraph.from_labels(train_labels)
    >>> layer = CooccurrenceRescoring(*kmlc.rescoring.statistics(graph), gamma=2)
    >>> rescored = layer(logits)
    """

    def __init__(
        self,
        conditional=None,
        prior=None,
        gamma=1.0,
        epsilon=1e-3,
        propagation="auto",
        num_edges=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        gamma, epsilon = float(gamma), float(epsilon)
        if not (np.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be a number >= 0. Received: gamma={gamma}")
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(
                f"epsilon must be a number > 0. Received: epsilon={epsilon}"
            )
        if propagation not in PROPAGATIONS:
            raise ValueError(
                f"Unknown propagation. Expected one of {PROPAGATIONS}. "
                f"Received: propagation={propagation!r}"
            )
        if (conditional is None) != (prior is None):
            raise ValueError(
                "Pass both conditional (TG) and prior (the label frequencies), "
                f"or neither. Received: conditional={_shape(conditional)}, "
                f"prior={_shape(prior)}"
            )
        self.gamma = gamma
        self.epsilon = epsilon
        self._initial, transposed = None, None
        if conditional is not None:
            transposed = _as_coo(_transpose(conditional))  # q^T = TG^T p^T
            self._initial = (transposed, np.asarray(prior, np.float32))
        self.propagation, self.num_edges = resolve_propagation(
            transposed, propagation, num_edges, "statistics"
        )

    # === Layers ===

    def build(self, input_shape):
        self.num_labels = int(input_shape[-1])

        def weight(name, shape, dtype="float32"):
            return self.add_weight(
                name=name,
                shape=shape,
                initializer="zeros",
                dtype=dtype,
                trainable=False,
            )

        if self.propagation == "dense":
            self.conditional = weight("conditional", (self.num_labels,) * 2)
        else:
            self.edge_targets = weight("edge_targets", (self.num_edges,), "int32")
            self.edge_sources = weight("edge_sources", (self.num_edges,), "int32")
            self.edge_weights = weight("edge_weights", (self.num_edges,))
        self.prior = weight("prior", (self.num_labels,))
        if self._initial is not None:
            self._assign(*self._checked(*self._initial))
            self._initial = None

    def set_statistics(self, conditional, prior):
        """Replaces TG `[D, D]` (array or scipy sparse) and P(j) `[D]`.

        With sparse propagation TG may have at most `num_edges - 1`
        non-zeros. Checks everything before changing anything.
        """
        self._assign(*self.check_statistics(conditional, prior))

    def check_statistics(self, conditional, prior):
        """Raises `ValueError` if `set_statistics` would refuse these (their
        checked internal form is returned, for `set_statistics` only)."""
        if not self.built:
            raise ValueError(
                "The layer is not built yet: pass TG and the prior to the "
                "constructor, or call the layer on logits [B, D] first."
            )
        return self._checked(
            _as_coo(_transpose(conditional)), np.asarray(prior, np.float32)
        )

    def _checked(self, transposed, prior):
        num_labels = self.num_labels
        if transposed.shape != (num_labels, num_labels):
            raise ValueError(
                f"TG must be [{num_labels}, {num_labels}] for a layer over "
                f"{num_labels} labels. Received: shape={transposed.shape[::-1]}"
            )
        if prior.shape != (num_labels,):
            raise ValueError(
                f"prior must be [{num_labels}], one frequency a label. "
                f"Received: shape={prior.shape}"
            )
        for name, values in (("TG", transposed.data), ("prior", prior)):
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                bad = values[~(np.isfinite(values) & (values >= 0))][0]
                raise ValueError(
                    f"{name} must hold finite probabilities >= 0. Received: {bad}"
                )
        if self.propagation == "sparse" and transposed.nnz >= self.num_edges:
            raise ValueError(
                f"This layer holds {self.num_edges - 1} edges, and the new TG "
                f"has {transposed.nnz} non-zeros: build it with this TG (or "
                f"propagation='dense'). Received: {transposed.nnz} non-zeros"
            )
        return transposed, prior

    def _assign(self, transposed, prior):
        self.prior.assign(prior)
        if self.propagation == "dense":
            self.conditional.assign(transposed.toarray().T)
            return
        # Padded with (D - 1, D - 1, 0) edges, at least one, so the targets
        # end with the last label (TensorFlow's sorted segment sum sizes its
        # output by the last id).
        pad = self.num_edges - transposed.nnz
        last = self.num_labels - 1
        targets = np.concatenate([transposed.row, np.full(pad, last)])
        sources = np.concatenate([transposed.col, np.full(pad, last)])
        values = np.concatenate([transposed.data, np.zeros(pad, np.float32)])
        order = np.lexsort((sources, targets))
        self.edge_targets.assign(targets[order].astype(np.int32))
        self.edge_sources.assign(sources[order].astype(np.int32))
        self.edge_weights.assign(values[order])

    def statistics(self):
        """`(TG [D, D], P(j) [D])` as dense NumPy arrays, whichever form."""
        prior = ops.convert_to_numpy(self.prior)
        if self.propagation == "dense":
            return ops.convert_to_numpy(self.conditional), prior
        transposed = scipy.sparse.coo_matrix(
            (
                ops.convert_to_numpy(self.edge_weights),
                (
                    ops.convert_to_numpy(self.edge_targets),
                    ops.convert_to_numpy(self.edge_sources),
                ),
            ),
            shape=(self.num_labels, self.num_labels),
        )
        return transposed.toarray().T, prior

    # === Forward pass ===

    def call(self, logits, training=None):
        if training:
            return logits
        z = ops.cast(logits, "float32")
        p = ops.sigmoid(z)
        total = ops.maximum(ops.sum(p, axis=-1, keepdims=True), _MIN_TOTAL)
        if self.propagation == "dense":
            mass = ops.matmul(p, ops.cast(self.conditional, "float32"))
        else:
            mass = ops.transpose(
                _gather_sum(
                    ops.transpose(p),
                    ops.convert_to_tensor(self.edge_targets),
                    ops.convert_to_tensor(self.edge_sources),
                    ops.cast(self.edge_weights, "float32"),
                    self.num_labels,
                )
            )
        boost = ops.log(self.epsilon + mass / total) - ops.log(
            self.epsilon + ops.cast(self.prior, "float32")
        )
        return ops.cast(z + self.gamma * boost, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "gamma": self.gamma,
                "epsilon": self.epsilon,
                "propagation": self.propagation,
                "num_edges": self.num_edges,
            }
        )
        return config


def _transpose(matrix):
    if scipy.sparse.issparse(matrix):
        return matrix.T
    matrix = np.asarray(matrix, np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"TG must be a matrix [D, D]. Received: shape={matrix.shape}")
    return matrix.T


def _shape(value):
    return None if value is None else getattr(value, "shape", type(value).__name__)
