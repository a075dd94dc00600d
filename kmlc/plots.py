"""PNG plots of what people would rather look at than read.

Training curves, per-label AP (of one model, or of several side by side),
the label graph and attention maps. Each function writes one PNG
(atomically, at `DPI` dots per inch, at the figure size its docstring
gives) and returns its path. Matplotlib runs with the non-interactive Agg
backend, so no screen is needed. `pyplot()` and `save_figure()` (from
`kmlc.figures`) are for the other modules' figures.
"""

import csv
import math

import numpy as np

from kmlc import graph_view
from kmlc.figures import DPI  # noqa: F401 (the public API)
from kmlc.figures import integer_locator
from kmlc.figures import pyplot
from kmlc.figures import save_figure


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
    """Loss and validation mAP per epoch; 10 x 3.8 inches.

    Args:
        history: dict of metric name -> list of values per epoch (a Keras
            `History.history`, or `read_history` of a CSV log), with an
            optional `"epoch"` column.
        path: the PNG to write.
    """
    plt = pyplot()
    epochs = history.get("epoch") or list(range(len(next(iter(history.values())))))
    epochs = [int(e) + 1 for e in epochs]
    losses = [k for k in history if k.endswith("loss")]
    scores = [k for k in history if k not in losses and k not in ("epoch",)]
    scores = [k for k in scores if k.lower().endswith(("map", "f1", "ap"))]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for key in losses:
        axes[0].plot(epochs, history[key], marker="o", label=key)
    axes[0].set(xlabel="epoch", ylabel="loss", title=f"{title}: loss")
    for key in scores:
        axes[1].plot(epochs, history[key], marker="o", label=key)
    axes[1].set(xlabel="epoch", ylabel="score", title=f"{title}: validation")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.set_major_locator(integer_locator())
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    return save_figure(figure, path)


def per_label_ap(ap, label_names, path, max_labels=40, title="Per-label AP"):
    """A bar chart of AP per label, best first, with the mAP line.

    With more than `max_labels` labels, the best and worst `max_labels / 2`
    are shown, split by a line that says how many are left out. Labels with
    no positives (AP NaN) are left out. 7 inches wide, `0.22` inch a bar
    plus 1.6 inches (at least 3.6).
    """
    return ap_comparison(
        {"AP": ap}, label_names, path, max_labels=max_labels, title=title
    )


def ap_comparison(ap_by_model, label_names, path, max_labels=40, title=None):
    """Per-label AP of one or more models, side by side, as horizontal bars.

    Labels are sorted by the last model's AP minus the first's (by AP for
    one model), largest first. With more than `max_labels` labels, the
    first and last `max_labels / 2` are shown. The legend, with each
    model's mAP, sits above the bars. 7 inches wide, `0.22` inch a label
    per model (at least 0.22) plus 1.6 inches (at least 3.6).

    Args:
        ap_by_model: dict of model name -> AP per label `[D]` (NaN for a
            label without positives).
        label_names: the D label names.
        path: the PNG to write.
        max_labels: int. Most labels shown.
        title: str or None.
    """
    plt = pyplot()
    models = list(ap_by_model)
    ap = np.array([np.asarray(ap_by_model[m], float) for m in models])  # [M, D]
    names = np.asarray(label_names)
    keep = ~np.all(np.isnan(ap), axis=0)
    ap, names = ap[:, keep], names[keep]
    means = [float(np.nanmean(row)) if row.size else float("nan") for row in ap]
    key = np.nan_to_num(ap[-1] - ap[0] if len(models) > 1 else ap[0], nan=-np.inf)
    order = np.argsort(-key, kind="stable")
    left_out = 0
    if len(order) > max_labels:
        half = max_labels // 2
        left_out = len(order) - 2 * half
        order = np.concatenate([order[:half], order[-half:]])
    per_label = 0.22 * max(1.0, 0.6 * len(models))
    height = max(3.6, per_label * len(order) + 1.6)
    figure, axis = plt.subplots(figsize=(7, height), layout="constrained")
    positions = np.arange(len(order))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        axis.barh(
            positions + (i - (len(models) - 1) / 2) * width,
            np.nan_to_num(ap[i, order]),
            width,
            label=f"{model} (mAP {means[i]:.3f})",
        )
    if len(models) == 1:
        axis.containers[0].set_label(None)
        axis.axvline(
            means[0], color="tab:red", linestyle="--", label=f"mAP {means[0]:.3f}"
        )
    axis.set_yticks(positions, names[order], fontsize=8)
    axis.set_ylim(len(order) - 0.5, -0.5)
    axis.set(xlim=(0, 1), xlabel="average precision")
    axis.grid(axis="x", alpha=0.3)
    if left_out:
        half = len(order) // 2
        axis.axhline(half - 0.5, color="black", linewidth=0.8)
        axis.text(
            0.99,
            half - 0.5,
            f"{left_out} labels not shown",
            ha="right",
            va="center",
            fontsize=7,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    if title is None:
        title = "Per-label AP"
        if len(models) > 1:
            title += f", sorted by {models[-1]} minus {models[0]}"
    if left_out:
        title += f" ({len(order)} of {len(order) + left_out} labels)"
    axis.set_title(title, fontsize=10)
    figure.legend(loc="outside upper center", ncols=len(models), fontsize=8)
    return save_figure(figure, path)


def label_graph(graph, path, html="auto"):
    """The label graph: P(column | row) for every label, and the degrees.

    Labels are drawn in an order that keeps co-occurring labels together
    (`kmlc.label_order`), their communities boxed. Up to 60 labels every
    label is named; beyond, the larger communities are named, and with
    `html="auto"` an interactive view that names every cell is written
    beside the PNG (`label_graph.png` -> `label_graph.html`). Past 300
    labels both show the 300 most frequent (the title says so). 15 x 10
    inches (10 x 6.5 up to 60 labels). See `kmlc.graph_view.draw`.

    Args:
        graph: a `kmlc.LabelGraph`.
        path: the PNG to write.
        html: `"auto"`, True or False: whether to write the HTML view.
    """
    return graph_view.draw(graph, path, html=html)


def attention_maps(
    image, maps, labels, label_names, path, scores=None, image_name=None
):
    """An image and the relation-attention map of each candidate label.

    Each map is upsampled (bilinearly) to the image's resolution and laid
    over it, on one colour scale for all maps. Panels 2.6 inches wide and
    as high as the image's aspect gives (0.5 to 1.5 times), up to 6 a row,
    plus 0.8 inch for the colour bar and 0.5 for the title.

    Args:
        image: `[H, W, 3]` in 0..255.
        maps: `[h, w, K]` attention maps (softmax over positions).
        labels: `[K]` label indices.
        label_names: all label names.
        scores: optional `[D]` probabilities, shown in the titles.
        image_name: str or None. The source image, named in the title.
    """
    import matplotlib.cm as cm
    import matplotlib.colors as colors

    plt = pyplot()
    image = np.clip(np.asarray(image, np.float32) / 255.0, 0, 1)
    maps = np.asarray(maps, np.float32)
    height, width = image.shape[:2]
    upsampled = np.stack(
        [_resize(maps[..., i], height, width) for i in range(maps.shape[-1])], -1
    )
    count = maps.shape[-1]
    columns = min(count + 1, 6)
    rows = math.ceil((count + 1) / columns)
    panel = 2.6 * min(1.5, max(0.5, height / width))  # panel height, inches
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(2.6 * columns + 0.8, panel * rows + 0.5),
        layout="constrained",
        squeeze=False,
    )
    axes = axes.ravel()
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    # Over the image in grey, colour and opacity both grow with the
    # attention: where a map is low, the image shows through.
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    norm = colors.Normalize(0.0, float(upsampled.max()) if upsampled.size else 1.0)
    colormap = plt.get_cmap("jet")
    for i in range(count):
        axis = axes[i + 1]
        overlay = colormap(norm(upsampled[..., i]))
        overlay[..., 3] = 0.85 * np.clip(norm(upsampled[..., i]), 0, 1) ** 0.7
        axis.imshow(grey, cmap="gray", vmin=0, vmax=1)
        axis.imshow(overlay)
        name = label_names[int(labels[i])]
        if scores is not None:
            name = f"{name} {scores[int(labels[i])]:.2f}"
        axis.set_title(name, fontsize=9)
    for axis in axes:
        axis.axis("off")
    bar = figure.colorbar(
        cm.ScalarMappable(norm, colormap), ax=axes.tolist(), shrink=0.8
    )
    bar.set_label("attention of a feature-map cell (each map sums to 1)", fontsize=8)
    source = f" of {image_name}" if image_name else ""
    figure.suptitle(
        f"Relation attention{source}: {width}x{height} px, "
        f"maps {maps.shape[1]}x{maps.shape[0]} upsampled to the image",
        fontsize=10,
    )
    return save_figure(figure, path)


def _resize(values, height, width):
    """Bilinear resize of a 2-D array to `[height, width]` (pixel centres)."""
    from PIL import Image

    resized = Image.fromarray(np.ascontiguousarray(values, np.float32))
    return np.asarray(resized.resize((width, height), Image.BILINEAR), np.float32)
