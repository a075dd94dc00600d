"""Per-label decision thresholds, chosen on validation data (NumPy only).

A label is predicted for an image when its score (the sigmoid of its logit)
is at least the label's threshold. One threshold for every label (0.5) is
seldom the best: rare labels get low scores and are never predicted, common
ones are over-predicted. `choose_thresholds` picks, for each label, the
threshold that maximises that label's F1 on labelled data (the validation
split), between two of its distinct scores: halfway between the lowest score
it predicts and the highest one it does not (the lowest score itself when it
predicts every image), so that the decisions on those data are the best ones
and a new score near a boundary falls on the side of the nearer one.

Few positives: with one or two positives the best-F1 threshold sits just
under those images' scores, which says little about new images. So each
label's threshold is shrunk towards the default (0.5) by its number of
positives P: `(P * best + k * default) / (P + k)`, as if the default had
been measured on `k = prior_positives` positives (10); a label with many
positives gets about its own best threshold, one with a single positive
moves about a tenth of the way. Labels with fewer than `min_positives` positives
(1: those without any) keep the default. Measured on Corel-5k's validation
split (454 images; 203 labels with a positive, half of them with 4 or
fewer; EfficientNet-Lite0 frozen, heads `full`), thresholds chosen on one
half and scored on the other (mean of 10 splits), against CF1 0.363 and
OF1 0.572 at 0.5: shrinking with k = 10 gave CF1 0.373 and OF1 0.584; a
hard floor instead (0.5 below 5 positives, no shrinking) 0.365 and 0.566;
neither, 0.404 but OF1 0.334 (rare labels over-predicted). The defaults
were chosen on this measurement (k = 5 to 20 gave about the same).

Thresholds chosen and scored on the same images are optimistic.
`cross_fitted_report` gives the honest figure: the images are split in two
halves, the thresholds are chosen on one half and applied to the other, and
the other way round; the report is over all the images, each decided by
thresholds that never saw it.

`ThresholdsMixin` gives a model (`kmlc.MultiLabelClassifier`) its
`thresholds` and `set_thresholds`.
"""

import numpy as np

from kmlc.metrics import _as_arrays
from kmlc.metrics import multilabel_report

DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_POSITIVES = 1
DEFAULT_PRIOR_POSITIVES = 10.0


def choose_thresholds(
    labels,
    scores,
    min_positives=DEFAULT_MIN_POSITIVES,
    default=DEFAULT_THRESHOLD,
    prior_positives=DEFAULT_PRIOR_POSITIVES,
):
    """Each label's threshold: its best F1 on these data, shrunk to `default`.

    Args:
        labels: `[N, D]` multi-hot (0 and 1).
        scores: `[N, D]` scores in [0, 1] (the sigmoid of the logits).
        min_positives: int. A label with fewer positives keeps `default`.
            Defaults to 1 (labels without positives).
        default: float. The threshold to shrink towards. Defaults to 0.5.
        prior_positives: float. k: a label with P positives gets
            `(P * best + k * default) / (P + k)`, where `best` maximises
            its F1. 0 keeps `best`. Defaults to 10.

    Returns:
        float32 `[D]`: predict label d when `score >= thresholds[d]`. Where
        several thresholds give the same best F1 the highest is taken (the
        fewest predictions).
    """
    labels, scores = _as_arrays(labels, scores)
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise ValueError(
            "scores must be in [0, 1] (the sigmoid of the logits, not the "
            f"logits). Received: scores from {scores.min()} to {scores.max()}"
        )
    min_positives = int(min_positives)
    if min_positives < 1:
        raise ValueError(
            "min_positives must be at least 1 (a label without positives has "
            f"no F1 to maximise). Received: min_positives={min_positives}"
        )
    default = check_thresholds([default], 1, name="default")[0]
    prior_positives = float(prior_positives)
    if not prior_positives >= 0:
        raise ValueError(
            "prior_positives must be at least 0. Received: "
            f"prior_positives={prior_positives}"
        )
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    true_pos = np.cumsum(np.take_along_axis(labels, order, axis=0), axis=0)
    positives = true_pos[-1]
    predicted = np.arange(1, n + 1, dtype=np.float64)[:, None]
    # Only the end of a run of tied scores is a possible cut.
    run_end = np.ones_like(sorted_scores, dtype=bool)
    run_end[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    f1 = np.where(run_end, 2.0 * true_pos / (positives + predicted), -1.0)
    best = np.argmax(f1, axis=0)  # the first maximum: the highest threshold
    columns = np.arange(scores.shape[1])
    upper = sorted_scores[best, columns]
    lower = sorted_scores[np.minimum(best + 1, n - 1), columns]
    lower = np.where(best + 1 < n, lower, -np.inf)
    cut = np.where(np.isfinite(lower), 0.5 * (lower + upper), upper)
    best = _float32_between(cut, lower, upper).astype(np.float64)
    if prior_positives:
        with np.errstate(invalid="ignore"):
            best = (positives * best + prior_positives * default) / (
                positives + prior_positives
            )
    return np.where(positives >= min_positives, best, default).astype(np.float32)


def _float32_between(value, lower, upper):
    """`value` as float32, kept in `(lower, upper]` where float32 can."""
    value = value.astype(np.float32)
    low = value.astype(np.float64) <= lower
    value = np.where(low, np.nextafter(value, np.float32(np.inf)), value)
    high = value.astype(np.float64) > upper
    return np.where(high, np.nextafter(value, np.float32(-np.inf)), value)


def cross_fitted_report(
    labels,
    scores,
    min_positives=DEFAULT_MIN_POSITIVES,
    default=DEFAULT_THRESHOLD,
    prior_positives=DEFAULT_PRIOR_POSITIVES,
    seed=0,
):
    """The report at per-label thresholds that never saw the image decided.

    The images are shuffled (by `seed`) and split into two halves; each
    half is decided by the thresholds `choose_thresholds` picks on the other
    half. Each half has about half the positives, so the thresholds are
    shrunk more than on the whole set: if anything, the estimate is a
    little pessimistic.

    Args:
        labels, scores, min_positives, default, prior_positives: as in
            `choose_thresholds`.
        seed: int. The split.

    Returns:
        `kmlc.metrics.multilabel_report` over all the images.
    """
    labels, scores = _as_arrays(labels, scores)
    n = len(labels)
    if n < 2:
        raise ValueError(
            f"Cross-fitting needs at least 2 images. Received: {n} image(s)"
        )
    first = np.zeros(n, dtype=bool)
    first[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    per_image = np.empty_like(scores)
    for chosen_on in (first, ~first):
        per_image[~chosen_on] = choose_thresholds(
            labels[chosen_on],
            scores[chosen_on],
            min_positives,
            default,
            prior_positives,
        )
    return multilabel_report(labels, scores, threshold=per_image)


def check_thresholds(values, num_labels, label_names=None, name="thresholds"):
    """`values` as float32 `[num_labels]` in [0, 1]; errors name the label."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (num_labels,):
        raise ValueError(
            f"{name} must hold {num_labels} values, one per label. Received: "
            f"shape {array.shape}"
        )
    bad = np.flatnonzero(~((array >= 0.0) & (array <= 1.0)))
    if bad.size:
        i = int(bad[0])
        label = f"label {label_names[i]!r}" if label_names else f"label {i}"
        raise ValueError(
            f"{name} are scores in [0, 1] (the sigmoid of the logits). "
            f"Received: {array[i]} for {label}"
        )
    return array.astype(np.float32)


class ThresholdsMixin:
    """A model's per-label thresholds: `thresholds`, `set_thresholds`.

    For a model with `num_labels` and `label_names`; the model calls
    `set_thresholds` in its constructor and puts `threshold_config()` in
    its `get_config`.
    """

    @property
    def thresholds(self):
        """float32 `[D]`: label d is predicted when its score is at least
        `thresholds[d]` (0.5 everywhere until `set_thresholds`)."""
        values = getattr(self, "_thresholds", None)
        if values is None:
            return np.full(self.num_labels, DEFAULT_THRESHOLD, np.float32)
        return values.copy()

    @property
    def has_thresholds(self):
        """Whether per-label thresholds were set (else 0.5 everywhere)."""
        return getattr(self, "_thresholds", None) is not None

    def set_thresholds(self, values):
        """Sets the per-label thresholds: D scores in [0, 1], or None (0.5)."""
        if values is not None:
            values = check_thresholds(values, self.num_labels, self.label_names)
        self._thresholds = values

    def threshold_config(self):
        """The thresholds as a JSON-ready list of floats (None: unset)."""
        if not self.has_thresholds:
            return None
        return [float(value) for value in self._thresholds]
