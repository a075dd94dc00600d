"""The co-occurrence re-scoring of a run: `model.rescoring_gamma`.

A number is built into the model (`kmlc.build_model(rescoring_gamma=...)`).
With `auto` the run trains as it would without re-scoring (the best epoch
is chosen on the plain logits); at the end `finish_rescoring` chooses
gamma on the *training* split alone: the cached training feature maps are
pooled (the first view of each image), `FOLDS` linear probes are trained
with the run's optimizer, schedule, loss, batch size and epochs, each on
the other folds, and the gamma of `kmlc.rescoring.GAMMAS` whose re-scored
out-of-fold logits have the best mAP wins (`kmlc.rescoring.choose_gamma`).
A gamma above 0 is added to the final model
(`kmlc.model_graph.with_rescoring`). The validation split is never seen.

The probes stand in for the run's heads: with the `baseline` preset they
are the same model; for the paper's heads they are a cheap proxy (k
trainings of those heads would cost k runs).
"""

import logging
import math
import os

import keras
import numpy as np

from kmlc import model_graph
from kmlc import rescoring
from kmlc.feature_cache import FeatureCache
from kmlc.losses import get as get_loss
from kmlc.training.builders import cache_directory
from kmlc.training.optimizers import make_optimizer

logger = logging.getLogger("kmlc.train")

FOLDS = 5
# Feature maps pooled at a time (bounds the float32 copy).
_POOL_ROWS = 256


def warn_about_probes(run):
    """Warns, before training, when `auto`'s linear probes are a mere proxy.

    The probes are linear heads on the frozen backbone's cached features.
    Measured on Corel-5k (Lite0, 3 seeds, `benchmarks/quality.py --tuned`):
    frozen, `auto` added 0.39 validation mAP to the `baseline` preset and
    took 1.44 from `full` (the probes, trained with the heads' schedule,
    chose a larger gamma than the heads' logits bear). After 6 fine-tuning
    epochs the logits are sharper still: the gamma 2 the probes choose took
    0.12 from `baseline` and 0.23 from `full`, where gamma 1 added 0.81
    and 0.58.
    """
    if run.config.model.rescoring_gamma != "auto":
        return
    heads = tuple(run.model.heads)
    if heads != ("cls",):
        logger.warning(
            "model.rescoring_gamma: auto chooses gamma with linear probes, which "
            "stand in for the heads %s only roughly: on Corel-5k it added 0.39 "
            "mAP to the baseline preset but took 1.44 from full. For these heads "
            "give a number instead (0: off).",
            ",".join(heads),
        )
    elif run.config.fine_tune_epochs:
        logger.warning(
            "model.rescoring_gamma: auto chooses gamma with linear probes on the "
            "frozen backbone's features, but this run fine-tunes the backbone: "
            "on Corel-5k after 6 fine-tuning epochs the probes' gamma 2 took "
            "0.12 mAP from the baseline preset where gamma 1 added 0.81. Give "
            "a number instead (1 there)."
        )


def finish_rescoring(run, model):
    """The run's final model with its re-scoring, and metrics.json's record.

    Returns:
        `(model, record)`: `record` is None without re-scoring, else a dict
        with `gamma` and how it was chosen (`chosen_by`; for `auto` also
        `folds` and `out_of_fold_mAP` by gamma).
    """
    gamma = run.config.model.rescoring_gamma
    if gamma != "auto":
        if not gamma:
            return model, None
        return model, {"gamma": float(gamma), "chosen_by": "model.rescoring_gamma"}
    record = choose_run_gamma(run)
    if record["gamma"] > 0:
        model = model_graph.with_rescoring(model, run.graph, record["gamma"])
    return model, record


def choose_run_gamma(run):
    """gamma from out-of-fold probe logits of the cached training features."""
    config = run.config
    directory = os.path.join(cache_directory(config, run.output_dir), "train")
    features, labels = pooled_features(FeatureCache(directory))
    keras.utils.set_random_seed(config.seed)

    def fit_predict(train_x, train_y, held_x):
        probe = keras.Sequential(
            [keras.Input((train_x.shape[1],)), keras.layers.Dense(train_y.shape[1])]
        )
        steps = math.ceil(len(train_x) / config.batch_size)
        probe.compile(
            optimizer=make_optimizer(config.optimizer, steps, config.epochs),
            loss=get_loss(config.loss),
        )
        probe.fit(
            train_x,
            train_y,
            batch_size=config.batch_size,
            epochs=config.epochs,
            shuffle=True,
            verbose=0,
        )
        return probe.predict(held_x, batch_size=256, verbose=0)

    logits = rescoring.out_of_fold_logits(
        features, labels, fit_predict, folds=FOLDS, seed=config.seed
    )
    gamma, scores = rescoring.choose_gamma(logits, labels, run.graph)
    logger.info(
        "re-scoring gamma %g, chosen on %d-fold out-of-fold logits of the "
        "training split (mAP by gamma: %s)",
        gamma,
        FOLDS,
        ", ".join(f"{g:g}: {s:.4f}" for g, s in scores.items()),
    )
    return {
        "gamma": gamma,
        "chosen_by": f"auto: {FOLDS}-fold out-of-fold logits of linear probes "
        "on the cached training features",
        "folds": FOLDS,
        "out_of_fold_mAP": {f"{g:g}": s for g, s in scores.items()},
    }


def pooled_features(cache):
    """`(features [N, E] float32, labels [N, D] float32)`: each image's first
    view, its feature map averaged over positions."""
    views = int(cache.meta.get("views", 1))
    rows = np.arange(0, len(cache), views)
    pooled = [
        np.asarray(cache.features[rows[i : i + _POOL_ROWS]], np.float32).mean(
            axis=(1, 2)
        )
        for i in range(0, len(rows), _POOL_ROWS)
    ]
    return np.concatenate(pooled), cache.labels[rows].astype(np.float32)
