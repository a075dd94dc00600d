"""Keras callbacks for multi-label training, and a run's list of them.

`ValidationMetrics` scores the validation set once per epoch, exactly
(every prediction kept, AP computed as in `kmlc.metrics`) and under any
`tf.distribute` strategy, and puts `val_loss` and `val_mAP` into the
epoch's logs for the callbacks after it (checkpointing, early stopping,
CSV and TensorBoard logs). `TrainingCurves` redraws the training curves as a
PNG after every epoch. `SkippedImagesReport` adds the count of skipped
images to the logs. `ResumedEarlyStopping` continues an interrupted run's
early-stopping count. `make_callbacks` puts a run's callbacks in the order
their logs and files need.
"""

import logging
import math
import os

import keras

from kmlc import metrics as metrics_lib
from kmlc import plots
from kmlc.evaluation import collect_scores
from kmlc.training.backup import Backup

logger = logging.getLogger("kmlc.train")


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint`, optionally of another model.

    Args:
        filepath: as for `ModelCheckpoint`.
        saved_model: keras.Model or None. The model to save instead of the
            one being fitted: the whole model while its `heads_model()`
            trains on cached feature maps (they share the head weights).
        **kwargs: as for `ModelCheckpoint`.
    """

    def __init__(self, filepath, saved_model=None, **kwargs):
        super().__init__(filepath, **kwargs)
        self.saved_model = saved_model

    def set_model(self, model):
        super().set_model(self.saved_model or model)


class ValidationMetrics(keras.callbacks.Callback):
    """Exact validation loss and mAP in the logs, once per epoch.

    Put it before the callbacks that read `val_mAP` (ModelCheckpoint,
    EarlyStopping, CSVLogger, TensorBoard): Keras hands every callback the
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
        logger.info(
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
    when a run resumes from a backup. Put it after the `CSVLogger`.

    Args:
        csv_path: the `CSVLogger` file.
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


class SkippedImagesReport(keras.callbacks.Callback):
    """Adds `skipped_images` (distinct images skipped so far) to the logs.

    Args:
        skipped: the `kmlc.data.SkippedImages` of the training dataset.
    """

    def __init__(self, skipped):
        super().__init__()
        self.skipped = skipped
        self._reported = 0

    def on_epoch_end(self, epoch, logs=None):
        count = len(self.skipped)
        if logs is not None:
            logs["skipped_images"] = count
        if count > self._reported:
            new = self.skipped.names[self._reported :]
            logger.warning(
                "%d unreadable image(s) skipped so far; new this epoch: %s",
                count,
                ", ".join(new[:20]) + (" ..." if len(new) > 20 else ""),
            )
            self._reported = count


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


def make_callbacks(
    config,
    output_dir,
    validation,
    skipped,
    chief,
    loss,
    predict_fn=None,
    best_so_far=None,
    previous_val_map=(),
    saved_model=None,
):
    """The run's callbacks, in the order their logs and files need.

    `ValidationMetrics` comes first (the others read its `val_mAP`); the
    backup comes last, after the CSV row and the best checkpoint of the
    epoch are written (see `run_directory.prepare_resume`). `best_so_far`
    is the best checkpoint's threshold (a resumed run's best `val_mAP`);
    `previous_val_map` the `val_mAP` of each epoch a resumed run has done,
    from which early stopping continues its count. `saved_model` is the
    model `best.keras` holds when another one is fitted (the whole model
    while its `heads_model()` trains on cached features). Only the chief
    gets the callbacks that write files.
    """
    path = lambda name: os.path.join(output_dir, name)  # noqa: E731
    callbacks = [
        ValidationMetrics(validation, loss=loss, predict_fn=predict_fn),
        SkippedImagesReport(skipped),
    ]
    if config.early_stopping_patience:
        callbacks.append(
            ResumedEarlyStopping(
                previous=previous_val_map,
                monitor="val_mAP",
                mode="max",
                patience=config.early_stopping_patience,
            )
        )
    if not chief:
        return callbacks
    callbacks.append(keras.callbacks.CSVLogger(path("history.csv"), append=True))
    callbacks.append(TrainingCurves(path("history.csv"), path("training_curves.png")))
    callbacks.append(
        BestModelCheckpoint(
            path("best.keras"),
            saved_model=saved_model,
            monitor="val_mAP",
            mode="max",
            save_best_only=True,
            initial_value_threshold=best_so_far,
        )
    )
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(path("tensorboard")))
    callbacks.append(Backup(path("backup")))
    return callbacks
