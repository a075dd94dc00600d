"""benchmarks/quality_experiments: the research scripts still run against
kmlc's current API (a package split once broke them unnoticed), and what
they report agrees with scikit-learn.

Synthetic cached features stand in for the Corel-5k cache: labels that
the pooled features predict, so that a trained head must score well.
"""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from benchmarks.quality_experiments import cluster_embeddings
from benchmarks.quality_experiments import features
from benchmarks.quality_experiments import posthoc
from benchmarks.quality_experiments import run
from benchmarks.quality_experiments import stacking

FEATURE_DIM = 1280  # EfficientNet-Lite0's, which the experiments' heads assume


class _Split:
    """A `features.Split` in memory: `maps [N, 2, 2, E]`, `pooled`, `labels`."""

    def __init__(self, labels, projection, rng):
        self.labels = labels.astype(np.float32)
        pooled = labels @ projection + rng.normal(0, 0.5, (len(labels), FEATURE_DIM))
        self.pooled = pooled.astype(np.float32)
        self.maps = np.repeat(
            np.repeat(self.pooled[:, None, None, :], 2, axis=1), 2, axis=2
        ).astype(np.float16)
        self.views = 1


def _splits(num_train=160, num_validation=60, num_labels=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((num_train + num_validation, num_labels)) < 0.35).astype(
        np.float32
    )
    labels[:, 1] = np.maximum(labels[:, 1], labels[:, 0])  # 0 implies 1
    labels[labels.sum(axis=1) == 0, 2] = 1
    projection = rng.normal(0, 1, (num_labels, FEATURE_DIM))
    return {
        "train": _Split(labels[:num_train], projection, rng),
        "validation": _Split(labels[num_train:], projection, rng),
    }


def _sklearn_map(labels, scores):
    num_labels = labels.shape[1]
    return np.mean(
        [average_precision_score(labels[:, j], scores[:, j]) for j in range(num_labels)]
    )


@pytest.fixture(scope="module")
def splits():
    return _splits()


@pytest.mark.parametrize("head", ["baseline", "full"])
def test_train_one_learns_and_scores_like_sklearn(splits, head):
    spec = dict(run.DEFAULTS, head=head, node_dim=8, gcn_layers=2, top_k=3)
    spec.update(epochs=4, lr=1e-2)
    result = run.train_one(splits, spec, seed=0)
    logits = result["logits"]["logits"]
    labels = splits["validation"].labels
    assert logits.shape == labels.shape
    expected = _sklearn_map(labels, logits)
    assert result["final"]["mAP"] == pytest.approx(expected, abs=1e-6)
    assert result["final"]["mAP"] > 0.9
    assert len(result["mAP_per_epoch"]) == 4
    if head == "full":
        assert {"gcn", "fusion", "attention"} <= set(result["head_mAP"])


def test_out_of_fold_logits_score_each_image_once_unseen(splits, monkeypatch):
    monkeypatch.setattr(features, "load", lambda cache_dir: splits)
    spec = {"head": "baseline", "lr": 1e-2, "epochs": 3}
    oof, labels, helds = posthoc.out_of_fold_logits("unused", spec, folds=4, seed=0)
    train = splits["train"]
    np.testing.assert_array_equal(labels, train.labels)
    rows = np.sort(np.concatenate(helds))
    np.testing.assert_array_equal(rows, np.arange(len(train.labels)))
    assert oof.shape == labels.shape
    assert np.all(np.abs(oof).sum(axis=1) > 0)
    assert _sklearn_map(labels, oof) > 0.9


def test_fit_per_label_recovers_the_strength_and_keeps_rare_labels():
    rng = np.random.default_rng(0)
    num_images = 4000
    z = rng.normal(0, 1, (num_images, 3))
    f = rng.normal(0, 1, (num_images, 3))
    y = (z + 2.0 * f + rng.logistic(0, 1, z.shape) > 0).astype(np.float32)
    y[:, 2] = 0
    y[0, 2] = 1  # one positive: too rare to fit
    a, g, b = stacking.fit_per_label(z, f, y, C=100.0)
    np.testing.assert_allclose(g[:2] / a[:2], 2.0, rtol=0.15)
    np.testing.assert_allclose(a[:2], 1.0, rtol=0.15)
    assert (a[2], g[2], b[2]) == (1.0, 0.0, 0.0)


def test_rescoring_term_is_refine_at_gamma_one_minus_the_logits():
    rng = np.random.default_rng(1)
    labels = (rng.random((50, 4)) < 0.4).astype(np.float32)
    logits = rng.normal(0, 2, labels.shape)
    tg, prior = stacking.statistics_of(labels)
    term = stacking.rescoring_term(logits, tg, prior)
    refined = posthoc.refine(logits, tg, 2.0, prior)
    np.testing.assert_allclose(logits + 2 * term, refined)
    permutation = np.array([2, 0, 3, 1])
    tg_p, prior_p = stacking.statistics_of(labels, permutation)
    np.testing.assert_allclose(tg_p, tg[permutation][:, permutation])
    np.testing.assert_allclose(prior_p, prior[permutation])


def test_cluster_embeddings_are_unit_rows_of_the_validation_images(splits):
    vectors = cluster_embeddings.embeddings(splits)
    num_images = len(splits["validation"].labels)
    np.testing.assert_allclose(
        np.linalg.norm(vectors["propagated"], axis=1), np.ones(num_images), rtol=1e-5
    )
    for name, rows in vectors.items():
        assert rows.shape[0] == num_images, name
    assert vectors["plain | sqrt lift"].shape[1] == FEATURE_DIM + 6
