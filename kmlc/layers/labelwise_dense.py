"""A scoring head with one weight vector per label."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kmlc")
class LabelwiseDense(keras.layers.Layer):
    """Scores each label node with its own weights: `[B, D, K]` -> `[B, D]`.

    `scores[b, d] = sum_k nodes[b, d, k] * W[d, k] + bias[d]`: the per-label
    readout that turns the GCN's node features into `b_gcn` (eq. 6).

    Args:
        kernel_initializer: initializer for W `[D, K]`. Defaults to
            `"glorot_uniform"`.

    Call:
        nodes: `[B, D, K]`. Returns logits `[B, D]`.
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        num_labels, node_dim = input_shape[-2], input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(num_labels, node_dim),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(num_labels,), initializer="zeros"
        )

    def call(self, nodes):
        return ops.sum(nodes * self.kernel, axis=-1) + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                )
            }
        )
        return config
