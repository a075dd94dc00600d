"""Keras callbacks for multi-label training.

`ValidationMetrics` scores the validation set once per epoch, exactly
(every prediction kept, AP computed as in `kmlc.metrics`) and under any
`tf.distribute` strategy, and puts `val_loss` and `val_mAP` into the
epoch's logs for the callbacks after it (checkpointing, early stopping,
CSV and TensorBoard logs). `TrainingCurves` redraws the training curves as a
PNG after every epoch. `SkippedImagesReport` adds the count of skipped
images to the logs. `ResumedEarlyStopping` continues an interrupted run's
early-stopping count.
"""

import logging
import math
import os

import keras

from kmlc import metrics as metrics_lib
from kmlc import plots
from kmlc.prediction import collect_scores

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
