"""PNG plots of what people would rather look at than read.

Training curves, per-label AP, the label graph and attention maps. Each
function writes one PNG (atomically) and returns its path. Matplotlib runs
with the non-interactive Agg backend, so no screen is needed.
"""

import csv
import math
import os

import numpy as np

from kmlc import io as kmlc_io


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    plt = _pyplot()
    path = os.fspath(path)
    try:
        with kmlc_io.atomic_path(path) as temp:
            figure.savefig(temp, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def read_history(csv_path):
    """A `keras.callbacks.CSVLogger` file as a dict of column -> list."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    history = {}
    for row in rows:
        for key, value in row.items():
            try:
                history.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                history.setdefault(key, []).append(float("nan"))
    return history


def training_curves(history, path, title="Training"):
    """Loss and validation mAP per epoch.

    Args:
        history: dict of metric name -> list of values per epoch (a Keras
            `History.history`, or `read_history` of a CSV log), with an
            optional `"epoch"` column.
        path: the PNG to write.
    """
    plt = _pyplot()
    epochs = history.get("epoch") or list(range(len(next(iter(history.values())))))
    epochs = [int(e) + 1 for e in epochs]
    losses = [k for k in history if k.endswith("loss")]
    scores = [k for k in history if k not in losses and k not in ("epoch",)]
    scores = [k for k in scores if k.lower().endswith(("map", "f1", "ap"))]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for key in losses:
        axes[0].plot(epochs, history[key], marker="o", label=key)
    axes[0].set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    for key in scores:
        axes[1].plot(epochs, history[key], marker="o", label=key)
    axes[1].set(xlabel="epoch", ylabel="score", title=f"{title}: validation")
    for axis in axes:
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    return _save(figure, path)


def per_label_ap(ap, label_names, path, max_labels=40, title="Per-label AP"):
    """A bar chart of AP per label, best first.

    With more than `max_labels` labels, the best and worst `max_labels / 2`
    are shown. Labels with no positives (AP NaN) are left out.
    """
    plt = _pyplot()
    ap = np.asarray(ap, dtype=float)
    names = np.asarray(label_names)
    keep = ~np.isnan(ap)
    ap, names = ap[keep], names[keep]
    order = np.argsort(-ap, kind="stable")
    if len(order) > max_labels:
        half = max_labels // 2
        order = np.concatenate([order[:half], order[-half:]])
    height = max(3.0, 0.22 * len(order) + 1)
    figure, axis = plt.subplots(figsize=(7, height))
    positions = np.arange(len(order))
    axis.barh(positions, ap[order], color="tab:blue")
    axis.set_yticks(positions, names[order], fontsize=8)
    axis.invert_yaxis()
    axis.set(xlim=(0, 1), xlabel="average precision")
    mean = float(np.mean(ap)) if len(ap) else float("nan")
    axis.axvline(mean, color="tab:red", linestyle="--", label=f"mAP {mean:.3f}")
    axis.legend(loc="lower right")
    shown = (
        "" if len(order) == len(ap) else f" (best and worst {len(order)} of {len(ap)})"
    )
    axis.set_title(title + shown)
    return _save(figure, path)


def label_graph(graph, path, max_labels=60):
    """The label graph: P(column | row) with its edges, and the degrees.

    With more than `max_labels` labels the most connected ones are shown.
    """
    plt = _pyplot()
    names = graph.label_names or [str(i) for i in range(graph.num_labels)]
    keep = np.arange(graph.num_labels)
    if graph.num_labels > max_labels:
        degrees = graph.adjacency.sum(0) + graph.adjacency.sum(1)
        keep = np.sort(np.argsort(-degrees, kind="stable")[:max_labels])
    window = np.ix_(keep, keep)
    figure, axes = plt.subplots(
        1, 2, figsize=(12, 5.5), gridspec_kw={"width_ratios": [1.4, 1]}
    )
    axes[0].imshow(graph.conditional[window], cmap="Blues", vmin=0, vmax=1)
    rows, cols = np.nonzero(graph.adjacency[window])
    axes[0].scatter(cols, rows, s=6, c="tab:red", marker="s", label="edge")
    if len(keep) <= 40:
        shown = [names[i] for i in keep]
        axes[0].set_xticks(range(len(keep)), shown, rotation=90, fontsize=7)
        axes[0].set_yticks(range(len(keep)), shown, fontsize=7)
    axes[0].set_title(
        f"P(column | row) and edges ({graph.strategy}, density {graph.density:.3f})"
    )
    axes[0].legend(loc="upper right", fontsize=7)
    degrees = graph.degrees()
    bins = min(30, max(5, int(degrees.max()) + 1))
    axes[1].hist(degrees, bins=bins, color="tab:blue")
    axes[1].set(xlabel="out-degree", ylabel="labels", title="Degree distribution")
    return _save(figure, path)


def attention_maps(image, maps, labels, label_names, path, scores=None):
    """An image and the relation-attention map of each candidate label.

    Args:
        image: `[H, W, 3]` in 0..255.
        maps: `[h, w, K]` attention maps (softmax over positions).
        labels: `[K]` label indices.
        label_names: all label names.
        scores: optional `[D]` probabilities, shown in the titles.
    """
    plt = _pyplot()
    image = np.clip(np.asarray(image) / 255.0, 0, 1)
    count = maps.shape[-1]
    columns = min(count + 1, 6)
    rows = math.ceil((count + 1) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows))
    axes = np.atleast_1d(axes).ravel()
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    height, width = image.shape[:2]
    for i in range(count):
        axis = axes[i + 1]
        axis.imshow(image)
        axis.imshow(
            maps[..., i],
            cmap="jet",
            alpha=0.45,
            extent=(0, width, height, 0),
            interpolation="bilinear",
        )
        name = label_names[int(labels[i])]
        if scores is not None:
            name = f"{name} {scores[int(labels[i])]:.2f}"
        axis.set_title(name, fontsize=9)
    for axis in axes:
        axis.axis("off")
    return _save(figure, path)


def pyplot():
    """`matplotlib.pyplot` with the non-interactive Agg backend."""
    return _pyplot()


def save_figure(figure, path):
    """Writes `figure` to `path` (PNG) atomically and closes it. Returns `path`."""
    return _save(figure, path)
