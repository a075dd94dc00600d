"""Fine-tuning after the frozen stage (`fine_tune_epochs`).

A run with `model.freeze_backbone` first trains its heads for `epochs`
epochs (on cached feature maps with `model.cache_features`). With
`fine_tune_epochs` it then unfreezes the backbone, all but its batch norms,
which stay in inference mode (`kmlc.backbone_rate.unfreeze_backbone`), and
goes on with `model.fit` on the images for `fine_tune_epochs` more epochs,
numbered after the first stage's (`epochs ... epochs + fine_tune_epochs -
1`): the history, the best checkpoint (whose threshold is the best
`val_mAP` of either stage) and the backup carry on. A fresh optimizer, the
configured one with its warm-up and schedule over the fine-tuning epochs,
trains the heads at `fine_tune_learning_rate` (by default
`optimizer.learning_rate`) and the backbone at
`model.backbone_lr_multiplier` times it (`BackboneRateOptimizer`, ML-GCN's
0.1). Early stopping counts anew in this stage.

Resuming across the boundary: the first stage's backup is kept at its end,
recording all `epochs` as done (`kmlc.training.backup`), and each backup
names the stage whose model and optimizer wrote it, so `build_run` loads a
fine-tuning backup into the model readied for fine-tuning
(`stage_models`).
"""

import dataclasses
import logging
import math
import os

from kmlc.backbone_rate import BackboneRateOptimizer
from kmlc.backbone_rate import unfreeze_backbone
from kmlc.training import run_directory
from kmlc.training.backup import FINE_TUNE
from kmlc.training.backup import MAIN
from kmlc.training.builders import compile_model
from kmlc.training.builders import steps_in_epoch
from kmlc.training.callbacks import Stage
from kmlc.training.callbacks import make_callbacks
from kmlc.training.optimizers import make_optimizer

logger = logging.getLogger("kmlc.train")


def check_config(config):
    """Raises `ValueError` for a `TrainConfig` whose fine-tuning cannot run."""
    if not config.model.freeze_backbone:
        raise ValueError(
            "fine_tune_epochs continue a run whose backbone was frozen for "
            "its first epochs: set model.freeze_backbone: true as well. "
            f"Received: fine_tune_epochs={config.fine_tune_epochs}, "
            "model.freeze_backbone=False"
        )
    if config.strategy == "multiworker":
        raise ValueError(
            "fine_tune_epochs is not supported with strategy: multiworker. "
            f"Received: fine_tune_epochs={config.fine_tune_epochs}"
        )
    rate = config.fine_tune_learning_rate
    if rate is not None and not rate > 0:
        raise ValueError(
            "fine_tune_learning_rate must be positive (or null for "
            f"optimizer.learning_rate). Received: fine_tune_learning_rate={rate}"
        )


def _scaled(optimizer_config, learning_rate):
    """`optimizer_config` peaking at `learning_rate`, its cosine's end alike."""
    factor = learning_rate / optimizer_config.learning_rate
    return dataclasses.replace(
        optimizer_config,
        learning_rate=learning_rate,
        min_learning_rate=optimizer_config.min_learning_rate * factor,
    )


def heads_optimizer_config(config):
    """The heads' optimizer settings while fine-tuning: the first stage's,
    peaking at `fine_tune_learning_rate` when it is set."""
    if config.fine_tune_learning_rate is None:
        return config.optimizer
    return _scaled(config.optimizer, config.fine_tune_learning_rate)


def fine_tune_optimizer(config, steps_per_epoch):
    """The heads' optimizer and the backbone's, slower, over the stage.

    The heads follow `heads_optimizer_config`, the backbone peaks at
    `model.backbone_lr_multiplier` times their rate.
    """
    epochs = config.fine_tune_epochs
    heads = heads_optimizer_config(config)
    backbone = _scaled(heads, heads.learning_rate * config.model.backbone_lr_multiplier)
    return BackboneRateOptimizer(
        make_optimizer(heads, steps_per_epoch, epochs),
        make_optimizer(backbone, steps_per_epoch, epochs),
    )


def ready_for_fine_tuning(model, config, steps_per_epoch):
    """Unfreezes `model`'s backbone (not its batch norms) and compiles it
    with `fine_tune_optimizer`. Returns the model."""
    unfreeze_backbone(model)
    optimizer = fine_tune_optimizer(config, steps_per_epoch)
    return compile_model(model, config, steps_per_epoch, optimizer=optimizer)


def stage_steps(config, train_set):
    """Optimizer steps in a fine-tuning epoch (the images, one view)."""
    return steps_in_epoch(config, len(train_set))


def stage_models(config, model, fit_model, steps, fine_tune_steps):
    """`{stage: function}` readying the model a backup of each stage loads
    into (`kmlc.training.backup.inspect`)."""

    def main():
        if model.backbone.trainable:  # readied for a newer backup that failed
            model.backbone.trainable = False
            compile_model(model, config, steps)
        return fit_model

    def fine_tune():
        return ready_for_fine_tuning(model, config, fine_tune_steps)

    return {MAIN: main, FINE_TUNE: fine_tune}


def fit(run, verbose):
    """Runs the fine-tuning stage of `run`; returns its history dict."""
    config = run.config
    end = config.epochs + config.fine_tune_epochs
    first = max(run.initial_epoch, config.epochs)
    if run.stage != FINE_TUNE:  # a resumed fine-tuning run is ready
        with run.strategy.scope():
            ready_for_fine_tuning(run.model, config, run.fine_tune_steps)
    history_csv = os.path.join(run.output_dir, run_directory.HISTORY)
    best = [run.best_so_far]
    previous = ()
    if run.chief:
        best.append(run_directory.best_so_far(history_csv))
        if run.stage == FINE_TUNE:
            values = run_directory.monitored_per_epoch(history_csv, first)
            previous = tuple(values[config.epochs :])
    best = [value for value in best if value is not None and not math.isnan(value)]
    stage = Stage(
        name=FINE_TUNE,
        validation=run.validation_ds,
        steps=run.fine_tune_steps,
        epochs=end,
        best_so_far=max(best) if best else None,
        previous_val_map=previous,
    )
    callbacks = make_callbacks(run, epoch_log=verbose == 0, stage=stage)
    logger.info(
        "fine-tuning %s with its backbone unfrozen (batch norms frozen) for "
        "epochs %d-%d of %d steps; the heads' learning rate is %g, the "
        "backbone's %g times it",
        run.model.name,
        first + 1,
        end,
        run.fine_tune_steps,
        heads_optimizer_config(config).learning_rate,
        config.model.backbone_lr_multiplier,
    )
    history = run.model.fit(
        run.fine_tune_train.repeat(),
        epochs=end,
        initial_epoch=first,
        steps_per_epoch=run.fine_tune_steps,
        callbacks=callbacks,
        shuffle=False,
        verbose=verbose,
    )
    return history.history
