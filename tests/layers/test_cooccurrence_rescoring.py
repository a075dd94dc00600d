import numpy as np
import pytest
import scipy.sparse

from kmlc.layers import CooccurrenceRescoring
from tests.layers.layer_test_case import run_layer_test


def _statistics(num_labels=5, seed=0, density=1.0):
    """A TG with rows of conditional probabilities and label frequencies."""
    rng = np.random.default_rng(seed)
    tg = rng.random((num_labels, num_labels)) * (
        rng.random((num_labels, num_labels)) < density
    )
    np.fill_diagonal(tg, 0.0)
    prior = rng.uniform(0.01, 0.5, num_labels)
    return tg.astype(np.float32), prior.astype(np.float32)


def _reference(logits, tg, prior, gamma, epsilon):
    """The formula, label by label, in float64."""
    out = np.array(logits, np.float64)
    for b, z in enumerate(np.asarray(logits, np.float64)):
        p = 1.0 / (1.0 + np.exp(-z))
        for j in range(len(z)):
            q = sum(p[i] * tg[i, j] for i in range(len(z))) / p.sum()
            out[b, j] = z[j] + gamma * (
                np.log(epsilon + q) - np.log(epsilon + prior[j])
            )
    return out


def _logits(batch=3, num_labels=5, seed=1):
    return (
        np.random.default_rng(seed).normal(0, 2, (batch, num_labels)).astype(np.float32)
    )


@pytest.mark.parametrize("propagation", ["dense", "sparse"])
def test_contract(tmp_path, propagation):
    tg, prior = _statistics()
    run_layer_test(
        CooccurrenceRescoring,
        {
            "conditional": tg,
            "prior": prior,
            "gamma": 1.5,
            "propagation": propagation,
        },
        (_logits(),),
        [(3, 5)],
        tmp_path,
        trainable=False,
    )


@pytest.mark.parametrize("propagation", ["dense", "sparse"])
@pytest.mark.parametrize("gamma,epsilon", [(1.0, 1e-3), (2.5, 1e-2)])
def test_matches_the_formula(propagation, gamma, epsilon):
    tg, prior = _statistics(num_labels=6, seed=2, density=0.6)
    logits = _logits(4, 6, seed=3)
    layer = CooccurrenceRescoring(
        tg, prior, gamma=gamma, epsilon=epsilon, propagation=propagation
    )
    got = np.asarray(layer(logits))
    np.testing.assert_allclose(
        got, _reference(logits, tg, prior, gamma, epsilon), rtol=1e-5, atol=1e-5
    )


def test_dense_and_sparse_forms_agree_past_the_size_rule():
    # 200 labels, about 0.5 % of TG non-zero: "auto" holds an edge list.
    tg, prior = _statistics(num_labels=200, seed=4, density=0.005)
    logits = _logits(8, 200, seed=5)
    auto = CooccurrenceRescoring(scipy.sparse.csr_matrix(tg), prior, gamma=2.0)
    dense = CooccurrenceRescoring(tg, prior, gamma=2.0, propagation="dense")
    assert auto.propagation == "sparse"
    assert auto.num_edges == np.count_nonzero(tg) + 1
    np.testing.assert_allclose(
        np.asarray(auto(logits)), np.asarray(dense(logits)), rtol=1e-5, atol=1e-5
    )
    assert {w.name for w in auto.weights} == {
        "edge_targets",
        "edge_sources",
        "edge_weights",
        "prior",
    }
    np.testing.assert_allclose(auto.statistics()[0], tg)
    # A denser TG of the same size is held as a matrix.
    tg, prior = _statistics(num_labels=200, seed=4, density=0.05)
    assert CooccurrenceRescoring(tg, prior).propagation == "dense"


def test_independent_labels_and_the_identity_control_change_nothing():
    _, prior = _statistics()
    logits = _logits()
    independent = np.tile(prior, (5, 1))  # P(j | i) = P(j)
    for tg, p in ((independent, prior), (np.zeros((5, 5)), np.zeros(5))):
        for propagation in ("dense", "sparse"):
            layer = CooccurrenceRescoring(tg, p, gamma=3.0, propagation=propagation)
            np.testing.assert_allclose(np.asarray(layer(logits)), logits, atol=1e-5)


def test_a_likely_neighbour_raises_a_label_and_training_passes_through():
    # Label 1 always comes with label 0; label 2 never does.
    tg = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], np.float32)
    prior = np.array([0.2, 0.2, 0.2], np.float32)
    logits = np.array([[4.0, 0.0, 0.0]], np.float32)
    layer = CooccurrenceRescoring(tg, prior, gamma=1.0)
    out = np.asarray(layer(logits))
    assert out[0, 1] > 0.5 and out[0, 2] < -0.5
    np.testing.assert_array_equal(np.asarray(layer(logits, training=True)), logits)


def test_statistics_are_saved_weights_not_config():
    tg, prior = _statistics()
    layer = CooccurrenceRescoring(tg, prior, gamma=2.0, epsilon=1e-2)
    layer.build((None, 5))
    assert not layer.trainable_weights
    assert {w.name for w in layer.non_trainable_weights} == {"conditional", "prior"}
    config = layer.get_config()
    assert config["gamma"] == 2.0 and config["epsilon"] == 1e-2
    assert config["propagation"] == "dense" and config["num_edges"] is None
    assert "conditional" not in config and "prior" not in config
    got_tg, got_prior = layer.statistics()
    np.testing.assert_array_equal(got_tg, tg)
    np.testing.assert_array_equal(got_prior, prior)


@pytest.mark.parametrize("propagation", ["dense", "sparse"])
def test_set_statistics_replaces_them(propagation):
    tg, prior = _statistics(seed=6, density=0.5)
    new_tg, new_prior = _statistics(seed=7, density=0.3)
    logits = _logits()
    layer = CooccurrenceRescoring(
        tg,
        prior,
        propagation=propagation,
        num_edges=26 if propagation == "sparse" else None,
    )
    layer(logits)
    layer.set_statistics(new_tg, new_prior)
    np.testing.assert_allclose(
        np.asarray(layer(logits)),
        _reference(logits, new_tg, new_prior, 1.0, 1e-3),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bad_arguments_name_themselves():
    tg, prior = _statistics()
    with pytest.raises(
        ValueError, match="gamma must be a number >= 0. Received: gamma=-1"
    ):
        CooccurrenceRescoring(tg, prior, gamma=-1)
    with pytest.raises(
        ValueError, match="epsilon must be a number > 0. Received: epsilon=0"
    ):
        CooccurrenceRescoring(tg, prior, epsilon=0)
    with pytest.raises(ValueError, match="Received: propagation='csr'"):
        CooccurrenceRescoring(tg, prior, propagation="csr")
    with pytest.raises(
        ValueError, match=r"or neither. Received: conditional=\(5, 5\), prior=None"
    ):
        CooccurrenceRescoring(tg)
    with pytest.raises(ValueError, match="needs num_edges .* Received: num_edges=None"):
        CooccurrenceRescoring(propagation="sparse")
    with pytest.raises(
        ValueError, match=r"TG must be a matrix \[D, D\]. Received: shape=\(5,\)"
    ):
        CooccurrenceRescoring(prior, prior)


def test_bad_statistics_are_refused_before_anything_changes():
    tg, prior = _statistics()
    layer = CooccurrenceRescoring(propagation="dense")
    with pytest.raises(ValueError, match="not built yet"):
        layer.set_statistics(tg, prior)
    layer = CooccurrenceRescoring(tg, prior)
    layer.build((None, 5))
    with pytest.raises(
        ValueError, match=r"TG must be \[5, 5\] .* Received: shape=\(4, 4\)"
    ):
        layer.set_statistics(tg[:4, :4], prior)
    with pytest.raises(
        ValueError, match=r"prior must be \[5\].* Received: shape=\(4,\)"
    ):
        layer.set_statistics(tg, prior[:4])
    bad = tg.copy()
    bad[0, 1] = -0.5
    with pytest.raises(
        ValueError, match="TG must hold finite probabilities >= 0. Received: -0.5"
    ):
        layer.set_statistics(bad, prior)
    with pytest.raises(ValueError, match="prior must hold finite .* Received: nan"):
        layer.set_statistics(tg, np.full(5, np.nan))
    np.testing.assert_array_equal(layer.statistics()[0], tg)  # unchanged
    sparse = CooccurrenceRescoring(tg * np.eye(5)[::-1], prior, propagation="sparse")
    sparse.build((None, 5))
    with pytest.raises(ValueError, match="holds 4 edges, .* Received: 20 non-zeros"):
        sparse.set_statistics(tg, prior)
