"""`kmlc.callbacks`: exact validation metrics in the logs; early stopping
that continues across a resume."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

from kmlc.evaluation import collect_scores
from kmlc.training.callbacks import ResumedEarlyStopping
from kmlc.training.callbacks import ValidationMetrics
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


# === ResumedEarlyStopping ===


class ScriptedValMap(keras.callbacks.Callback):
    """Puts `val_mAP = values[epoch]` into each epoch's logs."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_mAP"] = self.values[epoch]


def epochs_run(values, early_stopping, initial_epoch=0):
    """The epochs `fit` ran before `early_stopping` stopped it."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(
        np.zeros((4, 2)),
        np.zeros((4, 1)),
        epochs=len(values),
        initial_epoch=initial_epoch,
        callbacks=[ScriptedValMap(values), early_stopping],
        verbose=0,
    )
    return list(history.epoch)


@pytest.mark.parametrize(
    "values, keras_would_run_longer",
    [
        ([0.1, 0.3, 0.2, 0.25, 0.29, 0.29, 0.29, 0.29, 0.29, 0.29], True),
        ([0.1, 0.3, 0.2, 0.25, 0.35, 0.34, 0.33, 0.32, 0.31, 0.30], False),
        ([0.1, 0.3, 0.2, 0.31, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], True),
    ],
)
def test_resumed_early_stopping_stops_where_an_uninterrupted_run_stops(
    values, keras_would_run_longer
):
    kwargs = dict(monitor="val_mAP", mode="max", patience=3)
    # The independent answer: Keras' own EarlyStopping over one whole run.
    uninterrupted = epochs_run(values, keras.callbacks.EarlyStopping(**kwargs))
    # The same run killed after epoch 4 and resumed at epoch 5 (index 4).
    resumed = epochs_run(
        values, ResumedEarlyStopping(previous=values[:4], **kwargs), initial_epoch=4
    )
    assert resumed == [epoch for epoch in uninterrupted if epoch >= 4]
    # Keras' EarlyStopping, resumed, forgets the epochs before the kill.
    forgetful = epochs_run(values, keras.callbacks.EarlyStopping(**kwargs), 4)
    assert (len(forgetful) > len(resumed)) == keras_would_run_longer


def test_resumed_early_stopping_skips_epochs_without_a_value():
    kwargs = dict(monitor="val_mAP", mode="max", patience=2)
    values = [0.5, 0.1, 0.1, 0.1, 0.1]
    previous = [0.5, float("nan")]  # epoch 2's row was lost
    resumed = epochs_run(
        values, ResumedEarlyStopping(previous=previous, **kwargs), initial_epoch=2
    )
    assert resumed == [2, 3]
