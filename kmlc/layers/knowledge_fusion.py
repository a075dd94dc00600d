"""Feeding the label graph back into the image features (paper eq. 10-11)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kmlc")
class KnowledgeFusion(keras.layers.Layer):
    """Knowledge fusion: `B = g(reshape(flatten(A) P'^T)) + A`, `b_hat`.

    Eq. 10: every position of the feature map A is matched against every
    label node's GCN feature, giving a `[h, w, D]` map of label relations,
    which a 1x1 convolution `g` brings back to E channels and adds to A.
    Eq. 11: `b_hat = Dense_D(GAP(B))`, trained with its own BCE (eq. 12).

    kmlc's reading of P': eq. 10's tanh is applied to the GCN output P, then
    a learned projection `W_p` `[K, E]` brings it to E channels,
    `P' = tanh(P) W_p`. Because the projection is linear the product is
    computed as `(flatten(A) W_p^T) tanh(P)^T`, and no `[B, D, E]` tensor is
    formed (docs/design.md, "Scale"). The product with g's kernel `[D, E]` is
    associated so that its cost is `B * min(S, K) * D * E` (S = h * w
    positions, K the node width): `(keys tanh(P)^T) g` when S <= K,
    `keys (tanh(P)^T g)` when the feature map has more positions (448 px:
    S = 196 against K = 70). `g` starts at zero, so B starts as A and a
    pretrained backbone's features are undisturbed at the first step.

    Args:
        num_labels: int. D.
        kernel_initializer: initializer for `W_p` and the classifier.
            Defaults to `"glorot_uniform"`.
        fusion_initializer: initializer for the 1x1 convolution g.
            Defaults to `"zeros"`.

    Call:
        feature_map: `[B, h, w, E]`, A.
        nodes: `[B, D, K]`, the GCN's node features P.
        Returns `(fused, logits)`: B `[B, h, w, E]` and `b_hat` `[B, D]`.
    """

    def __init__(
        self,
        num_labels,
        kernel_initializer="glorot_uniform",
        fusion_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.fusion_initializer = keras.initializers.get(fusion_initializer)

    def build(self, feature_map_shape, nodes_shape):
        channels = feature_map_shape[-1]
        node_dim = nodes_shape[-1]
        self.projection = self.add_weight(
            name="projection",
            shape=(node_dim, channels),
            initializer=self.kernel_initializer,
        )
        self.fusion_kernel = self.add_weight(
            name="fusion_kernel",
            shape=(self.num_labels, channels),
            initializer=self.fusion_initializer,
        )
        self.fusion_bias = self.add_weight(
            name="fusion_bias", shape=(channels,), initializer="zeros"
        )
        self.classifier_kernel = self.add_weight(
            name="classifier_kernel",
            shape=(channels, self.num_labels),
            initializer=self.kernel_initializer,
        )
        self.classifier_bias = self.add_weight(
            name="classifier_bias", shape=(self.num_labels,), initializer="zeros"
        )

    def call(self, feature_map, nodes):
        shape = ops.shape(feature_map)
        flat = ops.reshape(feature_map, (shape[0], -1, shape[-1]))  # [B, S, E]
        keys = ops.matmul(flat, ops.transpose(self.projection))  # [B, S, K]
        values = ops.transpose(ops.tanh(nodes), (0, 2, 1))  # [B, K, D]
        positions = _num_positions(feature_map.shape)
        if positions is not None and positions > nodes.shape[-1]:
            # g(keys values) = keys (values g): B*K*D*E instead of B*S*D*E.
            fused = ops.matmul(keys, ops.matmul(values, self.fusion_kernel))
        else:
            fused = ops.matmul(ops.matmul(keys, values), self.fusion_kernel)
        fused = fused + self.fusion_bias
        fused = ops.reshape(fused, shape) + feature_map
        pooled = ops.mean(fused, axis=(1, 2))
        logits = ops.matmul(pooled, self.classifier_kernel) + self.classifier_bias
        return fused, logits

    def compute_output_shape(self, feature_map_shape, nodes_shape):
        return tuple(feature_map_shape), (feature_map_shape[0], self.num_labels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_labels": self.num_labels,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "fusion_initializer": keras.initializers.serialize(
                    self.fusion_initializer
                ),
            }
        )
        return config


def _num_positions(shape):
    """h * w of a static feature-map shape `[B, h, w, E]`, else None."""
    height, width = shape[1], shape[2]
    if height is None or width is None:
        return None
    return int(height) * int(width)
