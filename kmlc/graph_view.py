"""The label graph for people: a PNG in community order, and an HTML view.

`draw` writes the PNG that `kmlc.plots.label_graph` promises: P(column |
row) for every label, in the order of `kmlc.label_order`, with the edges,
the communities boxed and named, a colour bar and the degree histogram.
`write_html` writes a self-contained page (no external scripts, styles or
fonts) with the whole matrix in that order, each cell named on hover: the
view for label sets too large to name in a PNG.

Past `MAX_VIEW_LABELS` labels both show the most frequent ones only (the
title says so: "top 300 of 10,000 labels by frequency"), their
communities found among them; the degree histogram still counts every
label. Nothing of size `D x D` is made: a sparse graph's matrices are cut
to the labels shown.
"""

import dataclasses
import json
import math
import os
from html import escape

import numpy as np
import scipy.sparse

from kmlc import figures
from kmlc import graph_rules
from kmlc import io as kmlc_io
from kmlc import label_order

# Every label is named up to this many; beyond, the larger communities are
# named and the HTML view is written beside the PNG.
MAX_NAMED_LABELS = 60
# Past this many labels, the PNG and the HTML view show the most frequent
# ones only (at 15 x 10 inches and 110 dpi, about 3 pixels a label).
MAX_VIEW_LABELS = 300


@dataclasses.dataclass
class _View:
    """The labels shown and their matrices `[n, n]`, in community order."""

    what: str  # "all 260 labels" or "top 300 of 10,000 labels by frequency"
    names: list
    label_counts: np.ndarray
    pair_counts: np.ndarray
    conditional: np.ndarray
    adjacency: np.ndarray
    community: np.ndarray

    @property
    def num_edges(self):
        return int(self.adjacency.sum())

    def edges_text(self, graph):
        if len(self.names) == graph.num_labels:
            return f"{graph.num_edges} edges"
        return f"{self.num_edges} edges among these labels, {graph.num_edges} in all"


def _view(graph, max_labels):
    """The `max_labels` most frequent labels (all, up to that many), ordered
    by `label_order.label_communities` of their own pair counts."""
    count = graph.num_labels
    if max_labels < 2:
        raise ValueError(f"max_labels must be at least 2. Received: {max_labels}")
    if count > max_labels:
        index = np.argsort(-graph.label_counts, kind="stable")[:max_labels]
        what = f"top {max_labels:,} of {count:,} labels by frequency"
    else:
        index = np.arange(count)
        what = f"all {count:,} labels"
    pairs = _block(graph.pair_counts, index)
    counts = graph.label_counts[index]
    order, community = label_order.label_communities(pairs, counts)
    index, pairs, counts = index[order], pairs[np.ix_(order, order)], counts[order]
    names = graph.label_names or [str(i) for i in range(count)]
    return _View(
        what=what,
        names=[names[i] for i in index],
        label_counts=counts,
        pair_counts=pairs,
        conditional=graph_rules.conditional(pairs, counts),
        adjacency=_block(graph.adjacency, index),
        community=community[order],
    )


def _block(matrix, index):
    """`matrix[index][:, index]` as a dense array, from a dense or CSR matrix."""
    if scipy.sparse.issparse(matrix):
        return scipy.sparse.csr_matrix(matrix)[index][:, index].toarray()
    return np.asarray(matrix)[np.ix_(index, index)]


def draw(graph, path, html="auto", max_labels=MAX_VIEW_LABELS):
    """The label graph: P(column | row) for every label, and the degrees.

    Labels are drawn in the order of `label_order.label_communities`, so
    that labels which occur together sit together, with their communities
    boxed, and the edges marked in red (unless more than half the pairs
    shown are edges). Up to `MAX_NAMED_LABELS` labels every label is
    named; beyond, the larger communities are named on the right, and with
    `html="auto"` an interactive view that names every cell is written
    beside the PNG (`label_graph.png` -> `label_graph.html`). Past
    `max_labels` labels, the `max_labels` most frequent are drawn, and the
    title says so. 15 x 10 inches (10 x 6.5 up to `MAX_NAMED_LABELS`
    labels).

    Args:
        graph: a `kmlc.LabelGraph` (dense or sparse).
        path: the PNG to write.
        html: `"auto"`, True or False: whether to write the HTML view.
        max_labels: int. The most labels drawn. Defaults to 300.
    """
    import matplotlib.colors as colors
    import matplotlib.patches as patches

    plt = figures.pyplot()
    view = _view(graph, max_labels)
    count = len(view.names)
    named = count <= MAX_NAMED_LABELS
    figure = plt.figure(figsize=(10, 6.5) if named else (15, 10), layout="constrained")
    grid = figure.add_gridspec(2, 2, width_ratios=(2.3, 1), height_ratios=(1, 1))
    axis = figure.add_subplot(grid[:, 0])
    image = axis.imshow(
        view.conditional,
        cmap="Blues",
        norm=colors.PowerNorm(0.5, vmin=0, vmax=1),
        interpolation="nearest",
    )
    figure.colorbar(
        image, ax=axis, location="bottom", shrink=0.6, aspect=40, pad=0.01
    ).set_label(
        "P(column | row): share of the row label's images that show the column label"
    )
    edges = view.adjacency > 0
    edges_drawn = edges.mean() <= 0.5
    if edges_drawn:
        cell_points = 72 * 0.8 * figure.get_figheight() / count
        if cell_points >= 5:  # a red square inside each edge's cell
            rows, cols = np.nonzero(edges)
            axis.scatter(
                cols, rows, s=min(0.35 * cell_points, 6.0) ** 2, c="tab:red", marker="s"
            )
        else:  # cells too small for a mark: the edge cells turn red
            overlay = np.zeros(edges.shape + (4,), np.float32)
            overlay[edges] = colors.to_rgba("tab:red")
            axis.imshow(overlay, interpolation="nearest")
    runs = _runs(view.community)
    for start, stop in runs:
        if stop - start > 1:
            axis.add_patch(
                patches.Rectangle(
                    (start - 0.5, start - 0.5),
                    stop - start,
                    stop - start,
                    fill=False,
                    edgecolor="0.35",
                    linewidth=0.6,
                )
            )
    ordered = view.names
    if named:
        axis.set_xticks(range(count), ordered, rotation=90, fontsize=7)
        axis.set_yticks(range(count), ordered, fontsize=7)
    else:
        # Right: the larger communities; below: the columns that most rows
        # point to (the frequent labels' stripes).
        rows_per_point = count / (72 * 0.8 * figure.get_figheight())
        counts = view.label_counts
        communities = []
        for start, stop in sorted(runs, key=lambda run: run[0] - run[1]):
            if stop - start > 1:
                members = sorted(range(start, stop), key=lambda i: -counts[i])
                text = ", ".join(ordered[i] for i in members[:4])
                more = stop - start - 4
                communities.append(
                    ((start + stop - 1) / 2, text + f" +{more}" * (more > 0))
                )
        ticks, texts = _spread(communities, 1.25 * 6.5 * rows_per_point)
        axis.yaxis.tick_right()
        axis.set_yticks(ticks, texts, fontsize=6.5)
        pointed_to = view.conditional.mean(axis=0)
        stripes = [(i, ordered[i]) for i in np.argsort(-pointed_to)[:15]]
        ticks, texts = _spread(stripes, 1.25 * 6.5 * rows_per_point)
        axis.set_xticks(ticks, texts, rotation=90, fontsize=6.5)
        axis.tick_params(length=2)
    edges = (
        f"red: the {view.edges_text(graph)}"
        if edges_drawn
        else f"edges not drawn: {edges.mean():.0%} of the pairs"
    )
    axis.set_title(
        f"{view.what[0].upper()}{view.what[1:]}, ordered by co-occurrence "
        f"communities (boxed)\n"
        f"{graph.strategy} strategy, density {graph.density:.4f}; {edges}",
        fontsize=10,
    )
    _degree_histogram(figure.add_subplot(grid[0, 1]), graph.degrees())
    notes = figure.add_subplot(grid[1, 1])
    notes.axis("off")
    notes.text(
        0, 1, _graph_notes(graph, view, runs, named), va="top", fontsize=8.5, wrap=True
    )
    path = figures.save_figure(figure, path)
    if html is True or (html == "auto" and not named):
        _write_html(graph, view, os.path.splitext(path)[0] + ".html")
    return path


def _runs(values):
    """`(start, stop)` of each run of equal values."""
    starts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    return list(zip(starts, starts[1:] + [len(values)], strict=True))


def _spread(candidates, gap):
    """Ticks and texts of `(position, text)` candidates, most important
    first, keeping those at least `gap` from every one kept before."""
    placed = {}
    for position, text in candidates:
        if all(abs(position - other) >= gap for other in placed):
            placed[position] = text
    ticks = sorted(placed)
    return ticks, [placed[t] for t in ticks]


def _degree_histogram(axis, degrees):
    top = int(degrees.max()) if len(degrees) else 0
    step = max(1, math.ceil((top + 1) / 40))
    axis.hist(degrees, bins=np.arange(-0.5, top + step + 0.5, step), color="tab:blue")
    axis.xaxis.set_major_locator(figures.integer_locator())
    axis.yaxis.set_major_locator(figures.integer_locator())
    axis.set(xlabel="out-degree (edges from a label)", ylabel="labels")
    axis.set_title("Degree distribution", fontsize=10)
    axis.grid(axis="y", alpha=0.3)


def _graph_notes(graph, view, runs, named):
    stats = graph.degree_stats()
    sizes = [stop - start for start, stop in runs]
    among = "" if len(view.names) == graph.num_labels else f" among the {view.what}"
    lines = [
        f"{graph.num_labels} labels counted on {graph.num_samples} images",
        f"{graph.num_edges} directed edges, density {graph.density:.4f}",
        f"out-degree: median {stats['median']:g}, max {stats['max']}; "
        f"{stats['isolated']} labels without edges",
        f"{sum(s > 1 for s in sizes)} communities of 2+ labels{among} "
        f"(largest {max(sizes)}), {sum(s == 1 for s in sizes)} labels alone",
    ]
    if not named:
        lines.append(
            "Right: the larger communities' most frequent labels.\n"
            "Below: the labels most rows point to (the stripes).\n"
            "The .html file beside this one names every cell on hover."
        )
    return "\n".join(lines)


def write_html(graph, path, title=None, max_labels=MAX_VIEW_LABELS):
    """Writes the label graph as one self-contained interactive HTML page.

    A heat map of `P(column | row)` for every label (past `max_labels`
    labels, the `max_labels` most frequent), in the order of
    `label_communities`, with the edges marked; hovering a cell names both
    labels and gives their counts. No external resources are loaded.

    Args:
        graph: a `kmlc.LabelGraph` (dense or sparse).
        path: the `.html` file to write (atomically).
        title: str or None. The page title.
        max_labels: int. The most labels shown. Defaults to 300.

    Returns:
        The path written.
    """
    return _write_html(graph, _view(graph, max_labels), path, title)


def _write_html(graph, view, path, title=None):
    conditional = view.conditional
    rows, cols = np.nonzero(conditional > 0)
    payload = {
        "names": view.names,
        "counts": [int(count) for count in view.label_counts],
        "community": [int(c) for c in view.community],
        "cells": [
            [int(r), int(c), round(float(conditional[r, c]), 4)]
            for r, c in zip(rows, cols, strict=True)
        ],
        "pairs": [int(count) for count in view.pair_counts[rows, cols]],
        "edges": np.argwhere(view.adjacency > 0).astype(int).tolist(),
    }
    what = (
        f"{graph.num_labels} labels"
        if len(view.names) == graph.num_labels
        else view.what
    )
    title = title or (
        f"Label graph: {what}, {graph.num_samples} images, "
        f"{graph.strategy} strategy, density {graph.density:.4f}"
    )
    # "<" escaped so that no label name can close the script element.
    data = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")
    page = (
        _PAGE.replace("$TITLE", escape(title))
        .replace("$DATA", data)
        .replace("$EDGES", escape(view.edges_text(graph)))
    )
    path = os.fspath(path)
    kmlc_io.write_text(path, page)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>$TITLE</title>
<style>
body { font: 13px sans-serif; margin: 16px; color: #222; }
#wrap { display: flex; gap: 16px; align-items: flex-start; }
canvas { border: 1px solid #ccc; image-rendering: pixelated; cursor: crosshair; }
#info { min-height: 4.5em; margin: 8px 0; }
#list { max-height: 80vh; overflow-y: auto; columns: 2; font-size: 12px; }
#list div.c { break-inside: avoid; margin-bottom: 6px; }
.sw { display: inline-block; width: 10px; height: 10px; background: #d62728; }
</style></head><body>
<h3>$TITLE</h3>
<p>Cell (row, column): P(column | row), the share of the row label's images
that also show the column label; darker is higher. Labels are ordered by
co-occurrence communities (grey boxes). <span class="sw"></span> marks
an edge that the GCN uses ($EDGES). Hover a cell for its labels.</p>
<div id="info">&nbsp;</div>
<div id="wrap"><canvas id="map"></canvas><div id="list"></div></div>
<script>
const G = $DATA;
const n = G.names.length;
const cell = Math.max(4, Math.min(14, Math.floor(1040 / n)));
const canvas = document.getElementById("map");
canvas.width = canvas.height = n * cell;
const ctx = canvas.getContext("2d");
ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, n * cell, n * cell);
const value = new Map(), pairs = new Map();
G.cells.forEach(([r, c, p], i) => {
  value.set(r * n + c, p); pairs.set(r * n + c, G.pairs[i]);
  const shade = Math.round(255 * (1 - Math.sqrt(p)));
  ctx.fillStyle = `rgb(${shade},${Math.round(80 + 0.69 * shade)},255)`;
  ctx.fillRect(c * cell, r * cell, cell, cell);
});
const edges = new Set();
ctx.fillStyle = "#d62728";
G.edges.forEach(([r, c]) => {
  edges.add(r * n + c);
  const m = Math.max(1, Math.floor(cell / 4));
  ctx.fillRect(c * cell + m, r * cell + m, cell - 2 * m, cell - 2 * m);
});
ctx.strokeStyle = "#888"; ctx.lineWidth = 1;
const list = document.getElementById("list");
let start = 0;
for (let i = 1; i <= n; i++) {
  if (i < n && G.community[i] === G.community[start]) continue;
  if (i - start > 1) {
    ctx.strokeRect(start * cell + 0.5, start * cell + 0.5,
                   (i - start) * cell - 1, (i - start) * cell - 1);
  }
  const div = document.createElement("div");
  div.className = "c";
  div.textContent = G.names.slice(start, i).join(", ");
  list.appendChild(div);
  start = i;
}
const info = document.getElementById("info");
canvas.addEventListener("mousemove", (event) => {
  const box = canvas.getBoundingClientRect();
  const c = Math.floor((event.clientX - box.left) / cell);
  const r = Math.floor((event.clientY - box.top) / cell);
  if (r < 0 || c < 0 || r >= n || c >= n) return;
  const k = r * n + c, back = c * n + r;
  const lines = [
    `row: ${G.names[r]} (${G.counts[r]} images), ` +
      `column: ${G.names[c]} (${G.counts[c]} images)`,
    r === c ? "the same label" :
      `together in ${pairs.get(k) || 0} image(s); ` +
      `P(${G.names[c]} | ${G.names[r]}) = ${(value.get(k) || 0).toFixed(3)}, ` +
      `P(${G.names[r]} | ${G.names[c]}) = ${(value.get(back) || 0).toFixed(3)}`,
    edges.has(k) ? "an edge of the graph" : "no edge",
  ];
  info.textContent = "";
  lines.forEach((line) => {
    const div = document.createElement("div");
    div.textContent = line;
    info.appendChild(div);
  });
});
</script></body></html>
"""
