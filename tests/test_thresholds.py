"""Per-label thresholds: the choice against scikit-learn's precision-recall
curve, the floor, cross-fitting, and the model that carries them."""

import json
import zipfile

import keras
import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.metrics import precision_recall_curve

import kmlc
from kmlc.metrics import multilabel_report
from kmlc.thresholds import choose_thresholds
from kmlc.thresholds import cross_fitted_report
from tests import model_fixtures as fx


def best_f1_by_sklearn(y, s):
    """`(best F1, the thresholds reaching it)` of one label, by scikit-learn."""
    precision, recall, cuts = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best = f1.max()
    return best, cuts[np.isclose(f1, best, rtol=0, atol=1e-12)]


def random_problem(n=200, d=12, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, d)) < rng.uniform(0.03, 0.5, d)).astype(np.float32)
    # Scores that mean something: positives score higher, with noise.
    scores = 1 / (1 + np.exp(-(2.0 * labels - 1.0 + rng.normal(0, 1.2, (n, d)))))
    if decimals is not None:  # many ties
        scores = np.round(scores, decimals)
    return labels, scores


def test_a_hand_made_label():
    # Scores 0.9 0.8 0.7 0.6 0.2 with labels 1 0 1 1 0: cutting below 0.6
    # predicts four images (three right): F1 = 6 / 7, the best; the cut lies
    # halfway between 0.6 and the next lower score, 0.2.
    labels = np.array([[1], [0], [1], [1], [0]], np.float32)
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.2]])
    thresholds = choose_thresholds(labels, scores, prior_positives=0)
    assert thresholds.dtype == np.float32 and thresholds.shape == (1,)
    assert thresholds[0] == np.float32(0.4)
    # Every image positive is best: the lowest score itself, in float32 at
    # or below it (float32(0.1) is above 0.1).
    everything = choose_thresholds(
        np.ones((3, 1)), np.array([[0.1], [0.5], [0.3]]), prior_positives=0
    )
    assert everything[0] == np.nextafter(np.float32(0.1), np.float32(0))


@pytest.mark.parametrize("decimals", [None, 1])
def test_each_label_gets_scikit_learns_best_f1(decimals):
    labels, scores = random_problem(seed=1, decimals=decimals)
    thresholds = choose_thresholds(labels, scores, prior_positives=0)
    for d in range(labels.shape[1]):
        best, cuts = best_f1_by_sklearn(labels[:, d], scores[:, d])
        decided = scores[:, d] >= thresholds[d]
        assert f1_score(labels[:, d], decided) == pytest.approx(best, abs=1e-12)
        # Between the highest best cut and the next lower score.
        upper = cuts.max()
        below = scores[:, d][scores[:, d] < upper]
        assert thresholds[d] <= upper
        if below.size:
            assert thresholds[d] > below.max()
            assert thresholds[d] == np.float32((upper + below.max()) / 2)


def test_labels_with_few_positives_keep_the_default():
    labels, scores = random_problem(n=100, d=6, seed=2)
    labels[:, 0] = 0
    labels[:3, 1], labels[3:, 1] = 1, 0  # three positives
    labels[:5, 2], labels[5:, 2] = 1, 0  # five
    own = choose_thresholds(labels, scores, prior_positives=0)
    assert own[0] == np.float32(0.5)  # no positive: nothing to maximise
    floor = choose_thresholds(labels, scores, min_positives=5, prior_positives=0)
    enough = labels.sum(axis=0) >= 5
    assert list(enough[:3]) == [False, False, True]
    np.testing.assert_array_equal(floor[enough], own[enough])
    assert (floor[~enough] == np.float32(0.5)).all()
    assert own[1] != np.float32(0.5) and own[2] != np.float32(0.5)
    other = choose_thresholds(labels, scores, 5, default=0.3, prior_positives=0)
    assert other[0] == other[1] == np.float32(0.3)


def test_thresholds_shrink_towards_the_default_by_their_positives():
    labels, scores = random_problem(n=100, d=6, seed=2)
    positives = labels.sum(axis=0)
    own = choose_thresholds(labels, scores, prior_positives=0).astype(np.float64)
    for k in (1.0, 10.0):
        shrunk = choose_thresholds(labels, scores, prior_positives=k)
        expected = (positives * own + k * 0.5) / (positives + k)
        np.testing.assert_allclose(shrunk, expected, rtol=1e-6)
    # The default is 10 positives' worth.
    np.testing.assert_array_equal(
        choose_thresholds(labels, scores),
        choose_thresholds(labels, scores, prior_positives=10),
    )


def test_float32_keeps_close_scores_apart():
    # Scores 1e-7 apart: the cut, in float32, still separates them.
    labels = np.array([[1], [1], [0]], np.float32)
    scores = np.array([[0.9], [0.7000001], [0.7]])
    threshold = choose_thresholds(labels, scores, prior_positives=0)[0]
    np.testing.assert_array_equal(scores[:, 0] >= threshold, [True, True, False])


def test_the_report_takes_per_label_thresholds():
    labels, scores = random_problem(n=50, d=4, seed=3)
    thresholds = np.array([0.2, 0.4, 0.6, 0.8])
    report = multilabel_report(labels, scores, threshold=thresholds)
    decided = scores >= thresholds
    for d in range(4):
        assert report["F1"][d] == pytest.approx(f1_score(labels[:, d], decided[:, d]))
    pooled = f1_score(labels.ravel(), decided.ravel())
    assert report["OF1"] == pytest.approx(pooled)
    scalar = multilabel_report(labels, scores, threshold=0.4)
    same = multilabel_report(labels, scores, threshold=np.full(4, 0.4))
    assert scalar["CF1"] == same["CF1"] and scalar["OF1"] == same["OF1"]


def test_cross_fitting_decides_each_half_with_the_other_halfs_thresholds():
    labels, scores = random_problem(n=120, d=8, seed=4)
    report = cross_fitted_report(labels, scores, min_positives=3, seed=7)
    assert report["CF1"] != cross_fitted_report(labels, scores, 3, seed=8)["CF1"]
    # The documented split, done here.
    first = np.zeros(120, bool)
    first[np.random.default_rng(7).permutation(120)[:60]] = True
    decided = np.empty_like(labels, dtype=bool)
    for half in (first, ~first):
        chosen = choose_thresholds(labels[~half], scores[~half], min_positives=3)
        decided[half] = scores[half] >= chosen
    assert report["OF1"] == pytest.approx(f1_score(labels.ravel(), decided.ravel()))
    for d in range(8):
        assert report["F1"][d] == pytest.approx(f1_score(labels[:, d], decided[:, d]))


def test_cross_fitting_removes_the_optimism_on_noise():
    # Scores that know nothing: thresholds tuned on the same images look
    # better than predicting every label everywhere (the best a score that
    # knows nothing can do here); cross-fitted ones do not.
    rng = np.random.default_rng(0)
    labels = (rng.random((100, 40)) < 0.1).astype(np.float32)
    scores = rng.random((100, 40))
    tuned = choose_thresholds(labels, scores, prior_positives=0)
    in_sample = multilabel_report(labels, scores, threshold=tuned)["CF1"]
    crossed = cross_fitted_report(labels, scores, prior_positives=0)["CF1"]
    everything = multilabel_report(labels, scores, threshold=0.0)["CF1"]
    assert in_sample > everything + 0.1, (in_sample, everything)
    assert crossed < everything + 0.01, (crossed, everything)


def test_bad_input():
    labels, scores = random_problem(n=10, d=3)
    with pytest.raises(ValueError, match="min_positives must be at least 1.*=0"):
        choose_thresholds(labels, scores, min_positives=0)
    with pytest.raises(ValueError, match=r"not the logits.*from -2\.0 to"):
        choose_thresholds(labels, np.where(scores > 0.5, scores, -2.0))
    with pytest.raises(ValueError, match=r"Received: \(10, 3\) and \(10, 2\)"):
        choose_thresholds(labels, scores[:, :2])
    with pytest.raises(ValueError, match=r"one per label \[3\].*shape \(2,\)"):
        multilabel_report(labels, scores, threshold=[0.5, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        multilabel_report(labels, scores, threshold=[0.5, np.nan, 0.5])
    with pytest.raises(ValueError, match="prior_positives must be at least 0.*=-1"):
        choose_thresholds(labels, scores, prior_positives=-1)
    with pytest.raises(ValueError, match="at least 2 images. Received: 1"):
        cross_fitted_report(labels[:1], scores[:1])


# The model carries them.


def test_the_model_keeps_its_thresholds_through_keras_files(tmp_path):
    model = fx.tiny_model("baseline", label_names=fx.LABEL_NAMES)
    assert not model.has_thresholds
    np.testing.assert_array_equal(model.thresholds, np.full(6, 0.5, np.float32))
    values = [0.1, 0.25, 0.3333, 0.5, 0.75, 1.0]
    model.set_thresholds(values)
    assert model.has_thresholds and model.thresholds.dtype == np.float32
    np.testing.assert_array_equal(model.thresholds, np.float32(values))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = kmlc.load_model(path)
    np.testing.assert_array_equal(loaded.thresholds, np.float32(values))
    # A copy, not the model's own array.
    loaded.thresholds[0] = 0.9
    assert loaded.thresholds[0] == np.float32(0.1)
    model.set_thresholds(None)
    assert not model.has_thresholds and model.get_config()["thresholds"] is None


def test_a_model_saved_before_thresholds_loads(tmp_path):
    """A `.keras` file whose config has no `thresholds` key (kmlc before it)."""
    model = fx.tiny_model("baseline")
    path = tmp_path / "new.keras"
    model.save(path)
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                del config["config"]["thresholds"]
                data = json.dumps(config).encode()
            target.writestr(item, data)
    loaded = kmlc.load_model(old)
    assert not loaded.has_thresholds
    np.testing.assert_array_equal(loaded.thresholds, np.full(6, 0.5, np.float32))
    x = fx.images(2)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_bad_thresholds_name_what_was_received():
    model = fx.tiny_model("baseline", label_names=fx.LABEL_NAMES)
    with pytest.raises(ValueError, match=r"6 values, one per label. .*shape \(5,\)"):
        model.set_thresholds([0.5] * 5)
    with pytest.raises(ValueError, match=r"in \[0, 1\].*Received: 1.5 for label 'sun'"):
        model.set_thresholds([0.5, 0.5, 1.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="Received: nan for label 'sky'"):
        model.set_thresholds([np.nan] + [0.5] * 5)
    with pytest.raises(ValueError, match=r"Received: -0.1 for label 'sand'"):
        kmlc.MultiLabelClassifier.from_config(
            {**model.get_config(), "thresholds": [0.5] * 5 + [-0.1]}
        )
    assert not model.has_thresholds  # unchanged by the failed calls
    keras.backend.clear_session()
