"""Tests for `kmlc.export.lite_runtime`: Predictor, evaluate, latency_ms."""

import itertools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kmlc.export import lite
from kmlc.export import lite_runtime
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx

D = fx.NUM_LABELS


@pytest.fixture(scope="module")
def float32_path(saved_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("lite") / "float32.tflite"
    return lite.convert(saved_model_dir, path)


def keras_logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def test_predict_is_the_sigmoid_of_keras_logits(float32_path, model, images):
    predictor = Predictor(float32_path)
    expected = keras_logits(model, images).astype("float64")
    np.testing.assert_allclose(
        predictor.predict(images), 1 / (1 + np.exp(-expected)), atol=1e-5
    )
    # Image by image at the model's batch of 1: the order is kept.
    np.testing.assert_allclose(
        predictor.logits(images[::-1]), predictor.logits(images)[::-1], atol=1e-6
    )
    assert predictor.logits(images[:0]).shape == (0, D)


# === evaluate ===


def ranked_labels(logits, ranks):
    """Labels whose one positive per label `d` is Keras' `ranks[d]`-th image.

    The independent answer: a label whose only positive is ranked r-th has
    average precision 1 / r, so the mAP is the mean of `1 / ranks`.
    """
    order = np.argsort(-logits, axis=0)
    labels = np.zeros_like(logits)
    for label, rank in enumerate(ranks):
        labels[order[rank - 1, label], label] = 1.0
    return labels


def test_evaluate_reports_the_map_of_a_known_ranking(float32_path, model, monkeypatch):
    images = fx.images(D, seed=3)
    logits = keras_logits(model, images)
    # Float32 TFLite ranks the images as Keras does: no two logits of a
    # label closer than its error (1e-5 of the largest).
    gaps = np.diff(np.sort(logits, axis=0), axis=0)
    assert gaps.min() > 1e-3 * np.abs(logits).max()
    ranks = np.arange(1, D + 1)  # label d's positive is ranked d + 1
    labels = ranked_labels(logits, ranks)
    timed = []

    def fake_latency(fn, image):
        timed.append((fn, image))
        return 12.5

    monkeypatch.setattr(lite_runtime, "latency_ms", fake_latency)
    dataset = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    result = lite_runtime.evaluate(float32_path, dataset, keras_model=model)
    expected = np.mean(1.0 / ranks)  # 0.408
    assert result["mAP"] == pytest.approx(expected, abs=1e-9)
    assert result["keras_mAP"] == pytest.approx(expected, abs=1e-9)
    assert result["mAP_drop_points"] == pytest.approx(0.0, abs=1e-7)
    assert result["num_images"] == D
    assert result["file_size_bytes"] == os.path.getsize(float32_path)
    assert result["delegate"] == "xnnpack"
    # The latency is timed on the first image, through the predictor.
    assert result["latency_ms_batch1"] == 12.5
    ((fn, image),) = timed
    np.testing.assert_array_equal(image, images[:1])
    np.testing.assert_allclose(fn(image), keras_logits(model, image), atol=1e-4)
    assert "keras_mAP" not in lite_runtime.evaluate(float32_path, dataset)


def test_evaluate_empty_dataset(float32_path):
    with pytest.raises(ValueError, match="dataset is empty.*Received: 0 images"):
        lite_runtime.evaluate(float32_path, [])


def test_latency_ms_is_the_median_of_the_timed_runs():
    # A fake clock: each call of `fn` takes the next duration (seconds).
    durations = iter([9.0, 9.0, 0.004, 0.001, 0.1, 0.003, 0.002])
    now = [0.0]
    calls = []

    def fn(image):
        calls.append(image)
        now[0] += next(durations)

    result = lite_runtime.latency_ms(
        fn, "image", runs=5, warmup=2, clock=lambda: now[0]
    )
    # The two warm-up calls (9 s) are not timed; median of 4, 1, 100, 3, 2 ms.
    assert result == pytest.approx(3.0)
    assert calls == ["image"] * 7


def test_latency_ms_times_real_work():
    def sleep_2ms(image):
        end = lite_runtime.time.perf_counter() + 0.002
        while lite_runtime.time.perf_counter() < end:
            pass

    # Milliseconds of the default clock (seconds would give 0.002).
    assert 2.0 <= lite_runtime.latency_ms(sleep_2ms, None, runs=3, warmup=0) < 1000


# === Errors ===


def test_predictor_errors(float32_path, tmp_path):
    predictor = Predictor(float32_path)
    with pytest.raises(
        ValueError, match=r"\[B, 32, 32, 3\].*Received: shape \(2, 8, 8, 3\)"
    ):
        predictor.predict(np.zeros((2, 8, 8, 3), "float32"))
    with pytest.raises(FileNotFoundError, match="No such TFLite model"):
        Predictor(tmp_path / "missing.tflite")
    # A .tflite written without kmlc's metadata.
    plain = tf.lite.TFLiteConverter.from_concrete_functions(
        [
            tf.function(lambda x: x * 2.0).get_concrete_function(
                tf.TensorSpec([1, 2], tf.float32)
            )
        ]
    ).convert()
    (tmp_path / "plain.tflite").write_bytes(plain)
    with pytest.raises(ValueError, match="no kmlc metadata"):
        Predictor(tmp_path / "plain.tflite")


def test_predictor_falls_back_when_xnnpack_fails(float32_path, images, monkeypatch):
    predictor = Predictor(float32_path)
    expected = predictor.logits(images[:1])
    real_runner = predictor._runner
    failures = itertools.count()

    def failing_runner(**inputs):
        next(failures)
        raise RuntimeError("failed to create XNNPACK runtime")

    predictor._runner = failing_runner
    np.testing.assert_allclose(predictor.logits(images[:1]), expected, atol=1e-6)
    assert predictor.delegate == "none"
    assert next(failures) == 1  # failed once, then the builtin kernels ran
    assert predictor._runner is not real_runner
