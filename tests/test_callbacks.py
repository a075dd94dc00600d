"""`kmlc.callbacks`: exact validation metrics in the logs."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

from kmlc.callbacks import ValidationMetrics
from kmlc.callbacks import collect_scores
from tests import model_fixtures as fx


def _dataset(x, y, batch):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_validation_metrics_are_exact(tmp_path):
    model = fx.tiny_model("gcn")
    x, y = fx.images(7, seed=3), fx.label_matrix(7, seed=4)
    y[:, 0] = [1, 0, 0, 1, 0, 0, 0]  # ensure positives and negatives
    callback = ValidationMetrics(_dataset(x, y, 3))  # a short last batch
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    logits = model.predict(x, verbose=0)
    present = y.sum(0) > 0
    expected = np.mean(
        [
            average_precision_score(y[:, d], logits[:, d])
            for d in np.flatnonzero(present)
        ]
    )
    assert logs["val_mAP"] == pytest.approx(expected, abs=1e-6)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)(y, logits)
    assert logs["val_loss"] == pytest.approx(float(bce), rel=1e-5)


def test_collect_scores_pads_the_last_batch_and_keeps_the_order():
    model = fx.tiny_model("baseline")
    x, y = fx.images(5), fx.label_matrix(5)
    logits, labels = collect_scores(model, _dataset(x, y, 2))
    np.testing.assert_allclose(
        logits, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(labels, y)


def test_collect_scores_names_an_empty_dataset():
    model = fx.tiny_model("baseline")
    empty = _dataset(fx.images(1), fx.label_matrix(1), 1).take(0)
    with pytest.raises(ValueError, match="yielded no batches"):
        collect_scores(model, empty)
