"""What a run tells its user while it trains: one line an epoch, the
skipped images, and on a CPU an estimate of the epoch time.

`EpochLog` logs an epoch's losses and scores in one line (when Keras'
progress bar prints none); `SkippedImagesReport` names the images skipped
as unreadable, when there are any; `EpochTimeEstimate` times the first
steps on a machine without a GPU and says how long an epoch will take,
with a hint to the CPU config when that is long.
"""

import logging
import statistics
import time

import keras

logger = logging.getLogger("kmlc.train")

CPU_CONFIG = "training/configs/corel5k-cpu.yaml"


class EpochLog(keras.callbacks.Callback):
    """Logs `epoch E/N: loss ..., val_loss ..., val_mAP ...` once an epoch.

    Put it after the callbacks that add to the logs (`ValidationMetrics`).

    Args:
        epochs: int. The run's epochs (N).
    """

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        logger.info(
            "epoch %d/%d: %s",
            epoch + 1,
            self.epochs,
            ", ".join(f"{key} {value:.4f}" for key, value in (logs or {}).items()),
        )


class SkippedImagesReport(keras.callbacks.Callback):
    """Warns, after an epoch that skipped new images, naming them.

    Args:
        skipped: the `kmlc.data.SkippedImages` of the training dataset.
    """

    def __init__(self, skipped):
        super().__init__()
        self.skipped = skipped
        self._reported = 0

    def on_epoch_end(self, epoch, logs=None):
        count = len(self.skipped)
        if count > self._reported:
            new = self.skipped.names[self._reported :]
            logger.warning(
                "%d unreadable image(s) skipped so far; new this epoch: %s",
                count,
                ", ".join(new[:20]) + (" ..." if len(new) > 20 else ""),
            )
            self._reported = count


class EpochTimeEstimate(keras.callbacks.Callback):
    """On a CPU: how long an epoch will take, from the first steps' times.

    The first step is not counted (it builds the training graph: minutes
    for a large backbone); the median of the next `measured_steps` times
    the steps of an epoch is the estimate, logged once (at DEBUG under
    `log_after_s`). From `hint_after_s` seconds an epoch, a warning adds
    that the config is sized for a GPU and names the CPU config.

    Args:
        steps: int. Steps an epoch.
        config: the run's `TrainConfig` (named in the hint).
        measured_steps: int. Defaults to 2.
        log_after_s: float. Defaults to 300.
        hint_after_s: float. Defaults to 1800 (half an hour an epoch).
        clock: () -> seconds. Defaults to `time.perf_counter`.
    """

    def __init__(
        self,
        steps,
        config,
        measured_steps=2,
        log_after_s=300.0,
        hint_after_s=1800.0,
        clock=None,
    ):
        super().__init__()
        self.steps = steps
        self.config = config
        self.measured_steps = measured_steps
        self.log_after_s = log_after_s
        self.hint_after_s = hint_after_s
        self.clock = clock or time.perf_counter
        self.estimate_s = None
        self._seen = 0
        self._started = None
        self._times = []

    def on_train_begin(self, logs=None):
        logger.debug(
            "no GPU is visible: training on the CPU. The first step builds "
            "the training graph (minutes for a large backbone); the epoch "
            "time is estimated after %d more.",
            self.measured_steps,
        )

    def on_train_batch_begin(self, batch, logs=None):
        self._started = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        if self.estimate_s is not None or self._started is None:
            return
        self._seen += 1
        if self._seen > 1:  # the first step traces the model
            self._times.append(self.clock() - self._started)
        if len(self._times) < self.measured_steps:
            return
        step_s = statistics.median(self._times)
        self.estimate_s = step_s * self.steps
        message = (
            f"on this CPU an epoch of {self.steps} steps takes about "
            f"{_duration(self.estimate_s)} ({step_s:.1f} s a step, measured)"
        )
        if self.estimate_s < self.hint_after_s:
            level = (
                logging.INFO if self.estimate_s >= self.log_after_s else logging.DEBUG
            )
            logger.log(level, "%s", message)
            return
        model = self.config.model
        logger.warning(
            "%s, %s for %d epochs. This config (%s at %s px) is sized for a "
            "GPU; on a CPU, %s trains a pretrained EfficientNet-Lite0's heads "
            "on cached features in minutes.",
            message,
            _duration(self.estimate_s * self.config.epochs),
            self.config.epochs,
            model.backbone,
            model.image_size,
            CPU_CONFIG,
        )


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
