"""Scoring a model on labelled data: the multi-label report, as files.

`evaluate(model, dataset)` runs the model over `(images, labels)` batches and
returns `kmlc.metrics.multilabel_report` of the sigmoid scores at one
threshold (0.5), and, for a model with per-label thresholds
(`kmlc.thresholds`), the decision metrics at those too (`"model_thresholds"`);
`write_report` writes it as JSON (with per-label values) and a per-label AP
plot.
"""

import logging
import math
import os

import numpy as np

from kmlc import io as kmlc_io
from kmlc import plots
from kmlc.metrics import multilabel_report
from kmlc.metrics import sigmoid
from kmlc.prediction import collect_scores

logger = logging.getLogger("kmlc.evaluate")


# The metrics that depend on the decisions (not mAP, AP).
DECISION_METRICS = ("CP", "CR", "CF1", "OP", "OR", "OF1", "N+")


def evaluate(model, dataset, threshold=0.5, top_k=None):
    """`multilabel_report` of a model on a dataset of `(images, labels)`.

    Args:
        model: a `MultiLabelClassifier` (logits out).
        dataset: finite batches of `(images, labels)`.
        threshold, top_k: as in `multilabel_report`.

    Returns:
        The report dict of `report`, plus `num_images`; with the model's
        per-label thresholds when it has them.
    """
    logits, labels = collect_scores(model, dataset)
    thresholds = model.thresholds if getattr(model, "has_thresholds", False) else None
    result = report(labels, sigmoid(logits), threshold, top_k, thresholds)
    result["num_images"] = int(len(labels))
    return result


def report(labels, scores, threshold=0.5, top_k=None, thresholds=None):
    """`multilabel_report` at `threshold` (or `top_k`), and at `thresholds`.

    Args:
        labels: `[N, D]` multi-hot.
        scores: `[N, D]` sigmoid scores.
        threshold, top_k: the report's decisions, as in `multilabel_report`.
        thresholds: `[D]` or None. Per-label thresholds: the report gets
            `"model_thresholds"`, the `DECISION_METRICS` at them, and the
            per-label `"thresholds"` and `"F1_at_threshold"` arrays (left out
            with `top_k`, whose decisions use no threshold).

    Returns:
        The report dict, with `"threshold"` (None with `top_k`).
    """
    result = multilabel_report(labels, scores, threshold=threshold, top_k=top_k)
    result["threshold"] = None if top_k is not None else float(threshold)
    if thresholds is not None and top_k is None:
        tuned = multilabel_report(labels, scores, threshold=thresholds)
        result["model_thresholds"] = decision_summary(tuned)
        result["thresholds"] = np.asarray(thresholds, dtype=np.float32)
        result["F1_at_threshold"] = tuned["F1"]
    return result


def decision_summary(report):
    """The `DECISION_METRICS` of a report, as a JSON-ready dict."""
    return {key: report[key] for key in DECISION_METRICS}


def summary(report):
    """The scalar part of a report, JSON-ready (NaN becomes null)."""
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in report.items()
        if not isinstance(v, np.ndarray)
    }


def write_report(report, label_names, output_dir, name="metrics"):
    """Writes `<name>.json` (with per-label values) and `per_label_ap.png`.

    Returns:
        The JSON file's path.
    """
    os.makedirs(output_dir, exist_ok=True)
    payload = summary(report)
    payload["per_label"] = {
        label: {
            "AP": None if math.isnan(report["AP"][i]) else float(report["AP"][i]),
            "precision": float(report["precision"][i]),
            "recall": float(report["recall"][i]),
            "F1": float(report["F1"][i]),
            "support": int(report["support"][i]),
            **_per_label_thresholds(report, i),
        }
        for i, label in enumerate(label_names)
    }
    path = os.path.join(output_dir, f"{name}.json")
    kmlc_io.write_json(path, payload)
    try:
        plots.per_label_ap(
            report["AP"], label_names, os.path.join(output_dir, "per_label_ap.png")
        )
    except Exception as error:  # a plot must never fail an evaluation
        logger.warning("could not draw per-label AP: %s", error)
    return path


def _per_label_thresholds(report, i):
    if "thresholds" not in report:
        return {}
    return {
        "threshold": float(report["thresholds"][i]),
        "F1_at_threshold": float(report["F1_at_threshold"][i]),
    }
