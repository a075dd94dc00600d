"""The end of a run: the final model, its validation report, a `TrainResult`.

`finish` adds the co-occurrence re-scoring (`kmlc.training.rescoring`)
to the best model, scores it on the validation split, chooses its
per-label thresholds there (`per_label_thresholds`, `kmlc.thresholds`)
and writes:

    model.keras      the final model (the best epoch's, when there is one),
                     with its thresholds and re-scoring; best.keras
                     gets them too when there are thresholds
    metrics.json     the final validation report; per_label_ap.png

The report's CP ... N+ are at the config's `threshold` (0.5); with
per-label thresholds, `model_thresholds` has them at those (chosen on the
same images: optimistic) and `model_thresholds_cross_fitted` at thresholds
chosen on the other half of the validation images (the honest figure).
"""

import dataclasses
import logging
import os

from kmlc import io as kmlc_io
from kmlc import saving
from kmlc import thresholds as thresholds_lib
from kmlc.evaluation import decision_summary
from kmlc.evaluation import report as threshold_report
from kmlc.evaluation import summary
from kmlc.evaluation import write_report
from kmlc.metrics import sigmoid
from kmlc.prediction import collect_scores
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
    has_best = os.path.exists(best_path)
    if has_best:
        model = saving.load_model(best_path)  # outside any strategy
    model, rescoring = finish_rescoring(run, model)
    logits, labels = collect_scores(model, run.validation_ds)
    report = validation_report(model, labels, sigmoid(logits), run.config)
    if rescoring is not None:
        report["rescoring"] = rescoring
    model_path = os.path.join(run.output_dir, run_directory.FINAL)
    if run.chief:
        kmlc_io.save_model(model, model_path)
        if has_best and model.has_thresholds:
            kmlc_io.save_model(model, best_path)
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


def validation_report(model, labels, scores, config):
    """The final report; sets the model's thresholds if the config says so.

    Args:
        model: the final `MultiLabelClassifier`.
        labels, scores: `[N, D]` validation labels and sigmoid scores.
        config: the run's `TrainConfig`.
    """
    thresholds = None
    if config.per_label_thresholds:
        min_positives = config.threshold_min_positives
        choice = {
            "min_positives": min_positives,
            "prior_positives": config.threshold_prior_positives,
        }
        thresholds = thresholds_lib.choose_thresholds(labels, scores, **choice)
        model.set_thresholds(thresholds)
    result = threshold_report(labels, scores, config.threshold, thresholds=thresholds)
    result["num_images"] = int(len(labels))
    if thresholds is not None:
        tuned = int((labels.sum(axis=0) >= min_positives).sum())
        logger.info(
            "per-label thresholds chosen on %d validation images for %d of %d "
            "labels (the others, with fewer than %d positives, keep 0.5)",
            len(labels),
            tuned,
            labels.shape[1],
            min_positives,
        )
        result["threshold_choice"] = {**choice, "labels": tuned}
        if len(labels) >= 2:
            crossed = thresholds_lib.cross_fitted_report(
                labels, scores, **choice, seed=config.seed
            )
            result["model_thresholds_cross_fitted"] = decision_summary(crossed)
    return result


def worker_result(run, history):
    """The `TrainResult` of a non-chief worker (which writes nothing)."""
    return TrainResult(
        output_dir=run.output_dir,
        model_path="",
        metrics={},
        history=history,
        skipped_images=run.train_ds.skipped.names,
    )
