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

from kmlc.training import fine_tuning
from kmlc.training import multiworker
from kmlc.training.backup import MAIN
from kmlc.training.builders import build_run
from kmlc.training.callbacks import make_callbacks
from kmlc.training.rescoring import warn_about_probes
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
    warn_about_probes(run)
    if is_multiworker(run.strategy):
        return multiworker.fit(run)
    return fit(run)


def fit(run):
    """Trains `run.fit_model` with `model.fit` (one machine, any devices).

    The training data repeats and each epoch is `run.steps` steps, so the
    progress bar knows its length from the first epoch (the pipeline skips
    unreadable images, so the data's own length is unknown until it ends).
    With `fine_tune_epochs`, the fine-tuning stage follows
    (`kmlc.training.fine_tuning`).
    """
    config = run.config
    verbose = "auto" if config.verbose is None else config.verbose
    history = {}
    # A resumed run whose backup holds every epoch still fits (no epoch):
    # the backup is removed at the end of the fit.
    if run.stage == MAIN and (
        run.initial_epoch < config.epochs or not config.fine_tune_epochs
    ):
        callbacks = make_callbacks(run, epoch_log=verbose == 0)
        logger.info(
            "training %s (%s, %s px, heads %s) for %d epochs of %d steps on %d "
            "replica(s)",
            run.model.name,
            config.model.backbone,
            config.model.image_size,
            ",".join(run.model.heads),
            config.epochs,
            run.steps,
            run.strategy.num_replicas_in_sync,
        )
        fitted = run.fit_model.fit(
            run.fit_train.repeat(),
            epochs=config.epochs,
            initial_epoch=run.initial_epoch,
            steps_per_epoch=run.steps,
            callbacks=callbacks,
            shuffle=False,  # the pipeline shuffles
            verbose=verbose,
        )
        history = dict(fitted.history)
    if config.fine_tune_epochs:
        for key, values in fine_tuning.fit(run, verbose).items():
            history[key] = list(history.get(key, [])) + list(values)
    return finish(run, history)
