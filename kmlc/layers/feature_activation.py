"""The plain classifier and the per-label feature activation vectors."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kmlc")
class FeatureActivation(keras.layers.Layer):
    """The classifier `b_cls` (eq. 2) and its label activation vectors (eq. 3).

    `b_cls = a W_cls + bias`, and for every label d the global feature `a`
    filtered by that label's classifier weights, `a * W_cls[:, d]` (the
    paper's copy-D-times-then-Hadamard), projected to `node_dim` features:
    `C[b, d] = P (a[b] * W_cls[:, d])`.

    kmlc reads the paper's "number of feature replications" (best at 70,
    never defined) as `node_dim`, the width of each label node's feature
    vector. The projection is computed as `(a[:, None, :] * P) @ W_cls`, so
    no `[B, D, E]` tensor is formed (docs/design.md, "Scale"); with
    `node_dim=None` eq. 3 is taken literally and C is `[B, D, E]`.

    Args:
        num_labels: int. D, the number of labels.
        node_dim: int or None. K, the label node width. Defaults to 20.
        use_bias: bool. Whether `b_cls` has a bias (a model whose final
            logits leave out `b_cls` has no use for one). Defaults to True.
        kernel_initializer: initializer for `W_cls` and the projection.
            Defaults to `"glorot_uniform"`.

    Call:
        features: `[B, E]`, the pooled image features `a`.
        Returns `(logits, activations)`: `b_cls` `[B, D]` and C `[B, D, K]`.

    Reference: Xu, "A Deep Learning-Based Cluster Analysis Method for
    Large-Scale Multi-Label Images", Traitement du Signal 39(3), 2022.
    """

    def __init__(
        self,
        num_labels,
        node_dim=20,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.node_dim = None if node_dim is None else int(node_dim)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        feature_dim = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(feature_dim, self.num_labels),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.num_labels,), initializer="zeros"
            )
        self.projection = None
        if self.node_dim is not None:
            self.projection = self.add_weight(
                name="projection",
                shape=(self.node_dim, feature_dim),
                initializer=self.kernel_initializer,
            )

    def call(self, features):
        logits = ops.matmul(features, self.kernel)
        if self.bias is not None:
            logits = logits + self.bias
        if self.projection is None:
            # [B, 1, E] * [1, D, E] -> [B, D, E]: eq. 3 as written.
            activations = features[:, None, :] * ops.transpose(self.kernel)[None]
        else:
            # sum_e P[k, e] a[b, e] W[e, d], as [B, K, E] @ [E, D].
            filtered = features[:, None, :] * self.projection[None]
            activations = ops.transpose(ops.matmul(filtered, self.kernel), (0, 2, 1))
        return logits, activations

    def compute_output_shape(self, input_shape):
        batch, feature_dim = input_shape[0], input_shape[-1]
        node_dim = feature_dim if self.node_dim is None else self.node_dim
        return (batch, self.num_labels), (batch, self.num_labels, node_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_labels": self.num_labels,
                "node_dim": self.node_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
