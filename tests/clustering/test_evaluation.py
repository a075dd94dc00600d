"""Agreement measures, checked against hand-computed values."""

import itertools

import numpy as np
import pytest

from kmlc.clustering import evaluation

# Label counts over these four images: a 3, b 1, c 2, d 0.
LABELS = np.array(
    [
        [1, 1, 0, 0],  # a b
        [1, 0, 1, 0],  # a c
        [1, 0, 1, 0],  # a c
        [0, 0, 0, 0],  # none
    ],
    np.uint8,
)


def test_the_dominant_label_is_the_rarest_or_the_most_frequent():
    np.testing.assert_array_equal(
        evaluation.dominant_labels(LABELS, "rarest"), [1, 2, 2, -1]
    )
    np.testing.assert_array_equal(
        evaluation.dominant_labels(LABELS, "frequent"), [0, 0, 0, -1]
    )
    with pytest.raises(ValueError, match="Received: rule='median'"):
        evaluation.dominant_labels(LABELS, "median")


def test_purity_and_jaccard_match_a_hand_count():
    labels = LABELS[:3]
    assignments = np.array([0, 1, 1])
    # Cluster 0: {a b} -> best label 1 of 1; cluster 1: two {a c} -> 2 of 2.
    assert evaluation.label_purity(assignments, labels) == 1.0
    assert evaluation.label_purity(np.array([0, 0, 0]), labels) == 1.0  # a: 3 of 3
    within, between = evaluation.jaccard_within_between(assignments, labels)
    assert within == pytest.approx(1.0)  # {a c} vs {a c}
    assert between == pytest.approx(1 / 3)  # {a b} vs {a c}, twice


def test_sampled_jaccard_agrees_with_the_exact_one(monkeypatch):
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 12)) < 0.25).astype(np.uint8)
    assignments = rng.integers(0, 5, 400)
    assignments[labels[:, 0] == 1] = 5  # one cluster shares a label
    exact = evaluation.jaccard_within_between(assignments, labels)
    monkeypatch.setattr(evaluation, "EXACT_PAIRS_LIMIT", 0)
    sampled = evaluation.jaccard_within_between(assignments, labels, num_pairs=40000)
    np.testing.assert_allclose(sampled, exact, atol=0.01)
    # The exact figure by brute force, over all pairs.
    values = {True: [], False: []}
    for i, j in itertools.combinations(range(400), 2):
        a, b = labels[i] > 0, labels[j] > 0
        union = (a | b).sum()
        values[assignments[i] == assignments[j]].append((a & b).sum() / max(union, 1))
    np.testing.assert_allclose(exact, (np.mean(values[True]), np.mean(values[False])))


def test_a_clustering_by_the_dominant_label_scores_one():
    rng = np.random.default_rng(1)
    labels = np.zeros((90, 6), np.uint8)
    theme = np.repeat([3, 4, 5], 30)
    labels[np.arange(90), theme] = 1
    labels[:, 0] = 1  # a label every image has
    labels[rng.random(90) < 0.5, 1] = 1
    result = evaluation.evaluate(theme, labels)
    assert result["nmi"] == pytest.approx(1.0)
    assert result["ari"] == pytest.approx(1.0)
    assert result["jaccard_within"] > result["jaccard_between"]
    shuffled = evaluation.evaluate(rng.permutation(theme), labels)
    assert shuffled["nmi"] < 0.1
    with pytest.raises(ValueError, match="3 assignments for 90 label rows"):
        evaluation.evaluate(theme[:3], labels)
