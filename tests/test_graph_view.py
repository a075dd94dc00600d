import json
import re
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from kmlc import figures
from kmlc import graph_view
from kmlc.graph import LabelGraph
from tests.label_fixtures import random_labels

_SAVE_FIGURE = figures.save_figure


def test_html_is_self_contained_and_holds_the_graph(tmp_path):
    y = (np.random.default_rng(0).random((60, 7)) < 0.4).astype(np.uint8)
    names = [f"label {i}" for i in range(6)] + ["</script><b>bold</b>"]
    graph = LabelGraph.from_labels(y, label_names=names, tau=0.3)
    path = graph_view.write_html(graph, tmp_path / "graph.html")
    page = open(path, encoding="utf-8").read()
    assert not re.search(r"(src|href)\s*=|https?://|@import", page)
    # The only closing script tag is the page's own.
    assert page.count("</script>") == 1
    data = json.loads(re.search(r"const G = (.*?);\n", page).group(1))
    order = [names.index(name) for name in data["names"]]
    assert sorted(order) == list(range(7))
    conditional = graph.conditional[np.ix_(order, order)]
    cells = np.zeros_like(conditional)
    for row, col, value in data["cells"]:
        cells[row, col] = value
    np.testing.assert_allclose(cells, conditional, atol=5e-5)
    edges = np.zeros_like(conditional)
    for row, col in data["edges"]:
        edges[row, col] = 1
    np.testing.assert_array_equal(edges, graph.adjacency[np.ix_(order, order)])


def _draw(graph, path, monkeypatch):
    """Draws `graph` (and its HTML view); returns the matrix axis' title and
    the traced peak memory, in bytes, of all but matplotlib's rendering of
    the figure (which gets `[n, n]` arrays of the n labels shown, and the
    `[D]` degrees)."""
    titles, peaks = [], []

    def capture(figure, path):
        titles.append(figure.axes[0].get_title())
        peaks.append(tracemalloc.get_traced_memory()[1])
        path = _SAVE_FIGURE(figure, path)
        tracemalloc.reset_peak()
        return path

    monkeypatch.setattr(figures, "save_figure", capture)
    figures.pyplot()  # imported before, not counted
    tracemalloc.start()
    try:
        graph_view.draw(graph, path, html=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    return titles[0], max(peaks)


def test_10000_labels_are_drawn_as_the_top_300_without_d_by_d_arrays(
    tmp_path, monkeypatch
):
    y = random_labels()  # 10,000 labels, 30,000 images, about 3 labels each
    names = [f"L{i}" for i in range(10_000)]
    graph = LabelGraph.from_labels(y, label_names=names, tau=0.2)
    assert graph.sparse
    title, peak = _draw(graph, tmp_path / "label_graph.png", monkeypatch)
    assert "Top 300 of 10,000 labels by frequency" in title
    # A D x D array of bytes alone would be 100 MB.
    assert peak < 30e6, peak
    with Image.open(tmp_path / "label_graph.png") as image:
        assert image.size == (int(15 * figures.DPI), int(10 * figures.DPI))
        assert np.asarray(image.convert("L"), np.float32).std() > 5
    small = LabelGraph.from_labels(random_labels(300, 3000), tau=0.2)
    title, _ = _draw(small, tmp_path / "small.png", monkeypatch)
    assert title.startswith("All 300 labels, ordered by co-occurrence communities")

    # The HTML view beside the PNG shows the same 300: the most frequent.
    page = (tmp_path / "label_graph.html").read_text(encoding="utf-8")
    assert "top 300 of 10,000 labels by frequency" in page
    data = json.loads(re.search(r"const G = (.*?);\n", page).group(1))
    shown = [names.index(name) for name in data["names"]]
    counts = np.asarray(y.sum(axis=0)).ravel()
    assert len(set(shown)) == 300
    assert counts[shown].min() >= np.delete(counts, shown).max()
    assert data["counts"] == [int(counts[i]) for i in shown]
    # Its cells are P(column | row) among them, counted here from y.
    columns = y[:, shown].toarray()
    together = columns.T @ columns
    np.fill_diagonal(together, 0)
    cells = np.zeros((300, 300))
    for row, col, value in data["cells"]:
        cells[row, col] = value
    np.testing.assert_allclose(cells, together / counts[shown][:, None], atol=5e-5)


def test_max_labels_below_two_is_an_error(tmp_path):
    graph = LabelGraph.from_labels(np.eye(4, dtype=np.uint8))
    with pytest.raises(ValueError, match="max_labels must be at least 2. Received: 1"):
        graph_view.write_html(graph, tmp_path / "graph.html", max_labels=1)
