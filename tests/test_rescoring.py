"""kmlc.rescoring: the statistics of a graph (controls included), the
NumPy formula, the choice of gamma and out-of-fold logits."""

import numpy as np
import pytest
import scipy.sparse

from kmlc import rescoring
from kmlc.graph import LabelGraph
from kmlc.layers import CooccurrenceRescoring


def _labels(num_images=300, num_labels=8, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((num_images, num_labels)) < 0.2).astype(np.uint8)
    y[:, 1] = y[:, 0]  # label 1 comes exactly with label 0
    y[:, 3] = y[:, 2] & (rng.random(num_images) < 0.7)  # 3 often with 2
    return y


def _counted(y):
    """TG[i, j] = #(i and j) / #i off the diagonal, and P(j), by counting."""
    d = y.shape[1]
    tg = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            with_i = y[:, i] == 1
            if i != j and with_i.any():
                tg[i, j] = (with_i & (y[:, j] == 1)).sum() / with_i.sum()
    return tg, y.mean(axis=0)


@pytest.mark.parametrize("sparse", [False, True])
def test_statistics_are_the_counted_conditional_and_frequency(sparse):
    y = _labels()
    tg, prior = rescoring.statistics(LabelGraph.from_labels(y, sparse=sparse))
    expected_tg, expected_prior = _counted(y)
    tg = tg.toarray() if sparse else tg
    assert (
        scipy.sparse.issparse(
            rescoring.statistics(LabelGraph.from_labels(y, sparse=sparse))[0]
        )
        == sparse
    )
    np.testing.assert_allclose(tg, expected_tg, rtol=1e-6)
    np.testing.assert_allclose(prior, expected_prior, rtol=1e-6)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_shuffled_control_is_the_graph_of_permuted_labels(sparse):
    """TG, P(j) and the adjacency are permuted together: the control is the
    graph counted on the training labels with their columns shuffled."""
    y = _labels()
    seed = 3
    order = np.random.default_rng(seed).permutation(y.shape[1])
    kwargs = {"strategy": "threshold", "tau": 0.3, "sparse": sparse}
    control = LabelGraph.from_labels(y, control="shuffled", control_seed=seed, **kwargs)
    permuted = LabelGraph.from_labels(y[:, order], **kwargs)
    tg, prior = rescoring.statistics(control)
    expected_tg, expected_prior = _counted(y[:, order])
    dense = tg.toarray() if sparse else tg
    np.testing.assert_allclose(dense, expected_tg, rtol=1e-6)
    np.testing.assert_allclose(prior, expected_prior, rtol=1e-6)
    adjacency = control.adjacency.toarray() if sparse else control.adjacency
    expected = permuted.adjacency.toarray() if sparse else permuted.adjacency
    np.testing.assert_array_equal(adjacency, expected)
    assert not np.allclose(dense, _counted(y)[0])  # it did move


def test_the_identity_control_changes_no_logit():
    y = _labels()
    graph = LabelGraph.from_labels(y, control="identity")
    tg, prior = rescoring.statistics(graph)
    assert not np.any(tg) and not np.any(prior)
    logits = np.random.default_rng(1).normal(size=(5, 8))
    np.testing.assert_allclose(rescoring.rescore(logits, tg, prior, 4.0), logits)


@pytest.mark.parametrize("sparse", [False, True])
def test_rescore_is_the_layer(sparse):
    y = _labels()
    tg, prior = rescoring.statistics(LabelGraph.from_labels(y, sparse=sparse))
    logits = np.random.default_rng(2).normal(0, 2, (6, 8)).astype(np.float32)
    layer = CooccurrenceRescoring(tg, prior, gamma=1.5, epsilon=1e-2)
    np.testing.assert_allclose(
        rescoring.rescore(logits, tg, prior, 1.5, 1e-2),
        np.asarray(layer(logits)),
        rtol=1e-5,
        atol=1e-5,
    )


def _noisy_logits(y, seed=4):
    """Clear evidence for labels 0 and 2, almost none for 1 and 3."""
    rng = np.random.default_rng(seed)
    sign = 2.0 * y - 1.0
    logits = rng.normal(0, 1, y.shape) + 3.0 * sign
    logits[:, [1, 3]] = rng.normal(0, 1, (len(y), 2)) + 0.2 * sign[:, [1, 3]]
    return logits


def test_choose_gamma_uses_the_graph_and_not_a_shuffled_one():
    y = _labels(num_images=400)
    logits = _noisy_logits(y)
    gamma, scores = rescoring.choose_gamma(logits, y, LabelGraph.from_labels(y))
    assert gamma > 0 and scores[gamma] > scores[0.0] + 0.02
    assert list(scores) == list(rescoring.GAMMAS)
    shuffled = LabelGraph.from_labels(y, control="shuffled", control_seed=1)
    gamma, _ = rescoring.choose_gamma(logits, y, shuffled)
    assert gamma == 0.0
    # Ties go to the first gamma of the grid.
    identity = LabelGraph.from_labels(y, control="identity")
    assert rescoring.choose_gamma(logits, y, identity, gammas=(2, 0, 1))[0] == 2.0


def test_choose_gamma_errors():
    y = _labels()
    graph = LabelGraph.from_labels(y)
    with pytest.raises(ValueError, match=r"\[N, 8\] .* Received: logits \(300, 7\)"):
        rescoring.choose_gamma(np.zeros((300, 7)), y, graph)
    with pytest.raises(
        ValueError, match=r"gammas must be numbers >= 0. Received: \[-1.0\]"
    ):
        rescoring.choose_gamma(np.zeros(y.shape), y, graph, gammas=(-1,))


def test_out_of_fold_logits_never_predict_a_row_they_trained_on():
    features = np.arange(23, dtype=np.float32)[:, None]
    labels = np.zeros((23, 2))
    seen = []

    def fit_predict(train_x, train_y, held_x):
        assert not set(train_x[:, 0]) & set(held_x[:, 0])
        assert len(train_x) + len(held_x) == 23
        seen.extend(held_x[:, 0])
        return np.tile(held_x, (1, 2)) + 100.0

    out = rescoring.out_of_fold_logits(features, labels, fit_predict, folds=4, seed=1)
    assert sorted(seen) == list(range(23))  # every row held out once
    np.testing.assert_array_equal(out[:, 0], features[:, 0] + 100.0)
    with pytest.raises(ValueError, match="folds >= 2 .* Received: folds=1, 23 rows"):
        rescoring.out_of_fold_logits(features, labels, fit_predict, folds=1)
