"""Tests for kmlc/losses.py against NumPy transcriptions of the formulas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmlc import losses
from kmlc.losses import AsymmetricLoss


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def asl_reference(y, logits, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8):
    """ASL as written in Ridnik et al. (ICCV 2021), eq. 1-4, in float64.

    `L+ = (1 - p)^gamma+ log(p)`, `L- = p_m^gamma- log(1 - p_m)` with the
    shifted probability `p_m = max(p - m, 0)`; logs floored at `eps`; summed
    over labels, averaged over the batch.
    """
    y = np.asarray(y, np.float64)
    p = _sigmoid(np.asarray(logits, np.float64))
    p_m = np.maximum(p - clip, 0.0)
    loss_pos = (1.0 - p) ** gamma_pos * np.log(np.maximum(p, eps))
    loss_neg = p_m**gamma_neg * np.log(np.maximum(1.0 - p_m, eps))
    return float(np.mean(-np.sum(y * loss_pos + (1.0 - y) * loss_neg, axis=-1)))


def bce_with_logits_sum(y, logits):
    """Numerically stable BCE on logits, summed over labels, batch mean."""
    x = np.asarray(logits, np.float64)
    per_entry = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return float(np.mean(np.sum(per_entry, axis=-1)))


def _data(seed=0, rows=6, cols=5, scale=2.0):
    rng = np.random.default_rng(seed)
    y = (rng.random((rows, cols)) < 0.4).astype(np.float32)
    logits = (rng.normal(size=(rows, cols)) * scale).astype(np.float32)
    return y, logits


SETTINGS = [
    {"gamma_neg": 4.0, "gamma_pos": 0.0, "clip": 0.05},  # kmlc's defaults
    {"gamma_neg": 4.0, "gamma_pos": 1.0, "clip": 0.05},  # the reference's
    {"gamma_neg": 2.0, "gamma_pos": 2.0, "clip": 0.0},  # symmetric focal
    {"gamma_neg": 1.0, "gamma_pos": 3.0, "clip": 0.2},
    {"gamma_neg": 0.0, "gamma_pos": 0.0, "clip": 0.1},  # clip only
]


@pytest.mark.parametrize("params", SETTINGS)
def test_asl_equals_reference(params):
    y, logits = _data()
    loss = AsymmetricLoss(**params)
    assert float(loss(y, logits)) == pytest.approx(
        asl_reference(y, logits, **params), rel=1e-5
    )


def test_asl_defaults():
    y, logits = _data(seed=1)
    expected = asl_reference(y, logits, gamma_neg=4.0, gamma_pos=0.0, clip=0.05)
    assert float(AsymmetricLoss()(y, logits)) == pytest.approx(expected, rel=1e-5)


def test_asl_without_focusing_or_clip_is_summed_bce():
    y, logits = _data(seed=2)
    loss = AsymmetricLoss(gamma_neg=0.0, gamma_pos=0.0, clip=0.0)
    expected = bce_with_logits_sum(y, logits)
    assert float(loss(y, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(AsymmetricLoss(0.0, 0.0, clip=None)(y, logits)) == pytest.approx(
        expected, rel=1e-5
    )
    # Keras' BCE averages over labels; ASL sums them.
    keras_bce = keras.losses.BinaryCrossentropy(from_logits=True)(y, logits)
    assert float(loss(y, logits)) == pytest.approx(5 * float(keras_bce), rel=1e-5)


def _gradient(loss, y, logits):
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = loss(y, x)
    return float(value), tape.gradient(value, x).numpy()


def _numerical_gradient(function, logits, h=1e-5):
    x = logits.astype(np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (function(up) - function(down)) / (2 * h)
    return grad


def test_disable_torch_grad_focal_loss_changes_gradient_not_value():
    y, logits = _data(seed=3, rows=3, cols=4)
    params = {"gamma_neg": 4.0, "gamma_pos": 1.0, "clip": 0.05}
    value_off, grad_off = _gradient(AsymmetricLoss(**params), y, logits)
    value_on, grad_on = _gradient(
        AsymmetricLoss(**params, disable_torch_grad_focal_loss=False), y, logits
    )
    assert value_off == pytest.approx(value_on, rel=1e-6)
    assert not np.allclose(grad_off, grad_on, atol=1e-4)
    # With the focusing weights differentiated: the full derivative.
    full = _numerical_gradient(lambda x: asl_reference(y, x, **params), logits)
    np.testing.assert_allclose(grad_on, full, rtol=1e-3, atol=1e-5)
    # With them held constant: the derivative of the logs alone, weighted.
    p = _sigmoid(logits.astype(np.float64))
    p_m = np.maximum(p - params["clip"], 0.0)
    weight = y * (1 - p) ** params["gamma_pos"] + (1 - y) * p_m ** params["gamma_neg"]

    def frozen(x):
        q = _sigmoid(x)
        q_m = np.maximum(q - params["clip"], 0.0)
        logs = y * np.log(q) + (1 - y) * np.log(1 - q_m)
        return float(np.mean(-np.sum(weight * logs, axis=-1)))

    np.testing.assert_allclose(
        grad_off, _numerical_gradient(frozen, logits), rtol=1e-3, atol=1e-5
    )


@pytest.mark.parametrize("disable", [True, False])
def test_asl_finite_on_saturated_logits(disable):
    # Saturated positives (1 - p == 0 in float32) and negatives below the
    # clip (p_m == 0) meet a focusing exponent of 0: power(0, 0).
    y = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], np.float32)
    logits = np.array([[40.0, -40.0, 1.0, -5.0], [40.0, -40.0, -1.0, 3.0]], np.float32)
    for gamma_neg, gamma_pos in ((4.0, 0.0), (0.0, 2.0), (1.0, 1.0)):
        loss = AsymmetricLoss(
            gamma_neg, gamma_pos, clip=0.05, disable_torch_grad_focal_loss=disable
        )
        value, grad = _gradient(loss, y, logits)
        assert value == pytest.approx(
            asl_reference(y, logits, gamma_neg, gamma_pos, 0.05), rel=1e-5
        )
        assert np.all(np.isfinite(grad)), (gamma_neg, gamma_pos, grad)


def test_get():
    y, logits = _data(seed=4)
    bce = losses.get("bce")
    assert isinstance(bce, keras.losses.BinaryCrossentropy)
    # Keras' BCE is the mean over labels.
    assert float(bce(y, logits)) == pytest.approx(
        bce_with_logits_sum(y, logits) / 5, rel=1e-5
    )
    asl = losses.get("asl")
    assert isinstance(asl, AsymmetricLoss)
    assert (asl.gamma_neg, asl.gamma_pos, asl.clip) == (4.0, 0.0, 0.05)
    custom = AsymmetricLoss(gamma_neg=2.0)
    assert losses.get(custom) is custom
    with pytest.raises(
        ValueError, match=r"Unknown loss.*\('bce', 'asl'\).*identifier='focal'"
    ):
        losses.get("focal")


def test_asl_config_round_trip():
    y, logits = _data(seed=5)
    loss = AsymmetricLoss(
        gamma_neg=3.0,
        gamma_pos=1.0,
        clip=0.1,
        eps=1e-6,
        disable_torch_grad_focal_loss=False,
        name="asl",
    )
    config = loss.get_config()
    clone = AsymmetricLoss.from_config(config)
    assert clone.get_config() == config
    assert (clone.gamma_neg, clone.gamma_pos, clone.clip, clone.eps) == (
        3.0,
        1.0,
        0.1,
        1e-6,
    )
    assert clone.disable_torch_grad_focal_loss is False
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(revived, AsymmetricLoss)
    assert float(revived(y, logits)) == pytest.approx(float(loss(y, logits)))
