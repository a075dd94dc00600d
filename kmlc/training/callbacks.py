"""Keras callbacks for multi-label training, and a run's list of them.

`ValidationMetrics` scores the validation set once per epoch, exactly
(every prediction kept, AP computed as in `kmlc.metrics`) and under any
`tf.distribute` strategy, and puts `val_loss` and `val_mAP` into the
epoch's logs for the callbacks after it (checkpointing, early stopping,
history and TensorBoard logs). `BestModelCheckpoint` and `HistoryLogger`
write `best.keras` and `history.csv` atomically. `TrainingCurves` redraws
the training curves as a PNG after every epoch. `ResumedEarlyStopping`
continues an interrupted run's early-stopping count. `make_callbacks` puts
a run's callbacks (these, `kmlc.training.progress`'s and the backup) in
the order their logs and files need.
"""

import dataclasses
import logging
import math
import os

import keras
import tensorflow as tf

from kmlc import io as kmlc_io
from kmlc import metrics as metrics_lib
from kmlc import plots
from kmlc.prediction import collect_scores
from kmlc.training import progress
from kmlc.training.backup import MAIN
from kmlc.training.backup import Backup
from kmlc.training.run_directory import append_history

logger = logging.getLogger("kmlc.train")


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever the monitored value improves, atomically.

    `keras.callbacks.ModelCheckpoint` writes the file in place, so a run
    killed while it writes (about 20 s for a ResNet-101) leaves a broken
    best model; this one writes beside the file and renames it
    (`kmlc.io.save_model`): the file is the old best model or the new one.

    Args:
        filepath: str. The `.keras` file.
        monitor: str. The logs key. Defaults to `"val_mAP"`.
        mode: `"max"` or `"min"`. Defaults to `"max"`.
        initial_value_threshold: float or None. The value to beat (a
            resumed run's best so far). Defaults to None: any value.
        saved_model: keras.Model or None. The model to save instead of the
            one being fitted: the whole model while its `heads_model()`
            trains on cached feature maps (they share the head weights).
    """

    def __init__(
        self,
        filepath,
        monitor="val_mAP",
        mode="max",
        initial_value_threshold=None,
        saved_model=None,
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'. Received: mode={mode!r}")
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.mode = mode
        self.best = initial_value_threshold
        self.saved_model = saved_model

    def _improves(self, value):
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or math.isnan(float(value)):
            return
        if self._improves(float(value)):
            kmlc_io.save_model(self.saved_model or self.model, self.filepath)
            logger.debug(
                "epoch %d: %s %.4f, saved %s",
                epoch + 1,
                self.monitor,
                value,
                self.filepath,
            )
            self.best = float(value)


class HistoryLogger(keras.callbacks.Callback):
    """Adds each epoch's logs to a history CSV, rewritten atomically.

    Unlike `keras.callbacks.CSVLogger`, a killed run never leaves a
    half-written row, and rows of a resumed run line up with the header
    whatever keys its logs have (`run_directory.append_history`).

    Args:
        path: str. The CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)

    def on_epoch_end(self, epoch, logs=None):
        append_history(self.path, epoch, logs or {})


class ValidationMetrics(keras.callbacks.Callback):
    """Exact validation loss and mAP in the logs, once per epoch.

    Put it before the callbacks that read `val_mAP` (ModelCheckpoint,
    EarlyStopping, HistoryLogger, TensorBoard): Keras hands every callback the
    same logs dict, in list order.

    Args:
        dataset: a finite `tf.data.Dataset` of `(images, labels)`.
        loss: a Keras loss on logits, for `val_loss` (the training loss's
            main term). Defaults to binary cross-entropy.
        prefix: str. Defaults to `"val_"`.
        predict_fn: images -> logits. Defaults to the model's
            `predict_on_batch` (which, under a multi-worker strategy, would
            gather every worker's batch: pass a local call there).
    """

    def __init__(self, dataset, loss=None, prefix="val_", predict_fn=None):
        super().__init__()
        self.dataset = dataset
        self.predict_fn = predict_fn
        self.loss = loss or keras.losses.BinaryCrossentropy(from_logits=True)
        self.prefix = prefix
        self.last_logits = None
        self.last_labels = None

    def on_epoch_end(self, epoch, logs=None):
        logits, labels = collect_scores(self.model, self.dataset, self.predict_fn)
        self.last_logits, self.last_labels = logits, labels
        loss = float(keras.ops.convert_to_numpy(self.loss(labels, logits)))
        present = labels.sum(axis=0) > 0
        score = (
            metrics_lib.mean_average_precision(labels, logits)
            if present.any()
            else float("nan")
        )
        if logs is not None:
            logs[f"{self.prefix}loss"] = loss
            logs[f"{self.prefix}mAP"] = score
        logger.debug(
            "epoch %d: %sloss %.4f, %smAP %.4f (%d images)",
            epoch + 1,
            self.prefix,
            loss,
            self.prefix,
            score,
            len(labels),
        )


class TrainingCurves(keras.callbacks.Callback):
    """Redraws the training curves PNG from a CSV log after each epoch.

    Reading the CSV (rather than this run's history) keeps the whole curve
    when a run resumes from a backup. Put it after the `HistoryLogger`.

    Args:
        csv_path: the history CSV.
        png_path: the PNG to write.
    """

    def __init__(self, csv_path, png_path):
        super().__init__()
        self.csv_path = csv_path
        self.png_path = png_path

    def on_epoch_end(self, epoch, logs=None):
        if not os.path.exists(self.csv_path):
            return
        try:
            plots.training_curves(plots.read_history(self.csv_path), self.png_path)
        except Exception as error:  # a plot must never stop training
            logger.warning("could not draw %s: %s", self.png_path, error)


class ResumedEarlyStopping(keras.callbacks.EarlyStopping):
    """`EarlyStopping` that continues the count of an interrupted run.

    Keras' `EarlyStopping` starts counting anew in every `fit`, so a run
    resumed from its backup would wait up to `patience` epochs more than
    asked. This one first replays the monitored values of the epochs
    already done, as `EarlyStopping` would have seen them.

    Args:
        previous: sequence of float. The monitored value of each epoch done
            (epoch order; NaN for an epoch without one).
        **kwargs: `keras.callbacks.EarlyStopping`'s arguments.
    """

    def __init__(self, previous=(), **kwargs):
        super().__init__(**kwargs)
        self.previous = [float(value) for value in previous]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.monitor_op is None:
            self._set_monitor_op()
        for epoch, value in enumerate(self.previous):
            if math.isnan(value) or epoch < self.start_from_epoch:
                continue
            self.wait += 1
            if self._is_improvement(value, self.best):
                self.best = value
                self.best_epoch = epoch
                if self.baseline is None or self._is_improvement(value, self.baseline):
                    self.wait = 0
        if self.previous:
            logger.info(
                "early stopping resumed: best %s %.4f at epoch %d, %d epoch(s) "
                "without improvement",
                self.monitor,
                float(self.best) if self.best is not None else float("nan"),
                self.best_epoch + 1,
                self.wait,
            )


@dataclasses.dataclass
class Stage:
    """One stage of a run's training, as its callbacks see it.

    Attributes:
        name: the backup's stage (`kmlc.training.backup.STAGES`).
        validation: what the fitted model is scored on each epoch.
        steps: int. Steps an epoch.
        epochs: int. The epoch count the stage ends at (the log's N).
        best_so_far: the best `val_mAP` before the stage (None: none).
        previous_val_map: the `val_mAP` of the stage's epochs already done
            (early stopping continues from them).
        end_epoch: int or None. Another stage follows from this epoch: the
            backup is kept (`kmlc.training.backup.Backup`).
    """

    name: str
    validation: object
    steps: int
    epochs: int
    best_so_far: object = None
    previous_val_map: tuple = ()
    end_epoch: object = None

    @classmethod
    def main(cls, run):
        """The run's first (or only) stage."""
        config = run.config
        return cls(
            name=MAIN,
            validation=run.fit_validation,
            steps=run.steps,
            epochs=config.epochs + config.fine_tune_epochs,
            best_so_far=run.best_so_far,
            previous_val_map=run.previous_val_map,
            end_epoch=config.epochs if config.fine_tune_epochs else None,
        )


def make_callbacks(
    run, predict_fn=None, epoch_log=False, previous_val_map=None, stage=None
):
    """The callbacks of a `Run`, in the order their logs and files need.

    `ValidationMetrics` comes first (the others read its `val_mAP`); the
    backup comes last, after the history row and the best checkpoint of
    the epoch are written (see `run_directory.plan_resume`). The best
    checkpoint's threshold is the best `val_mAP` so far; early stopping
    continues its count from `previous_val_map` (default: the stage's).
    `best.keras` holds `run.model` (the whole model while its heads train
    on cached features). Only the chief gets the callbacks that write
    files.

    Args:
        run: the `kmlc.training.builders.Run`.
        predict_fn: images -> logits for the validation scores (default:
            the model's `predict_on_batch`).
        epoch_log: bool. Log a line an epoch (when Keras prints none).
        previous_val_map: sequence of float, or None for the stage's.
        stage: a `Stage`, or None for `Stage.main(run)`.
    """
    config = run.config
    stage = stage or Stage.main(run)
    path = lambda name: os.path.join(run.output_dir, name)  # noqa: E731
    callbacks = [
        ValidationMetrics(stage.validation, loss=run.loss, predict_fn=predict_fn),
        progress.SkippedImagesReport(run.train_ds.skipped),
    ]
    if epoch_log:
        callbacks.append(progress.EpochLog(stage.epochs))
    if not tf.config.list_logical_devices("GPU"):
        callbacks.append(progress.EpochTimeEstimate(stage.steps, config))
    if config.early_stopping_patience:
        if previous_val_map is None:
            previous_val_map = stage.previous_val_map
        callbacks.append(
            ResumedEarlyStopping(
                previous=previous_val_map,
                monitor="val_mAP",
                mode="max",
                patience=config.early_stopping_patience,
            )
        )
    if not run.chief:
        return callbacks
    callbacks.append(HistoryLogger(path("history.csv")))
    callbacks.append(TrainingCurves(path("history.csv"), path("training_curves.png")))
    callbacks.append(
        BestModelCheckpoint(
            path("best.keras"),
            monitor="val_mAP",
            mode="max",
            initial_value_threshold=stage.best_so_far,
            saved_model=run.model,
        )
    )
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(path("tensorboard")))
    callbacks.append(Backup(path("backup"), stage.name, stage.end_epoch))
    return callbacks
