"""Tests for kmlc/metrics.py against scikit-learn and hand-worked examples."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score
from sklearn.metrics import precision_score
from sklearn.metrics import recall_score

from kmlc.metrics import MeanAveragePrecision
from kmlc.metrics import average_precision
from kmlc.metrics import mean_average_precision
from kmlc.metrics import multilabel_report

BATCHES = (7, 32, 1, 20)  # 60 rows in batches of different sizes


def _data(seed=0, rows=60, cols=8, ties=False, empty_labels=()):
    rng = np.random.default_rng(seed)
    y = (rng.random((rows, cols)) < 0.3).astype(np.float32)
    y[0] = 1  # every label has a positive unless emptied below
    y[:, list(empty_labels)] = 0
    scores = rng.random((rows, cols)).astype(np.float32)
    if ties:
        scores = np.round(scores, 1)
    return y, scores


def _sklearn_ap(y, scores):
    """sklearn's AP per label, NaN where a label has no positive."""
    return np.array(
        [
            average_precision_score(y[:, d], scores[:, d]) if y[:, d].any() else np.nan
            for d in range(y.shape[1])
        ]
    )


def _sklearn_map(y, scores):
    return float(np.nanmean(_sklearn_ap(y, scores)))


def _feed(metric, y, scores, sizes=BATCHES):
    start = 0
    for size in sizes:
        metric.update_state(y[start : start + size], scores[start : start + size])
        start += size
    assert start == len(y)
    return float(metric.result())


# Average precision.


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"ties": True},
        {"empty_labels": (2, 5)},
        {"ties": True, "empty_labels": (0,)},
    ],
    ids=["random", "ties", "labels-without-positives", "ties-and-empty"],
)
def test_average_precision_equals_sklearn(kwargs):
    y, scores = _data(**kwargs)
    if kwargs.get("ties"):
        assert len(np.unique(scores)) <= 11  # many ties indeed
    expected = _sklearn_ap(y, scores)
    ap = average_precision(y, scores)
    np.testing.assert_array_equal(np.isnan(ap), np.isnan(expected))
    for label in kwargs.get("empty_labels", ()):
        assert np.isnan(ap[label])
    np.testing.assert_allclose(ap, expected, atol=1e-6)
    assert mean_average_precision(y, scores) == pytest.approx(
        np.mean(expected[~np.isnan(expected)]), abs=1e-6
    )


def test_average_precision_by_hand():
    # Ranked: pos, neg, pos -> (1/1 + 2/3) / 2. With the second and third
    # tied, both get the precision at the end of the tie, 2/3.
    y = [[1], [0], [1]]
    assert average_precision(y, [[0.9], [0.8], [0.7]])[0] == pytest.approx(5 / 6)
    assert average_precision(y, [[0.9], [0.8], [0.8]])[0] == pytest.approx(5 / 6)
    assert average_precision(y, [[0.9], [0.9], [0.8]])[0] == pytest.approx(
        (1 / 2 + 2 / 3) / 2
    )


def test_mean_average_precision_without_any_positive():
    with pytest.raises(ValueError, match=r"No label has a positive example"):
        mean_average_precision(np.zeros((3, 2)), np.ones((3, 2)))


# The report.


def test_multilabel_report_equals_sklearn():
    y, probs = _data(seed=3, rows=80, cols=10, empty_labels=(4,))
    probs[:, 7] = 0.1  # label 7 is never predicted
    report = multilabel_report(y, probs, threshold=0.5)
    y_pred = (probs >= 0.5).astype(int)
    present = np.flatnonzero(y.sum(axis=0) > 0)
    assert report["num_labels_with_positives"] == len(present) == 9
    macro = {"average": "macro", "labels": present, "zero_division": 0}
    cp = precision_score(y, y_pred, **macro)
    cr = recall_score(y, y_pred, **macro)
    assert report["CP"] == pytest.approx(cp, abs=1e-12)
    assert report["CR"] == pytest.approx(cr, abs=1e-12)
    assert report["CF1"] == pytest.approx(2 * cp * cr / (cp + cr), abs=1e-12)
    micro = {"average": "micro", "zero_division": 0}
    assert report["OP"] == pytest.approx(precision_score(y, y_pred, **micro))
    assert report["OR"] == pytest.approx(recall_score(y, y_pred, **micro))
    assert report["OF1"] == pytest.approx(f1_score(y, y_pred, **micro))
    per_label = {"average": None, "zero_division": 0}
    np.testing.assert_allclose(
        report["precision"], precision_score(y, y_pred, **per_label), atol=1e-12
    )
    np.testing.assert_allclose(
        report["recall"], recall_score(y, y_pred, **per_label), atol=1e-12
    )
    np.testing.assert_allclose(
        report["F1"], f1_score(y, y_pred, **per_label), atol=1e-12
    )
    assert report["precision"][7] == 0.0
    np.testing.assert_array_equal(report["support"], y.sum(axis=0))
    np.testing.assert_allclose(report["AP"], _sklearn_ap(y, probs), atol=1e-6)
    assert report["mAP"] == pytest.approx(_sklearn_map(y, probs), abs=1e-6)
    true_pos = (y_pred * y).sum(axis=0)
    assert report["N+"] == int((true_pos > 0).sum())


# Worked by hand: 3 images, 4 labels; label d has no positive.
HAND_Y = [[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]]
HAND_SCORES = [[0.9, 0.2, 0.4, 0.6], [0.3, 0.8, 0.1, 0.7], [0.6, 0.55, 0.5, 0.1]]


def test_multilabel_report_by_hand():
    # Predicted at >= 0.5: {a, d}, {b, d}, {a, b, c}. True positives: a 2,
    # b 2, c 0 (c is predicted on image 3, true on image 1), d 0.
    report = multilabel_report(HAND_Y, HAND_SCORES)
    assert report["N+"] == 2
    np.testing.assert_allclose(report["precision"], [1, 1, 0, 0])
    np.testing.assert_allclose(report["recall"], [1, 1, 0, 0])
    assert report["CP"] == pytest.approx(2 / 3)  # over a, b, c
    assert report["CR"] == pytest.approx(2 / 3)
    assert report["OP"] == pytest.approx(4 / 7)
    assert report["OR"] == pytest.approx(4 / 5)
    assert report["OF1"] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(report["support"], [2, 2, 1, 0])


def test_multilabel_report_top_k_by_hand():
    # Top 1: a, b, a -> all three right; recall a 1, b 1/2, c 0.
    report = multilabel_report(HAND_Y, HAND_SCORES, threshold=0.99, top_k=1)
    np.testing.assert_allclose(report["precision"], [1, 1, 0, 0])
    np.testing.assert_allclose(report["recall"], [1, 0.5, 0, 0])
    assert report["CP"] == pytest.approx(2 / 3)
    assert report["CR"] == pytest.approx(1 / 2)
    assert report["OP"] == pytest.approx(1.0)
    assert report["OR"] == pytest.approx(3 / 5)
    assert report["N+"] == 2
    # Top 2: {a, d}, {b, d}, {a, b}.
    report = multilabel_report(HAND_Y, HAND_SCORES, top_k=2)
    assert report["OP"] == pytest.approx(4 / 6)
    assert report["OR"] == pytest.approx(4 / 5)
    np.testing.assert_allclose(report["precision"], [1, 1, 0, 0])
    # Ties go to the lower label index.
    report = multilabel_report([[1, 0, 0]], [[0.5, 0.5, 0.5]], top_k=1)
    np.testing.assert_allclose(report["precision"], [1, 0, 0])
    assert report["OP"] == 1.0 and report["N+"] == 1


@pytest.mark.parametrize(
    "y_true, y_score, kwargs, message",
    [
        (np.zeros((3, 4)), np.zeros((3, 5)), {}, r"\[num_images, num_labels\]"),
        (np.zeros(4), np.zeros(4), {}, r"Received: \(4,\) and \(4,\)"),
        (np.zeros((0, 4)), np.zeros((0, 4)), {}, r"empty. Received: shape=\(0, 4\)"),
        (np.zeros((3, 0)), np.zeros((3, 0)), {}, r"empty. Received: shape=\(3, 0\)"),
        (
            [[0, 1, 0, 0], [0, 0, 0, 2]],
            np.zeros((2, 4)),
            {},
            r"only 0 and 1. Received: 2 at row 1, column 3",
        ),
        (
            np.zeros((2, 4)),
            [[0, 1, 0, 0], [0, 0, np.nan, 0]],
            {},
            r"finite. Received: nan at row 1, column 2",
        ),
        (np.zeros((2, 4)), np.zeros((2, 4)), {"top_k": 0}, r"\[1, 4\]. .*top_k=0"),
        (np.zeros((2, 4)), np.zeros((2, 4)), {"top_k": 5}, r"\[1, 4\]. .*top_k=5"),
    ],
)
def test_multilabel_report_bad_input(y_true, y_score, kwargs, message):
    with pytest.raises(ValueError, match=message):
        multilabel_report(y_true, y_score, **kwargs)
    if not kwargs:
        with pytest.raises(ValueError, match=message):
            average_precision(y_true, y_score)


# The Keras metric.


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"ties": True, "empty_labels": (2, 5)}],
    ids=["random", "ties-and-empty"],
)
def test_keras_metric_eager_equals_sklearn(kwargs):
    y, scores = _data(**kwargs)
    metric = MeanAveragePrecision(8, max_samples=100)
    assert _feed(metric, y, scores) == pytest.approx(_sklearn_map(y, scores), abs=1e-5)
    assert int(metric.count.value) == 60
    assert int(metric.num_dropped.value) == 0


@pytest.mark.parametrize("shape", ["[B]", "[B, 1]"])
def test_keras_metric_sample_weight_equals_sklearn(shape):
    y, scores = _data(ties=True, empty_labels=(5,))
    weights = np.random.default_rng(3).uniform(0, 2, len(y)).astype("float32")
    weights[[4, 9]] = 0.0  # images that do not count at all
    y[1, :] = 1  # positives with a non-zero weight in every label but 5
    y[:, 5] = 0
    metric = MeanAveragePrecision(8, max_samples=100)
    start = 0
    for size in BATCHES:
        w = weights[start : start + size]
        metric.update_state(
            y[start : start + size],
            scores[start : start + size],
            sample_weight=w if shape == "[B]" else w[:, None],
        )
        start += size
    expected = np.mean(
        [
            average_precision_score(y[:, d], scores[:, d], sample_weight=weights)
            for d in range(8)
            if d != 5
        ]
    )
    assert float(metric.result()) == pytest.approx(expected, abs=1e-5)
    # Unweighted, the result differs: the weights did change something.
    assert abs(_sklearn_map(y, scores) - expected) > 1e-3


def test_keras_metric_per_label_weights_are_refused():
    metric = MeanAveragePrecision(8, max_samples=10)
    with pytest.raises(ValueError, match=r"one sample weight per image.*\(2, 8\)"):
        metric.update_state(np.zeros((2, 8)), np.zeros((2, 8)), np.ones((2, 8)))


def test_keras_metric_reset_state():
    y, scores = _data(ties=True)
    metric = MeanAveragePrecision(8, max_samples=100)
    _feed(metric, y, scores)
    metric.reset_state()
    assert int(metric.count.value) == 0
    assert float(metric.result()) == 0.0
    y2, scores2 = _data(seed=7)
    assert _feed(metric, y2, scores2) == pytest.approx(
        _sklearn_map(y2, scores2), abs=1e-5
    )


def test_keras_metric_keeps_the_first_max_samples_rows():
    y, scores = _data(ties=True, empty_labels=(3,))
    metric = MeanAveragePrecision(8, max_samples=45)
    # The batch of 32 crosses the end of the buffer: 6 of its rows fit.
    result = _feed(metric, y, scores)
    assert int(metric.count.value) == 45
    assert int(metric.num_dropped.value) == 15
    assert result == pytest.approx(_sklearn_map(y[:45], scores[:45]), abs=1e-5)


def test_keras_metric_in_model_evaluate():
    y, scores = _data(ties=True, empty_labels=(2,))
    model = keras.Sequential(
        [
            keras.Input((8,)),
            # The identity: the model's outputs are the scores.
            keras.layers.Dense(8, kernel_initializer="identity", use_bias=False),
        ]
    )
    model.compile(
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[MeanAveragePrecision(8, max_samples=100)],
    )
    expected = _sklearn_map(y, scores)
    for _ in range(2):  # evaluate resets the metric each time
        result = model.evaluate(scores, y, batch_size=16, verbose=0, return_dict=True)
        assert result["mAP"] == pytest.approx(expected, abs=1e-5)
    # Keras passes sample weights to `weighted_metrics` only.
    model.compile(
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        weighted_metrics=[MeanAveragePrecision(8, max_samples=100)],
    )
    weights = np.linspace(0.5, 2.0, len(y)).astype("float32")
    result = model.evaluate(
        scores, y, sample_weight=weights, batch_size=16, verbose=0, return_dict=True
    )
    weighted = np.mean(
        [
            average_precision_score(y[:, d], scores[:, d], sample_weight=weights)
            for d in range(8)
            if y[:, d].any()
        ]
    )
    assert result["mAP"] == pytest.approx(weighted, abs=1e-5)


def test_keras_metric_config_round_trip():
    metric = MeanAveragePrecision(12, max_samples=300, name="val_map")
    config = metric.get_config()
    assert config["num_labels"] == 12 and config["max_samples"] == 300
    clone = MeanAveragePrecision.from_config(config)
    assert (clone.num_labels, clone.max_samples, clone.name) == (12, 300, "val_map")
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(revived, MeanAveragePrecision)
    assert revived.get_config() == config


def test_keras_metric_wrong_label_count():
    metric = MeanAveragePrecision(8, max_samples=10)
    with pytest.raises(ValueError, match=r"built for 8 labels.*shape \(2, 5\)"):
        metric.update_state(np.zeros((2, 5)), np.zeros((2, 5)))


_JAX_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import keras
    import numpy as np

    from kmlc.metrics import MeanAveragePrecision

    assert keras.backend.backend() == "jax", keras.backend.backend()
    data = np.load(sys.argv[1])
    y, scores = data["y"], data["scores"]
    sizes = [int(s) for s in data["sizes"]]


    def feed(metric):
        start = 0
        for size in sizes:
            end = start + size
            metric.update_state(y[start:end], scores[start:end])
            start = end
        return float(metric.result())


    out = {}
    metric = MeanAveragePrecision(y.shape[1], max_samples=100)
    out["eager"] = feed(metric)
    metric.reset_state()
    out["after_reset"] = float(metric.result())
    small = MeanAveragePrecision(y.shape[1], max_samples=45)
    out["overflow"] = feed(small)
    out["dropped"] = int(small.num_dropped.value)
    model = keras.Sequential(
        [
            keras.Input((y.shape[1],)),
            keras.layers.Dense(
                y.shape[1], kernel_initializer="identity", use_bias=False
            ),
        ]
    )
    model.compile(
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[MeanAveragePrecision(y.shape[1], max_samples=100)],
    )
    result = model.evaluate(scores, y, batch_size=16, verbose=0, return_dict=True)
    out["evaluate"] = float(result["mAP"])
    print("RESULT " + json.dumps(out))
    """
)


def test_keras_metric_under_jax(tmp_path):
    pytest.importorskip("jax")
    y, scores = _data(ties=True, empty_labels=(2, 5))
    np.savez(tmp_path / "data.npz", y=y, scores=scores, sizes=np.array(BATCHES))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
    )
    process = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, "data.npz"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    line = [s for s in process.stdout.splitlines() if s.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT ") :])
    expected = _sklearn_map(y, scores)
    assert out["eager"] == pytest.approx(expected, abs=1e-5)
    assert out["evaluate"] == pytest.approx(expected, abs=1e-5)
    assert out["after_reset"] == 0.0
    assert out["overflow"] == pytest.approx(_sklearn_map(y[:45], scores[:45]), abs=1e-5)
    assert out["dropped"] == 15
