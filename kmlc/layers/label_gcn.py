"""Stacked graph convolutions over the label graph (paper eq. 6, 9)."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="kmlc")
class LabelGCN(keras.layers.Layer):
    """Graph convolutions over the label nodes: `P^{k+1} = f(X' P^k Q^k + b)`.

    Eq. 9 of the paper, stacked `num_layers` times (eq. 6 uses the last
    layer's output). Each layer computes exactly what
    `spektral.layers.GCNConv` computes, `activation(X' (P W) + b)`; the test
    suite checks this against spektral itself.

    X', the normalised adjacency (`LabelGraph.normalized()`), is a
    non-trainable weight of this layer: it is saved with the model, and the
    exported model takes images only. It is not part of the config (a
    1,000-label graph would put a million numbers in JSON); a layer rebuilt
    from its config gets it back with the weights.

    Args:
        adjacency: array `[D, D]` or None. X'. None leaves zeros until
            weights are loaded or `set_adjacency` is called.
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
        self.units = units
        self.num_layers = int(num_layers)
        self.activation = keras.activations.get(activation)
        self.output_activation = keras.activations.get(output_activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._initial_adjacency = (
            None if adjacency is None else np.asarray(adjacency, np.float32)
        )

    def _layer_units(self, input_dim):
        if isinstance(self.units, list):
            return self.units
        width = input_dim if self.units is None else int(self.units)
        return [width] * self.num_layers

    def build(self, input_shape):
        num_labels, input_dim = input_shape[-2], input_shape[-1]
        if self._initial_adjacency is not None:
            _check_adjacency(self._initial_adjacency, num_labels)
        self.adjacency = self.add_weight(
            name="adjacency",
            shape=(num_labels, num_labels),
            initializer="zeros",
            trainable=False,
        )
        if self._initial_adjacency is not None:
            self.adjacency.assign(self._initial_adjacency)
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
        """Replaces X' (for example with a graph counted on new data)."""
        adjacency = np.asarray(adjacency, np.float32)
        _check_adjacency(adjacency, self.adjacency.shape[0])
        self.adjacency.assign(adjacency)

    def call(self, nodes):
        adjacency = ops.cast(self.adjacency, self.compute_dtype)
        for i, kernel in enumerate(self.kernels):
            nodes = ops.matmul(adjacency, ops.matmul(nodes, kernel))
            if self.use_bias:
                nodes = nodes + self.biases[i]
            last = i == len(self.kernels) - 1
            activation = self.output_activation if last else self.activation
            nodes = activation(nodes)
        return nodes

    def compute_output_shape(self, input_shape):
        units = self._layer_units(input_shape[-1])
        return tuple(input_shape[:-1]) + (units[-1],)

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
            }
        )
        return config


def _check_adjacency(adjacency, num_labels):
    if adjacency.shape != (num_labels, num_labels):
        raise ValueError(
            f"The label graph has {adjacency.shape[0]} labels but the model "
            f"has {num_labels}: the adjacency must be [{num_labels}, "
            f"{num_labels}]. Received: shape={adjacency.shape}"
        )
    if not np.all(np.isfinite(adjacency)):
        raise ValueError("The adjacency holds NaN or infinite values.")
