import keras
import numpy as np
import pytest
import tensorflow as tf

from kmlc.layers import RelationAttention
from tests.layers.layer_test_case import run_layer_test


def _softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _reference(feature_map, prior, layer):
    """Eq. 13-19 for one image at a time, pair by pair, in NumPy."""
    w = {v.name: v.numpy() for v in layer.weights}
    batch, height, width, channels = feature_map.shape
    k = min(layer.top_k, layer.num_labels)
    out = np.zeros((batch, layer.num_labels))
    ys, xs = np.meshgrid(
        (np.arange(height) + 0.5) / height,
        (np.arange(width) + 0.5) / width,
        indexing="ij",
    )
    xs, ys = xs.ravel(), ys.ravel()
    freqs = 1.0 / 1000.0 ** (
        np.arange(layer.geometry_dim // 8) / (layer.geometry_dim // 8)
    )
    for b in range(batch):
        flat = feature_map[b].reshape(-1, channels)
        labels = np.argsort(-prior[b], kind="stable")[:k]
        g_x, boxes = [], []
        for label in labels:
            cam = _softmax(flat @ w["cam_kernel"][label] + w["cam_bias"][label], 0)
            g_x.append(cam @ flat)
            cx, cy = cam @ xs, cam @ ys
            bw = 2 * np.sqrt(cam @ (xs - cx) ** 2 + 1e-12) + 1 / width
            bh = 2 * np.sqrt(cam @ (ys - cy) ** 2 + 1e-12) + 1 / height
            boxes.append((cx, cy, bw, bh))
        g_x = np.array(g_x)
        logits_nm = np.zeros((k, k))
        for n in range(k):
            for m in range(k):
                xn, yn, wn, hn = boxes[n]
                xm, ym, wm, hm = boxes[m]
                geometry = np.array(
                    [
                        np.log(max(abs(xn - xm) / wn, 1e-3)),
                        np.log(max(abs(yn - ym) / hn, 1e-3)),
                        np.log(wm / wn),
                        np.log(hm / hn),
                    ]
                )
                angles = (100.0 * geometry)[:, None] * freqs  # [4, F]
                embedding = np.concatenate([np.sin(angles), np.cos(angles)], -1)
                q_h = max(
                    0.0,
                    float(embedding.ravel() @ w["geometry_kernel"][:, 0])
                    + w["geometry_bias"][0],
                )
                q_x = (g_x[n] @ w["query_kernel"]) @ (g_x[m] @ w["key_kernel"])
                q_x /= np.sqrt(layer.key_dim)
                logits_nm[n, m] = q_x + np.log(1.0 + q_h)
        q = _softmax(logits_nm, axis=0)  # eq. 16: normalised over n
        values = g_x @ w["value_kernel"] + w["value_bias"]
        for m, label in enumerate(labels):
            fused = g_x[m] + sum(q[n, m] * values[n] for n in range(k))
            out[b, label] = fused @ w["label_kernel"][label] + w["label_bias"][label]
    return out


def _inputs(seed=0, labels=7):
    rng = np.random.default_rng(seed)
    feature_map = rng.normal(size=(2, 3, 4, 8)).astype("float32")
    prior = rng.normal(size=(2, labels)).astype("float32")
    return feature_map, prior


def _randomise(layer, seed=3):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(0.5 * rng.normal(size=weight.shape).astype("float32"))


def test_contract(tmp_path):
    feature_map, prior = _inputs()
    # Non-zero scoring weights, so that every weight has a gradient, but
    # b_H's: q_H starts at 1 for every pair, and a shift common to every
    # pair is invisible to the softmax over n.
    run_layer_test(
        RelationAttention,
        {
            "num_labels": 7,
            "top_k": 4,
            "key_dim": 5,
            "geometry_dim": 16,
            "score_initializer": "glorot_uniform",
        },
        (feature_map, prior),
        [(2, 7)],
        tmp_path,
        zero_gradient_weights=("geometry_bias",),
    )


def test_symbolic_call_with_maps():
    inputs = [keras.Input((3, 4, 8)), keras.Input((7,))]
    layer = RelationAttention(7, top_k=4, key_dim=5, geometry_dim=16)
    logits, maps, labels = layer(*inputs, return_maps=True)
    assert tuple(logits.shape) == (None, 7)
    assert tuple(maps.shape) == (None, 3, 4, 4)
    assert tuple(labels.shape) == (None, 4) and labels.dtype == "int32"
    eager = layer(*_inputs(), return_maps=True)
    dtypes = [keras.backend.standardize_dtype(t.dtype) for t in eager]
    assert dtypes == ["float32", "float32", "int32"]


@pytest.mark.parametrize("seed", range(30))
def test_position_weights_learn_from_any_initialisation(seed):
    # Eq. 18's ReLU starts alive for every pair, so W_H gets a gradient
    # whatever the draw. With the former initialisation (glorot W_H, zero
    # bias) every pair was dead, and this failed, for seed 7 here and for 2
    # of 30 seeds of tests/model_fixtures.tiny_model("full").
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    feature_map = np.maximum(rng.normal(size=(4, 4, 4, 16)), 0).astype("float32")
    prior = rng.normal(size=(4, 6)).astype("float32")
    layer = RelationAttention(6, top_k=3, score_initializer="glorot_uniform")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(feature_map, prior)))
    grad = tape.gradient(loss, layer.geometry_kernel.value)
    assert np.any(grad.numpy() != 0)


def test_starts_at_zero():
    feature_map, prior = _inputs()
    layer = RelationAttention(7, top_k=4, key_dim=5, geometry_dim=16)
    np.testing.assert_array_equal(np.asarray(layer(feature_map, prior)), 0.0)


def test_matches_pairwise_reference():
    feature_map, prior = _inputs()
    layer = RelationAttention(7, top_k=4, key_dim=5, geometry_dim=16)
    layer(feature_map, prior)
    _randomise(layer)
    got = keras.ops.convert_to_numpy(layer(feature_map, prior))
    np.testing.assert_allclose(
        got, _reference(feature_map, prior, layer), rtol=1e-3, atol=1e-4
    )


def test_scores_only_the_top_k_candidates():
    feature_map, prior = _inputs()
    layer = RelationAttention(7, top_k=3, key_dim=5, geometry_dim=16)
    layer(feature_map, prior)
    _randomise(layer)
    got = keras.ops.convert_to_numpy(layer(feature_map, prior))
    for b in range(2):
        top = set(np.argsort(-prior[b])[:3])
        outside = [d for d in range(7) if d not in top]
        assert np.all(got[b, outside] == 0)
        assert np.all(got[b, sorted(top)] != 0)


def test_top_k_larger_than_the_label_count():
    feature_map, prior = _inputs(labels=3)
    layer = RelationAttention(3, top_k=10, key_dim=4, geometry_dim=8)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(layer(feature_map, prior))))


def test_guards_zero_position_weights_and_equal_centres():
    # A constant feature map gives uniform maps: every label has the same
    # centre (log of a zero distance) and all position weights are zero.
    feature_map = np.ones((1, 2, 2, 8), "float32")
    prior = np.arange(5, dtype="float32")[None]
    layer = RelationAttention(5, top_k=3, key_dim=4, geometry_dim=8)
    layer(feature_map, prior)
    layer.geometry_bias.assign([-1e4])  # ReLU(.) = 0 for every pair
    got = keras.ops.convert_to_numpy(layer(feature_map, prior))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(
        got, _reference(feature_map, prior, layer), rtol=1e-3, atol=1e-4
    )


def test_returns_maps_over_the_feature_map():
    feature_map, prior = _inputs()
    layer = RelationAttention(7, top_k=4, key_dim=5, geometry_dim=16)
    _, maps, labels = layer(feature_map, prior, return_maps=True)
    maps, labels = np.asarray(maps), np.asarray(labels)
    assert maps.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(labels, np.argsort(-prior, axis=1)[:, :4])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"geometry_dim": 12}, "multiple of 8"), ({"top_k": 0}, "top_k must be")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RelationAttention(5, **kwargs)
