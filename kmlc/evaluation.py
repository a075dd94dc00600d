"""Scoring a model on labelled data: the multi-label report, as files.

`evaluate(model, dataset)` runs the model over `(images, labels)` batches and
returns `kmlc.metrics.multilabel_report` of the sigmoid scores;
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

logger = logging.getLogger("kmlc.evaluate")


def collect_scores(model, dataset, predict_fn=None):
    """Runs a model over `(images, labels)` batches.

    Args:
        model: a Keras model.
        dataset: `(images, labels)` batches.
        predict_fn: images -> logits. Defaults to `model.predict_on_batch`.

    Returns:
        `(logits, labels)`: float32 NumPy arrays `[N, D]`, in dataset order.
    """
    predict_fn = predict_fn or model.predict_on_batch
    logits, labels = [], []
    batch_size = None
    for images, batch_labels in dataset:
        images = np.asarray(images)
        count = len(images)
        batch_size = batch_size or count
        if count < batch_size:  # pad the last batch: one traced shape
            padding = np.zeros((batch_size - count, *images.shape[1:]), images.dtype)
            images = np.concatenate([images, padding])
        logits.append(np.asarray(predict_fn(images), dtype=np.float32)[:count])
        labels.append(np.asarray(batch_labels, dtype=np.float32))
    if not logits:
        raise ValueError("The dataset yielded no batches to score.")
    return np.concatenate(logits), np.concatenate(labels)


def evaluate(model, dataset, threshold=0.5, top_k=None):
    """`multilabel_report` of a model on a dataset of `(images, labels)`.

    Args:
        model: a `MultiLabelClassifier` (logits out).
        dataset: finite batches of `(images, labels)`.
        threshold, top_k: as in `multilabel_report`.

    Returns:
        The report dict, plus `num_images`.
    """
    logits, labels = collect_scores(model, dataset)
    report = multilabel_report(
        labels, sigmoid(logits), threshold=threshold, top_k=top_k
    )
    report["num_images"] = int(len(labels))
    return report


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
