"""Multi-label metrics: exact average precision and the usual report.

The NumPy functions score a whole evaluation set at once; the Keras metric
`MeanAveragePrecision` accumulates scores over an epoch and gives the same
exact value (not a thresholded approximation).

Conventions: AP of a label is sklearn's `average_precision_score` (steps
over distinct score values, ties grouped). A label with no positives in
`y_true` has AP NaN and is left out of the mean, and out of the per-class
precision/recall averages of `multilabel_report`.
"""

import keras
import numpy as np
from keras import ops


def sigmoid(logits):
    """Scores in [0, 1] of logits (NumPy, float64; no overflow warnings)."""
    logits = np.asarray(logits, dtype=np.float64)
    return 0.5 * (1.0 + np.tanh(0.5 * logits))


def _as_arrays(y_true, y_score):
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(
            "y_true and y_score must both be [num_images, num_labels]. "
            f"Received: {y_true.shape} and {y_score.shape}"
        )
    if y_true.size == 0:
        raise ValueError(
            "No images or no labels to score: y_true is empty. "
            f"Received: shape={y_true.shape}"
        )
    bad = (y_true != 0) & (y_true != 1)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            "y_true must hold only 0 and 1. "
            f"Received: {y_true[row, col].item()!r} at row {row}, column {col}"
        )
    if not np.all(np.isfinite(y_score)):
        row, col = np.argwhere(~np.isfinite(y_score))[0]
        raise ValueError(
            "y_score must be finite. "
            f"Received: {float(y_score[row, col])} at row {row}, column {col}"
        )
    return y_true.astype(np.float64), y_score


def average_precision(y_true, y_score):
    """Per-label AP `[D]`; NaN for labels with no positives.

    Args:
        y_true: `[N, D]` multi-hot.
        y_score: `[N, D]` scores (logits or probabilities: only the order
            matters).
    """
    y_true, y_score = _as_arrays(y_true, y_score)
    order = np.argsort(-y_score, axis=0, kind="mergesort")
    scores = np.take_along_axis(y_score, order, axis=0)
    labels = np.take_along_axis(y_true, order, axis=0)
    n = scores.shape[0]
    true_pos = np.cumsum(labels, axis=0)
    precision = true_pos / np.arange(1, n + 1)[:, None]
    # Within a run of tied scores every item gets the precision at the end
    # of the run (sklearn steps only at distinct thresholds).
    run_end = np.ones_like(scores, dtype=bool)
    run_end[:-1] = scores[1:] != scores[:-1]
    end_index = np.where(run_end, np.arange(n)[:, None], n)
    end_index = np.minimum.accumulate(end_index[::-1], axis=0)[::-1]
    precision_at_end = np.take_along_axis(precision, end_index, axis=0)
    positives = labels.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (labels * precision_at_end).sum(axis=0) / positives
    return np.where(positives > 0, ap, np.nan)


def mean_average_precision(y_true, y_score):
    """mAP: the mean of per-label AP over labels with at least one positive."""
    ap = average_precision(y_true, y_score)
    if np.all(np.isnan(ap)):
        raise ValueError("No label has a positive example: mAP is undefined.")
    return float(np.nanmean(ap))


def multilabel_report(y_true, y_score, threshold=0.5, top_k=None):
    """The standard multi-label report.

    Args:
        y_true: `[N, D]` multi-hot.
        y_score: `[N, D]` probabilities (sigmoid of the logits).
        threshold: float, `[D]` or `[N, D]`. A label is predicted when its
            score is at least this: one threshold for every label, one per
            label (`kmlc.thresholds`), or one per score. Defaults to 0.5.
        top_k: int or None. If set, the `top_k` highest-scoring labels of
            each image are predicted instead (the threshold is ignored).

    Returns:
        dict with `CP`, `CR`, `CF1` (per-class precision and recall averaged
        over labels with a positive, and `2 CP CR / (CP + CR)`), `OP`, `OR`,
        `OF1` (pooled over all labels), `N+` (labels recalled at least
        once), `mAP`, and per-label arrays `AP`, `precision`, `recall`, `F1`,
        `support`. A label that is never predicted has precision 0.
    """
    y_true, y_score = _as_arrays(y_true, y_score)
    if top_k is not None:
        top_k = int(top_k)
        if not 1 <= top_k <= y_score.shape[1]:
            raise ValueError(
                f"top_k must be in [1, {y_score.shape[1]}]. Received: top_k={top_k}"
            )
        order = np.argsort(-y_score, axis=1, kind="stable")[:, :top_k]
        y_pred = np.zeros_like(y_true)
        np.put_along_axis(y_pred, order, 1.0, axis=1)
    else:
        y_pred = (y_score >= _threshold_array(threshold, y_score.shape)).astype(
            np.float64
        )
    true_pos = (y_pred * y_true).sum(axis=0)
    predicted = y_pred.sum(axis=0)
    support = y_true.sum(axis=0)
    present = support > 0

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)

    precision = ratio(true_pos, predicted)
    recall = ratio(true_pos, support)
    f1 = ratio(2 * precision * recall, precision + recall)
    cp = float(precision[present].mean())
    cr = float(recall[present].mean())
    op = float(ratio(true_pos.sum(keepdims=True), predicted.sum(keepdims=True))[0])
    orr = float(ratio(true_pos.sum(keepdims=True), support.sum(keepdims=True))[0])
    ap = average_precision(y_true, y_score)
    return {
        "mAP": float(np.nanmean(ap)) if present.any() else float("nan"),
        "CP": cp,
        "CR": cr,
        "CF1": 2 * cp * cr / (cp + cr) if cp + cr > 0 else 0.0,
        "OP": op,
        "OR": orr,
        "OF1": 2 * op * orr / (op + orr) if op + orr > 0 else 0.0,
        "N+": int((true_pos > 0).sum()),
        "num_labels_with_positives": int(present.sum()),
        "AP": ap,
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "support": support.astype(np.int64),
    }


def _threshold_array(threshold, shape):
    """A threshold as an array that broadcasts against scores `[N, D]`."""
    array = np.asarray(threshold, dtype=np.float64)
    if array.shape not in ((), shape[1:], shape):
        raise ValueError(
            "threshold must be one number, one per label "
            f"[{shape[1]}] or one per score [{shape[0]}, {shape[1]}]. "
            f"Received: shape {array.shape}"
        )
    if np.isnan(array).any():
        raise ValueError(
            "threshold must not be NaN. Received: "
            f"{int(np.isnan(array).sum())} NaN value(s)"
        )
    return array


@keras.saving.register_keras_serializable(package="kmlc")
class MeanAveragePrecision(keras.metrics.Metric):
    """Exact mAP over everything seen since the last reset.

    Scores and labels are kept in a buffer of `max_samples` rows (8 bytes a
    label a row); `result()` sorts each label's column and computes AP
    exactly as `kmlc.metrics.average_precision` does, ties included. Rows
    beyond `max_samples` are not stored: `num_dropped` counts them, and the
    result then covers the first `max_samples` rows only, so size the
    buffer to the evaluation set. Batches must not exceed `max_samples`.

    `sample_weight` (one weight per image, `[B]` or `[B, 1]`) weighs each
    image in every label's precision and recall, as scikit-learn's
    `average_precision_score(..., sample_weight=w)` does; a label counts in
    the mean when its positives' weights sum above zero. Keras passes the
    weights of `fit`/`evaluate` to `compile(weighted_metrics=...)` only.

    Under a `tf.distribute` strategy with several replicas each replica
    fills its own buffer; there use `kmlc.training.callbacks.ValidationMetrics`,
    which is exact under any strategy (kmlc's training does).

    Args:
        num_labels: int. D.
        max_samples: int. Buffer rows. Defaults to 20,000.
        name: str. Defaults to `"mAP"`.

    Example:
    >>> model.compile(loss="bce", metrics=[MeanAveragePrecision(80)])
    """

    def __init__(self, num_labels, max_samples=20000, name="mAP", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_labels = int(num_labels)
        self.max_samples = int(max_samples)
        shape = (self.max_samples, self.num_labels)
        self.scores = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", name="scores"
        )
        self.labels = self.add_variable(
            shape=shape, initializer="zeros", dtype="float32", name="labels"
        )
        self.weights_buffer = self.add_variable(
            shape=(self.max_samples,),
            initializer="zeros",
            dtype="float32",
            name="sample_weights",
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="int32", name="count"
        )
        self.num_dropped = self.add_variable(
            shape=(), initializer="zeros", dtype="int32", name="num_dropped"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        if y_pred.shape[-1] != self.num_labels:
            raise ValueError(
                f"MeanAveragePrecision was built for {self.num_labels} labels. "
                f"Received: y_pred of shape {y_pred.shape}"
            )
        batch = ops.shape(y_pred)[0]
        if sample_weight is None:
            sample_weight = ops.ones((batch,), "float32")
        else:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) == 2 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            if len(sample_weight.shape) != 1:
                raise ValueError(
                    "MeanAveragePrecision takes one sample weight per image, "
                    "of shape [batch] or [batch, 1]. Received: sample_weight "
                    f"of shape {sample_weight.shape}"
                )
        capacity = self.max_samples
        # Variables are read into tensors first: JAX's slicing primitives do
        # not accept Keras variables.
        count = ops.convert_to_tensor(self.count)
        keep = ops.minimum(batch, capacity - count)
        # slice_update writes a whole batch, so near the end of the buffer
        # the batch is written higher up, over rows it then restores.
        write_at = ops.maximum(ops.minimum(count, capacity - batch), 0)
        shift = count - write_at
        rows = ops.arange(batch)
        new = (rows >= shift) & (rows < shift + keep)
        source = ops.clip(rows - shift, 0, batch - 1)
        for buffer, values in (
            (self.scores, y_pred),
            (self.labels, y_true),
            (self.weights_buffer, sample_weight),
        ):
            stored = ops.convert_to_tensor(buffer)
            start = (write_at,) + (0,) * (len(buffer.shape) - 1)
            old = ops.slice(stored, start, (batch,) + tuple(buffer.shape[1:]))
            moved = ops.take(values, source, axis=0)
            keep_new = ops.reshape(new, (-1,) + (1,) * (len(buffer.shape) - 1))
            buffer.assign(
                ops.slice_update(stored, start, ops.where(keep_new, moved, old))
            )
        self.count.assign(count + keep)
        self.num_dropped.assign(self.num_dropped + batch - keep)

    def result(self):
        n, num_labels = self.max_samples, self.num_labels
        valid = (ops.arange(n) < ops.convert_to_tensor(self.count))[:, None]
        # Unused rows get the lowest score and no positives: they sort last
        # and add nothing.
        scores = ops.where(valid, ops.convert_to_tensor(self.scores), -np.inf)
        labels = ops.where(valid, ops.convert_to_tensor(self.labels), 0.0)
        weights = ops.where(
            valid, ops.convert_to_tensor(self.weights_buffer)[:, None], 0.0
        )
        order = ops.argsort(-scores, axis=0)
        scores = ops.take_along_axis(scores, order, axis=0)
        weights = ops.take_along_axis(
            ops.broadcast_to(weights, (n, num_labels)), order, axis=0
        )
        # Weighted positives; with unit weights, the labels themselves.
        labels = ops.take_along_axis(labels, order, axis=0) * weights
        seen = ops.maximum(ops.cumsum(weights, axis=0), 1e-12)
        precision = ops.cumsum(labels, axis=0) / seen
        # sklearn steps only at distinct scores: within a run of ties every
        # item gets the precision at the run's end. Runs are numbered per
        # column and offset so that one segment_sum serves all labels.
        changes = ops.cast(ops.not_equal(scores[1:], scores[:-1]), "float32")
        ones = ops.ones((1, num_labels), "float32")
        run_start = ops.concatenate([ones, changes], axis=0)
        run_end = ops.concatenate([changes, ones], axis=0)
        run_id = ops.cast(ops.cumsum(run_start, axis=0), "int32") - 1
        segment = ops.reshape(run_id + ops.arange(num_labels)[None, :] * n, (-1,))
        end_precision = ops.segment_sum(
            ops.reshape(precision * run_end, (-1,)),
            segment,
            num_segments=n * num_labels,
        )
        precision_at_end = ops.reshape(ops.take(end_precision, segment), (n, -1))
        positives = ops.sum(labels, axis=0)
        ap = ops.sum(labels * precision_at_end, axis=0) / ops.maximum(positives, 1e-12)
        present = ops.cast(positives > 0, "float32")
        return ops.sum(ap * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        shape = (self.max_samples, self.num_labels)
        self.scores.assign(ops.zeros(shape, "float32"))
        self.labels.assign(ops.zeros(shape, "float32"))
        self.weights_buffer.assign(ops.zeros((self.max_samples,), "float32"))
        self.count.assign(0)
        self.num_dropped.assign(0)

    def get_config(self):
        config = super().get_config()
        config.update({"num_labels": self.num_labels, "max_samples": self.max_samples})
        return config
