"""`kmlc.training.callbacks` and `progress`: exact validation metrics in the
logs; early stopping that continues across a resume; the best checkpoint
and the history written whole; what the user sees each epoch."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import average_precision_score

from kmlc.config import ModelConfig
from kmlc.config import TrainConfig
from kmlc.data import SkippedImages
from kmlc.training.callbacks import BestModelCheckpoint
from kmlc.training.callbacks import HistoryLogger
from kmlc.training.callbacks import ResumedEarlyStopping
from kmlc.training.callbacks import ValidationMetrics
from kmlc.training.progress import EpochLog
from kmlc.training.progress import EpochTimeEstimate
from kmlc.training.progress import SkippedImagesReport
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


# Files written whole or not at all.


def test_the_best_checkpoint_is_replaced_only_whole(tmp_path, monkeypatch):
    """A save killed midway (a partial file written, then the process
    stopped) leaves the earlier best.keras as it was; only a better score
    saves."""
    path = tmp_path / "best.keras"
    model = fx.tiny_model("gcn")
    checkpoint = BestModelCheckpoint(path, initial_value_threshold=0.5)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_mAP": 0.4})  # not better: no file
    assert not path.exists()
    checkpoint.on_epoch_end(1, {"val_mAP": 0.6})
    old = path.read_bytes()
    assert keras.saving.load_model(path).count_params() == model.count_params()

    def dies_midway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04" + b"\0" * 4096)  # 4 KB of a zip archive
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.on_epoch_end(2, {"val_mAP": 0.7})
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]
    assert checkpoint.best == pytest.approx(0.6)
    monkeypatch.undo()
    checkpoint.on_epoch_end(3, {"val_mAP": float("nan")})  # no score: kept
    assert path.read_bytes() == old


def test_history_rows_line_up_whatever_the_logs(tmp_path):
    """A resumed run whose logs lack a column (or add one) still writes rows
    under the right header."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,skipped_images,val_loss,val_mAP\n0,0.9,0,0.8,0.1\n")
    logger = HistoryLogger(path)
    logger.on_epoch_end(1, {"val_mAP": 0.2, "loss": 0.7, "val_loss": 0.6})
    logger.on_epoch_end(2, {"loss": 0.5, "val_mAP": 0.3, "lr": 0.01})
    rows = path.read_text().splitlines()
    assert rows == [
        "epoch,loss,skipped_images,val_loss,val_mAP,lr",
        "0,0.9,0,0.8,0.1,",
        "1,0.7,,0.6,0.2,",
        "2,0.5,,,0.3,0.01",
    ]


# What the user sees.


def test_one_log_line_an_epoch(caplog):
    log = EpochLog(epochs=4)
    with caplog.at_level("INFO", logger="kmlc.train"):
        log.on_epoch_end(2, {"loss": 0.51234, "val_loss": 0.4, "val_mAP": 0.25})
    assert caplog.messages == [
        "epoch 3/4: loss 0.5123, val_loss 0.4000, val_mAP 0.2500"
    ]


def test_skipped_images_are_named_only_when_there_are_some(caplog):
    skipped = SkippedImages()
    report = SkippedImagesReport(skipped)
    logs = {"loss": 0.5}
    with caplog.at_level("INFO", logger="kmlc.train"):
        report.on_epoch_end(0, logs)
        assert caplog.messages == [] and logs == {"loss": 0.5}
        caplog.clear()
        skipped.record("broken.jpg", "not an image")
        report.on_epoch_end(1, logs)
    assert logs == {"loss": 0.5}  # not a metric
    assert caplog.messages[-1] == (
        "1 unreadable image(s) skipped so far; new this epoch: broken.jpg"
    )


class FakeClock:
    def __init__(self, step_times):
        self.now = 0.0
        self.step_times = list(step_times)

    def __call__(self):
        return self.now

    def step(self, estimate):
        estimate.on_train_batch_begin(0)
        self.now += self.step_times.pop(0)
        estimate.on_train_batch_end(0)


@pytest.mark.parametrize(
    "step_times, level, hint",
    [
        ([600.0, 40.0, 44.0, 42.0], "WARNING", True),  # 84 min an epoch
        ([60.0, 4.0, 5.0, 6.0], "INFO", False),  # 9 min an epoch
        ([6.0, 0.25, 0.35, 0.1], "DEBUG", False),  # 36 s an epoch
    ],
)
def test_the_epoch_time_on_a_cpu(caplog, step_times, level, hint):
    config = TrainConfig(
        model=ModelConfig(backbone="resnet101", image_size=448), epochs=40
    )
    clock = FakeClock(step_times)
    estimate = EpochTimeEstimate(120, config, clock=clock)
    with caplog.at_level("DEBUG", logger="kmlc.train"):
        estimate.on_train_begin()
        for _ in range(4):
            clock.step(estimate)
    # The first step (tracing) is left out: the median of the next two.
    step_s = float(np.median(step_times[1:3]))
    assert estimate.estimate_s == pytest.approx(120 * step_s)
    record = caplog.records[-1]
    assert record.levelname == level
    assert "an epoch of 120 steps takes about" in record.getMessage()
    assert f"({step_s:.1f} s a step, measured)" in record.getMessage()
    assert ("training/configs/corel5k-cpu.yaml" in record.getMessage()) == hint
    if hint:
        assert "resnet101 at 448 px" in record.getMessage()
        assert "56.0 h for 40 epochs" in record.getMessage()
    assert len(caplog.records) == 2  # the start, one estimate
