"""`kmlc.train(config)`: a whole training run, the way users run one.

The run reads the data, splits it deterministically, counts the label
graph on the training split only, builds and compiles the model under the
chosen `tf.distribute` strategy (`kmlc.training.builders`), and trains it
with callbacks for exact validation mAP, the best checkpoint, a backup (a
killed run started again with the same command resumes), early stopping,
TensorBoard, a CSV log and PNG training curves. At the end it evaluates
the best model on the validation split and writes the metrics and plots
(`kmlc.training.results`). One machine trains with `model.fit`; several
with kmlc's own loop (`kmlc.training.multiworker`).
"""

import logging
import warnings

from kmlc.training import multiworker
from kmlc.training.builders import build_run
from kmlc.training.callbacks import make_callbacks
from kmlc.training.results import finish
from kmlc.training.strategies import is_multiworker

logger = logging.getLogger("kmlc.train")


def train(config):
    """Trains a model as the config says; returns a `TrainResult`.

    Args:
        config: `kmlc.config.TrainConfig` (validated).
    """
    config.validate()
    run = build_run(config)
    if is_multiworker(run.strategy):
        return multiworker.fit(run)
    return fit(run)


def fit(run):
    """Trains `run.fit_model` with `model.fit` (one machine, any devices)."""
    config = run.config
    callbacks = make_callbacks(
        config,
        run.output_dir,
        run.fit_validation,
        run.train_ds.skipped,
        run.chief,
        run.loss,
        best_so_far=run.best_so_far,
        previous_val_map=run.previous_val_map,
        saved_model=run.model,
    )
    logger.info(
        "training %s (%s, %s px, heads %s) for %d epochs of %d steps on %d replica(s)",
        run.model.name,
        config.model.backbone,
        config.model.image_size,
        ",".join(run.model.heads),
        config.epochs,
        run.steps,
        run.strategy.num_replicas_in_sync,
    )
    with warnings.catch_warnings():
        # The pipeline skips unreadable images, so its length is unknown
        # until the first epoch ends, which Keras reports as running out of
        # data: expected here, not a problem.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = run.fit_model.fit(
            run.fit_train.repeat() if config.steps_per_epoch else run.fit_train,
            epochs=config.epochs,
            initial_epoch=run.initial_epoch,
            steps_per_epoch=config.steps_per_epoch,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose="auto" if config.verbose is None else config.verbose,
        )
    return finish(run, history.history)
