"""The end of a run: the final model, its validation report, a `TrainResult`.

`finish` scores the best model (with its co-occurrence re-scoring,
`kmlc.training.rescoring`) on the validation split and writes:

    model.keras      the final model (the best epoch's, when there is one)
    metrics.json     the final validation report; per_label_ap.png
"""

import dataclasses
import logging
import os

import keras

from kmlc import io as kmlc_io
from kmlc.evaluation import evaluate
from kmlc.evaluation import summary
from kmlc.evaluation import write_report
from kmlc.training import run_directory
from kmlc.training.rescoring import finish_rescoring

logger = logging.getLogger("kmlc.train")


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        output_dir: str.
        model_path: the final model (`.keras`); empty on a non-chief worker.
        metrics: the validation report (`metrics.json`'s content).
        history: dict of per-epoch logs of this process (a resumed run has
            the earlier epochs in `history.csv`).
        skipped_images: names of the images skipped as unreadable.
    """

    output_dir: str
    model_path: str
    metrics: dict
    history: dict
    skipped_images: list


def finish(run, history):
    """Evaluates the best model, writes the final model and metrics.

    Args:
        run: the `kmlc.training.builders.Run`.
        history: dict of per-epoch logs of this process.

    Returns:
        A `TrainResult`.
    """
    model = run.model
    best_path = os.path.join(run.output_dir, run_directory.BEST)
    if os.path.exists(best_path):
        model = keras.saving.load_model(best_path)  # outside any strategy
    model, rescoring = finish_rescoring(run, model)
    report = evaluate(model, run.validation_ds, threshold=run.config.threshold)
    if rescoring is not None:
        report["rescoring"] = rescoring
    model_path = os.path.join(run.output_dir, run_directory.FINAL)
    if run.chief:
        kmlc_io.save_model(model, model_path)
        write_report(report, model.label_names, run.output_dir)
    skipped = run.train_ds.skipped.names
    if skipped:
        logger.warning(
            "%d unreadable image(s) were skipped: %s", len(skipped), ", ".join(skipped)
        )
    return TrainResult(
        output_dir=run.output_dir,
        model_path=model_path,
        metrics=summary(report),
        history={k: [float(v) for v in vs] for k, vs in history.items()},
        skipped_images=skipped,
    )


def worker_result(run, history):
    """The `TrainResult` of a non-chief worker (which writes nothing)."""
    return TrainResult(
        output_dir=run.output_dir,
        model_path="",
        metrics={},
        history=history,
        skipped_images=run.train_ds.skipped.names,
    )
