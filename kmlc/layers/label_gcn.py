"""Stacked graph convolutions over the label graph (paper eq. 6, 9)."""

import keras
import numpy as np
import scipy.sparse
from keras import ops

PROPAGATIONS = ("auto", "dense", "sparse")
# "auto" propagates over the edge list when the graph has at least this many
# labels and at most this fraction of X' is non-zero; smaller or denser
# graphs use one dense matmul (on 2 CPUs the two cost about the same near
# 1-2 % non-zeros at D = 260-1,000, forward and backward, batch 16, K = 70).
_SPARSE_MIN_LABELS = 128
_SPARSE_MAX_DENSITY = 0.01


@keras.saving.register_keras_serializable(package="kmlc")
class LabelGCN(keras.layers.Layer):
    """Graph convolutions over the label nodes: `P^{k+1} = f(X' P^k Q^k + b)`.

    Eq. 9 of the paper, stacked `num_layers` times (eq. 6 uses the last
    layer's output). Each layer computes exactly what
    `spektral.layers.GCNConv` computes, `activation(X' (P W) + b)`; the test
    suite checks this against spektral itself.

    X' (`LabelGraph.normalized()`) is saved with the model as non-trainable
    weights, so the exported model takes images only, and it is not part of
    the config. It is held in one of two forms, chosen by `propagation`:

    - `"dense"`: the `[D, D]` matrix (weight `adjacency`); the product is
      one matmul with the batch folded into the features,
      `X' [D, D] @ P [D, B * K]`;
    - `"sparse"`: the non-zeros as an edge list sorted by target (weights
      `edge_targets`, `edge_sources`, `edge_weights`, and `edge_transpose`,
      the order by source; each `[num_edges]`, the non-zeros plus at least
      one zero-weight edge); the product gathers the source rows and sums
      them into their targets (`ops.take`, a sorted `ops.segment_sum`), and
      its gradient does the same over the transposed list, so a layer
      costs `num_edges * B * K` instead of `D * D * B * K`, and D^2 numbers
      are never stored. It converts to TFLite (`GATHER`, `SEGMENT_SUM`).

    `"auto"` picks `"sparse"` for graphs of at least 128 labels with at
    most 1 % of X' non-zero (Corel-5k's graph at tau = 0.4, self-loops
    included: 0.94 %), else `"dense"`; on CPU the two cost about the same
    near 1-2 %. Both give the same outputs up to float rounding.

    Args:
        adjacency: array `[D, D]`, scipy sparse matrix, or None. X'. None
            leaves zeros until weights are loaded or `set_adjacency` is
            called.
        units: int or list of int. Output width of each layer; an int is
            used for every layer. Defaults to None (the input width).
        num_layers: int. How many graph convolutions, when `units` is an int
            or None. Defaults to 4 (the paper's best, Fig. 7).
        activation: activation between layers. Defaults to `"leaky_relu"`
            (negative slope 0.2, as in ML-GCN).
        output_activation: activation after the last layer. Defaults to
            None, so the node features feed the scoring head unsquashed.
        use_bias: bool. Defaults to True.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        propagation: `"auto"`, `"dense"` or `"sparse"`. Defaults to
            `"auto"` (without an adjacency: `"sparse"` if `num_edges` is
            given, else `"dense"`).
        num_edges: int or None. Length of the sparse edge list; taken from
            the adjacency when one is given (the config records it, so that
            a reloaded layer has weights of the saved shapes).

    Call:
        nodes: `[B, D, K]` label node features (C, from eq. 3).
        Returns `[B, D, units[-1]]`, the node features P.
    """

    def __init__(
        self,
        adjacency=None,
        units=None,
        num_layers=4,
        activation="leaky_relu",
        output_activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        propagation="auto",
        num_edges=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(units, (list, tuple)):
            units = [int(u) for u in units]
            num_layers = len(units)
        if int(num_layers) < 1:
            raise ValueError(
                f"LabelGCN needs at least one layer. Received: "
                f"num_layers={num_layers}, units={units}"
            )
        if propagation not in PROPAGATIONS:
            raise ValueError(
                f"Unknown propagation. Expected one of {PROPAGATIONS}. "
                f"Received: propagation={propagation!r}"
            )
        self.units = units
        self.num_layers = int(num_layers)
        self.activation = keras.activations.get(activation)
        self.output_activation = keras.activations.get(output_activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._initial_adjacency = None
        if adjacency is not None:
            self._initial_adjacency = _as_coo(adjacency)
        self.propagation, self.num_edges = resolve_propagation(
            self._initial_adjacency, propagation, num_edges, "an adjacency"
        )

    def _layer_units(self, input_dim):
        if isinstance(self.units, list):
            return self.units
        width = input_dim if self.units is None else int(self.units)
        return [width] * self.num_layers

    # === Layers ===

    def build(self, input_shape):
        num_labels, input_dim = input_shape[-2], input_shape[-1]
        self.num_labels = num_labels
        if self.propagation == "dense":
            self.adjacency = self.add_weight(
                name="adjacency",
                shape=(num_labels, num_labels),
                initializer="zeros",
                trainable=False,
            )
        else:
            shape = (self.num_edges,)

            def edge_weight(name, dtype="int32"):
                return self.add_weight(
                    name=name,
                    shape=shape,
                    initializer="zeros",
                    dtype=dtype,
                    trainable=False,
                )

            self.edge_targets = edge_weight("edge_targets")
            self.edge_sources = edge_weight("edge_sources")
            self.edge_weights = edge_weight("edge_weights", "float32")
            self.edge_transpose = edge_weight("edge_transpose")
        if self._initial_adjacency is not None:
            self.set_adjacency(self._initial_adjacency)
            self._initial_adjacency = None
        self.kernels, self.biases = [], []
        dims = [input_dim] + self._layer_units(input_dim)
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            self.kernels.append(
                self.add_weight(
                    name=f"kernel_{i}",
                    shape=(fan_in, fan_out),
                    initializer=self.kernel_initializer,
                )
            )
            if self.use_bias:
                self.biases.append(
                    self.add_weight(
                        name=f"bias_{i}", shape=(fan_out,), initializer="zeros"
                    )
                )

    def set_adjacency(self, adjacency):
        """Replaces X' (for example with a graph counted on new data).

        Args:
            adjacency: array `[D, D]` or scipy sparse matrix. With sparse
                propagation it may have at most `num_edges - 1` non-zeros
                (the rest of the edge list is padded with zero-weight
                edges).
        """
        coo = _as_coo(adjacency)
        _check_adjacency(coo, self.num_labels)
        if self.propagation == "dense":
            self.adjacency.assign(coo.toarray())
            return
        if coo.nnz >= self.num_edges:
            raise ValueError(
                f"This LabelGCN holds {self.num_edges - 1} edges, and the new "
                f"graph has {coo.nnz} non-zeros: build the model with this "
                "graph (or with propagation='dense'). Received: "
                f"{coo.nnz} non-zeros"
            )
        # Padded with (D - 1, D - 1, 0) edges, at least one, so that both
        # orders end with the last label (TensorFlow's sorted segment sum
        # sizes its output by the last id).
        pad = self.num_edges - coo.nnz
        last = self.num_labels - 1
        targets = np.concatenate([coo.row, np.full(pad, last)]).astype(np.int32)
        sources = np.concatenate([coo.col, np.full(pad, last)]).astype(np.int32)
        values = np.concatenate([coo.data, np.zeros(pad, np.float32)])
        order = np.lexsort((sources, targets))  # by target, then source
        targets, sources, values = targets[order], sources[order], values[order]
        self.edge_targets.assign(targets)
        self.edge_sources.assign(sources)
        self.edge_weights.assign(values)
        self.edge_transpose.assign(np.lexsort((targets, sources)).astype(np.int32))

    def adjacency_matrix(self):
        """X' as a dense NumPy array `[D, D]`, whichever form holds it."""
        if self.propagation == "dense":
            return ops.convert_to_numpy(self.adjacency)
        return scipy.sparse.coo_matrix(
            (
                ops.convert_to_numpy(self.edge_weights),
                (
                    ops.convert_to_numpy(self.edge_targets),
                    ops.convert_to_numpy(self.edge_sources),
                ),
            ),
            shape=(self.num_labels, self.num_labels),
        ).toarray()

    # === Forward pass ===

    def _propagate(self, nodes):
        """X' @ nodes, for nodes `[D, B * K]` (the batch folded in)."""
        if self.propagation == "dense":
            return ops.matmul(ops.cast(self.adjacency, nodes.dtype), nodes)
        return _edge_product(
            nodes,
            ops.convert_to_tensor(self.edge_targets),
            ops.convert_to_tensor(self.edge_sources),
            ops.cast(self.edge_weights, nodes.dtype),
            ops.convert_to_tensor(self.edge_transpose),
            self.num_labels,
        )

    def call(self, nodes):
        # [B, D, K] -> [D, B, K]: the batch rides along with the features,
        # so each propagation is one product over [D, B * K].
        nodes = ops.transpose(nodes, (1, 0, 2))
        for i, kernel in enumerate(self.kernels):
            nodes = ops.matmul(nodes, kernel)
            width = kernel.shape[-1]
            nodes = ops.reshape(nodes, (self.num_labels, -1))
            nodes = ops.reshape(self._propagate(nodes), (self.num_labels, -1, width))
            if self.use_bias:
                nodes = nodes + self.biases[i]
            last = i == len(self.kernels) - 1
            activation = self.output_activation if last else self.activation
            nodes = activation(nodes)
        return ops.transpose(nodes, (1, 0, 2))

    def compute_output_shape(self, input_shape):
        units = self._layer_units(input_shape[-1])
        return tuple(input_shape[:-1]) + (units[-1],)

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_layers": self.num_layers,
                "activation": keras.activations.serialize(self.activation),
                "output_activation": keras.activations.serialize(
                    self.output_activation
                ),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "propagation": self.propagation,
                "num_edges": self.num_edges,
            }
        )
        return config


def _edge_product(nodes, targets, sources, weights, transpose, num_labels):
    """X' @ nodes over X''s edges, sorted by target; `[D, F]` -> `[D, F]`.

    The gradient, X'^T @ upstream, runs over the same edges sorted by
    source (`transpose`), so that both passes are a gather and a sorted
    segment sum: autodiff of the gather would scatter instead, which on
    CPU costs several times the forward pass.
    """

    @ops.custom_gradient
    def product(x):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return _gather_sum(
                upstream,
                ops.take(sources, transpose),
                ops.take(targets, transpose),
                ops.take(weights, transpose),
                num_labels,
            )

        return _gather_sum(x, targets, sources, weights, num_labels), grad

    return product(nodes)


def _gather_sum(x, segment_ids, indices, weights, num_segments):
    """`out[i] = sum_{e: segment_ids[e] = i} weights[e] x[indices[e]]`.

    `segment_ids` are sorted and end with `num_segments - 1`.
    """
    messages = ops.take(x, indices, axis=0) * weights[:, None]
    if keras.backend.backend() == "tensorflow":
        # TensorFlow's sorted kernel takes no num_segments.
        return ops.segment_sum(messages, segment_ids, sorted=True)
    return ops.segment_sum(messages, segment_ids, num_segments, sorted=True)


def resolve_propagation(matrix, propagation, num_edges, what):
    """The form a `[D, D]` matrix is propagated in, and its edge list's length.

    Args:
        matrix: the matrix as a COO matrix (`_as_coo`), or None before its
            weights are loaded.
        propagation: `"auto"`, `"dense"` or `"sparse"`; `"auto"` follows
            `_choose` for a matrix, else `"sparse"` if `num_edges` is given.
        num_edges: int or None. The edge list's length; by default the
            matrix's non-zeros plus one zero-weight pad.
        what: the matrix's name in the error for `"sparse"` without either.

    Returns:
        `(propagation, num_edges)`, `num_edges` None for `"dense"`.
    """
    if matrix is not None:
        if propagation == "auto":
            propagation = _choose(matrix.shape[0], matrix.nnz)
        if propagation == "sparse" and num_edges is None:
            num_edges = matrix.nnz + 1
    elif propagation == "auto":
        propagation = "dense" if num_edges is None else "sparse"
    if propagation == "sparse" and (num_edges is None or int(num_edges) < 1):
        raise ValueError(
            f"propagation='sparse' without {what} needs num_edges (the edge "
            f"list's length). Received: num_edges={num_edges}"
        )
    return propagation, (int(num_edges) if propagation == "sparse" else None)


def _choose(num_labels, nnz):
    """`"sparse"` for large graphs with few non-zeros, else `"dense"`."""
    density = nnz / float(num_labels * num_labels)
    if num_labels >= _SPARSE_MIN_LABELS and density <= _SPARSE_MAX_DENSITY:
        return "sparse"
    return "dense"


def _as_coo(adjacency):
    """X' as a float32 COO matrix of its non-zeros (duplicates summed)."""
    if scipy.sparse.issparse(adjacency):
        coo = scipy.sparse.coo_matrix(adjacency, dtype=np.float32)
    else:
        adjacency = np.asarray(adjacency, np.float32)
        if adjacency.ndim != 2:
            raise ValueError(
                "The adjacency must be a matrix [D, D]. "
                f"Received: shape={adjacency.shape}"
            )
        coo = scipy.sparse.coo_matrix(adjacency)
    coo.sum_duplicates()
    coo.eliminate_zeros()
    return coo


def _check_adjacency(adjacency, num_labels):
    if adjacency.shape != (num_labels, num_labels):
        raise ValueError(
            f"The label graph has {adjacency.shape[0]} labels but the model "
            f"has {num_labels}: the adjacency must be [{num_labels}, "
            f"{num_labels}]. Received: shape={adjacency.shape}"
        )
    if not np.all(np.isfinite(adjacency.data)):
        raise ValueError("The adjacency holds NaN or infinite values.")
