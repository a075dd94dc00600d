"""Relation attention between labels, with position weights (eq. 13-19)."""

import math

import keras
from keras import ops

# The smallest centre distance relative to a box side, inside eq. 19's log
# (as in Relation Networks).
_MIN_RELATIVE_DISTANCE = 1e-3
# Relation Networks' sinusoidal embedding: scale and wave length.
_EMBEDDING_SCALE = 100.0
_WAVE_LENGTH = 1000.0


@keras.saving.register_keras_serializable(package="kmlc")
class RelationAttention(keras.layers.Layer):
    """Attention among the candidate labels of an image (eq. 13-19).

    docs/design.md's reading, step by step, for the `top_k` labels with the
    highest prior logits (eq. 15's M "labels contained in the image" are
    unknown at run time, so the strongest candidates stand in for them):

    1. a class activation map per candidate: a 1x1 convolution over the
       feature map, softmax over positions `[B, h, w, K]`;
    2. local features `g_X[m]`: the feature map pooled under label m's map;
       location `g_H[m]`: the map's centre `(x, y)` (first moments) and
       extent `(w, h)` (twice the standard deviation, at least one cell);
    3. eq. 19: for each pair, `log(|x_n - x_m| / w_n)`,
       `log(|y_n - y_m| / h_n)`, `log(w_m / w_n)`, `log(h_m / h_n)`,
       embedded with sines and cosines (sigma_H). The boxes are treated as
       observations (no gradient back into the maps through them);
    4. eq. 18: position weights `q_H = ReLU(W_H sigma_H + b_H)`, starting
       at `W_H = 0`, `b_H = 1` (every pair's ReLU alive, the position term
       neutral); eq. 17: feature weights
       `q_X = <Q_L g_X[n], Q_W g_X[m]> / sqrt(key_dim)`;
    5. eq. 16 with the position weight as a boost on feature attention:
       `q[n, m] = (1 + q_H) exp(q_X) / sum_l (1 + q_H) exp(q_X)`, a softmax
       over n of `q_X + log(1 + q_H)`. Eq. 16 as printed multiplies by q_H
       itself; since q_H is a ReLU, most pairs start at exactly 0 and the
       denominator at 0 / 0; flooring q_H (Relation Networks' `max(q_H,
       1e-6)`) keeps it finite but makes `d log q_H` up to 1e6 for a pair
       just above the floor, and in kmlc's measurements (synthetic scenes,
       `cls` + `attention`) training then reached a loss 70% above the
       plain classifier's. With `1 + q_H` a pair without position evidence
       keeps its feature attention, and the gradient is at most 1;
    6. eq. 15: `g_s(m) = sum_n q[n, m] Q_u g_X[n]` (Q_u a 1x1 convolution),
       fused back as `g_X + g_s`, and scored with label m's own weights.

    Pairwise tensors are `[B, K, K, ...]`, never `[B, D, D, ...]`.

    Args:
        num_labels: int. D.
        top_k: int. K, how many candidate labels attend to each other.
            Defaults to 10.
        key_dim: int. Width of the query/key projections of eq. 17.
            Defaults to 256.
        geometry_dim: int. Width of sigma_H's embedding, a multiple of 8.
            Defaults to 64.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        score_initializer: initializer of the per-label scoring weights.
            Defaults to `"zeros"`: `b_att` starts at zero and grows into a
            correction of the candidates' ranking, instead of adding a
            large random offset to whichever labels happen to be the
            candidates (which measurably hurts training).

    Call:
        feature_map: `[B, h, w, E]` (B from the fusion block, or A).
        prior_logits: `[B, D]`, the earlier heads' logits; only their order
            is used (no gradient flows through the choice).
        return_maps: bool. Also return the attention maps and the labels.
        Returns logits `b_att` `[B, D]` (zero outside the K candidates);
        with `return_maps`, `(logits, maps [B, h, w, K], labels [B, K])`.
    """

    def __init__(
        self,
        num_labels,
        top_k=10,
        key_dim=256,
        geometry_dim=64,
        kernel_initializer="glorot_uniform",
        score_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if geometry_dim % 8:
            raise ValueError(
                "geometry_dim must be a multiple of 8 (sine and cosine of 4 "
                f"coordinates). Received: geometry_dim={geometry_dim}"
            )
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1. Received: top_k={top_k}")
        self.num_labels = int(num_labels)
        self.top_k = int(top_k)
        self.key_dim = int(key_dim)
        self.geometry_dim = int(geometry_dim)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.score_initializer = keras.initializers.get(score_initializer)

    def build(self, feature_map_shape, prior_logits_shape):
        channels = feature_map_shape[-1]
        init = self.kernel_initializer

        def weight(name, shape, initializer=init):
            return self.add_weight(name=name, shape=shape, initializer=initializer)

        self.cam_kernel = weight("cam_kernel", (self.num_labels, channels))
        self.cam_bias = weight("cam_bias", (self.num_labels,), "zeros")
        self.query_kernel = weight("query_kernel", (channels, self.key_dim))
        self.key_kernel = weight("key_kernel", (channels, self.key_dim))
        # q_H starts at ReLU(0 + 1) = 1 for every pair: each pair's ReLU is
        # alive, so W_H gets a gradient whatever the initial draw (with a
        # random W_H and a zero bias, some draws left every pair at 0), and
        # the position term starts neutral (the same log 2 for every pair,
        # which the softmax over n ignores) until W_H learns.
        self.geometry_kernel = weight(
            "geometry_kernel", (self.geometry_dim, 1), "zeros"
        )
        self.geometry_bias = weight("geometry_bias", (1,), "ones")
        self.value_kernel = weight("value_kernel", (channels, channels))
        self.value_bias = weight("value_bias", (channels,), "zeros")
        self.label_kernel = weight(
            "label_kernel", (self.num_labels, channels), self.score_initializer
        )
        self.label_bias = weight("label_bias", (self.num_labels,), "zeros")

    def call(self, feature_map, prior_logits, return_maps=False):
        dtype = self.compute_dtype
        k = min(self.top_k, self.num_labels)
        shape = ops.shape(feature_map)
        height, width = feature_map.shape[1], feature_map.shape[2]
        flat = ops.reshape(feature_map, (shape[0], -1, shape[-1]))  # [B, S, E]

        _, labels = ops.top_k(ops.stop_gradient(prior_logits), k)  # [B, K]

        # 1. Class activation maps of the candidates, softmax over space.
        cam_kernel = ops.take(self.cam_kernel, labels, axis=0)  # [B, K, E]
        cam_logits = ops.einsum("bse,bke->bsk", flat, cam_kernel)
        cam_logits = cam_logits + ops.take(self.cam_bias, labels, axis=0)[:, None]
        maps = ops.softmax(cam_logits, axis=1)  # [B, S, K]

        # 2. Local features and boxes (moments of each map).
        local = ops.einsum("bsk,bse->bke", maps, flat)  # g_X: [B, K, E]
        xs, ys = _grid_centres(height, width, dtype)
        centre_x = ops.einsum("bsk,s->bk", maps, xs)
        centre_y = ops.einsum("bsk,s->bk", maps, ys)
        var_x = ops.einsum(
            "bsk,bsk->bk", maps, (xs[None, :, None] - centre_x[:, None]) ** 2
        )
        var_y = ops.einsum(
            "bsk,bsk->bk", maps, (ys[None, :, None] - centre_y[:, None]) ** 2
        )
        box_w = 2.0 * ops.sqrt(var_x + 1e-12) + 1.0 / width
        box_h = 2.0 * ops.sqrt(var_y + 1e-12) + 1.0 / height

        # 3-4. Position weights (eq. 18-19) and feature weights (eq. 17).
        # The boxes are observations of the maps, as boxes are inputs in
        # Relation Networks: no gradient flows back through eq. 19's
        # high-frequency embedding into the maps (which, measured, made
        # training unstable); the maps still learn through g_X.
        geometry = ops.stop_gradient(
            _relative_geometry(centre_x, centre_y, box_w, box_h)
        )
        embedding = _sinusoidal_embedding(geometry, self.geometry_dim, dtype)
        position_weights = ops.relu(
            ops.squeeze(ops.matmul(embedding, self.geometry_kernel), -1)
            + self.geometry_bias
        )  # [B, K(n), K(m)]
        queries = ops.matmul(local, self.query_kernel)
        keys = ops.matmul(local, self.key_kernel)
        feature_weights = ops.einsum("bnd,bmd->bnm", queries, keys) / math.sqrt(
            self.key_dim
        )

        # 5. Eq. 16, normalised over the source labels n.
        relation = ops.softmax(
            feature_weights + ops.log(1.0 + position_weights), axis=1
        )

        # 6. Eq. 15, fused into g_X and scored per label.
        values = ops.matmul(local, self.value_kernel) + self.value_bias
        relational = ops.einsum("bnm,bne->bme", relation, values)
        fused = local + relational
        label_kernel = ops.take(self.label_kernel, labels, axis=0)
        scores = ops.sum(fused * label_kernel, axis=-1) + ops.take(
            self.label_bias, labels, axis=0
        )  # [B, K]
        one_hot = ops.one_hot(labels, self.num_labels, dtype=scores.dtype)
        logits = ops.einsum("bk,bkd->bd", scores, one_hot)
        if return_maps:
            maps = ops.reshape(maps, (shape[0], height, width, k))
            return logits, maps, labels
        return logits

    def compute_output_shape(self, feature_map_shape, prior_logits_shape):
        return (feature_map_shape[0], self.num_labels)

    def compute_output_spec(self, feature_map, prior_logits, return_maps=False):
        logits = keras.KerasTensor(
            self.compute_output_shape(feature_map.shape, prior_logits.shape),
            dtype=self.compute_dtype,
        )
        if not return_maps:
            return logits
        batch, height, width = feature_map.shape[:3]
        k = min(self.top_k, self.num_labels)
        maps = keras.KerasTensor((batch, height, width, k), dtype=self.compute_dtype)
        return logits, maps, keras.KerasTensor((batch, k), dtype="int32")

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_labels": self.num_labels,
                "top_k": self.top_k,
                "key_dim": self.key_dim,
                "geometry_dim": self.geometry_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "score_initializer": keras.initializers.serialize(
                    self.score_initializer
                ),
            }
        )
        return config


def _grid_centres(height, width, dtype):
    """Normalised (x, y) of each feature-map cell's centre, row-major `[S]`."""
    # arange in float32 and cast: TensorFlow has no float16 Range kernel.
    xs = (ops.cast(ops.arange(width), dtype) + 0.5) / width
    ys = (ops.cast(ops.arange(height), dtype) + 0.5) / height
    grid_x = ops.tile(xs[None, :], (height, 1))
    grid_y = ops.tile(ys[:, None], (1, width))
    return ops.reshape(grid_x, (-1,)), ops.reshape(grid_y, (-1,))


def _relative_geometry(centre_x, centre_y, box_w, box_h):
    """Eq. 19 for every pair (n, m): `[B, K, K, 4]`."""
    dx = ops.abs(centre_x[:, :, None] - centre_x[:, None, :]) / box_w[:, :, None]
    dy = ops.abs(centre_y[:, :, None] - centre_y[:, None, :]) / box_h[:, :, None]
    return ops.stack(
        [
            ops.log(ops.maximum(dx, _MIN_RELATIVE_DISTANCE)),
            ops.log(ops.maximum(dy, _MIN_RELATIVE_DISTANCE)),
            ops.log(box_w[:, None, :] / box_w[:, :, None]),
            ops.log(box_h[:, None, :] / box_h[:, :, None]),
        ],
        axis=-1,
    )


def _sinusoidal_embedding(geometry, dim, dtype):
    """sigma_H: sines and cosines of each coordinate, `[..., 4]` -> `[..., dim]`."""
    num_freqs = dim // 8
    exponents = ops.cast(ops.arange(num_freqs), dtype) / num_freqs
    inverse_wave = 1.0 / ops.power(ops.cast(_WAVE_LENGTH, dtype), exponents)
    angles = (_EMBEDDING_SCALE * geometry)[..., None] * inverse_wave  # [..., 4, F]
    embedding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
    new_shape = ops.shape(embedding)[:-2] + (dim,)
    return ops.reshape(embedding, new_shape)
