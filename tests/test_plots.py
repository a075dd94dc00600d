"""Each plot writes a PNG of the size its docstring gives, with something
drawn, for 260 labels (Corel-5k's count)."""

import numpy as np
import pytest
from PIL import Image

from kmlc import graph_view
from kmlc import plots
from kmlc.graph import LabelGraph

NUM_LABELS = 260


def _png(path):
    """`(width, height)` of a PNG that is more than one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.std() > 5, f"{path} is blank"
    return pixels.shape[1], pixels.shape[0]


def _inches(width, height):
    """Pixels of a figure of `width x height` inches (matplotlib truncates)."""
    return int(width * plots.DPI), int(height * plots.DPI)


@pytest.fixture(scope="module")
def graph():
    """260 labels in themed groups of 5, as Corel-5k's are, plus noise."""
    rng = np.random.default_rng(0)
    y = np.zeros((3000, NUM_LABELS), np.uint8)
    for row in y:
        group = rng.integers(NUM_LABELS // 5) * 5
        row[group + rng.choice(5, size=3, replace=False)] = 1
        row[rng.integers(NUM_LABELS)] = 1
    names = [f"label-{i:03d}" for i in range(NUM_LABELS)]
    return LabelGraph.from_labels(y, label_names=names)


def test_label_graph_names_communities_and_writes_the_html_view(graph, tmp_path):
    path = plots.label_graph(graph, tmp_path / "label_graph.png")
    assert _png(path) == _inches(15, 10)
    html = (tmp_path / "label_graph.html").read_text(encoding="utf-8")
    assert all(name in html for name in graph.label_names)
    small = graph.with_strategy("threshold", tau=0.3)
    small = LabelGraph(
        small.pair_counts[:20, :20], small.label_counts[:20], small.num_samples
    )
    path = plots.label_graph(small, tmp_path / "small.png")
    assert _png(path) == _inches(10, 6.5)
    assert not (tmp_path / "small.html").exists()  # every label is named
    plots.label_graph(small, tmp_path / "forced.png", html=True)
    assert (tmp_path / "forced.html").exists()


def test_complete_graph_is_drawn_without_edge_marks(graph, tmp_path):
    complete = graph.with_strategy("paper")
    assert complete.density > 0.5
    path = plots.label_graph(complete, tmp_path / "paper.png", html=False)
    assert _png(path) == _inches(15, 10)
    assert not (tmp_path / "paper.html").exists()


def test_degree_histogram_has_a_bar_per_integer_degree():
    degrees = np.array([0, 1, 1, 2, 2, 2, 5, 5])
    figure = plots.pyplot().figure()
    axis = figure.add_subplot()
    graph_view._degree_histogram(axis, degrees)
    figure.canvas.draw()
    ticks = axis.get_xticks()
    assert np.all(ticks == np.round(ticks))
    centres = [p.get_x() + p.get_width() / 2 for p in axis.patches]
    heights = [p.get_height() for p in axis.patches]
    np.testing.assert_allclose(centres, np.arange(6))
    np.testing.assert_array_equal(heights, np.bincount(degrees))
    plots.pyplot().close(figure)


def test_per_label_ap_shows_best_and_worst_20(tmp_path):
    ap = np.random.default_rng(1).random(NUM_LABELS)
    ap[:5] = np.nan  # labels without positives are left out
    names = [f"label-{i}" for i in range(NUM_LABELS)]
    path = plots.per_label_ap(ap, names, tmp_path / "per_label_ap.png")
    # 40 bars of 0.22 inch plus 1.6 inches.
    assert _png(path) == _inches(7, 0.22 * 40 + 1.6)
    path = plots.per_label_ap(ap[:8], names[:8], tmp_path / "few.png")
    assert _png(path) == _inches(7, 3.6)


def test_ap_comparison_of_two_models(tmp_path):
    rng = np.random.default_rng(2)
    ap = {"baseline": rng.random(NUM_LABELS), "full": rng.random(NUM_LABELS)}
    names = [f"label-{i}" for i in range(NUM_LABELS)]
    path = plots.ap_comparison(ap, names, tmp_path / "ap_comparison.png")
    # 40 labels of 0.22 * 1.2 inch (two bars each) plus 1.6 inches.
    assert _png(path) == _inches(7, 0.22 * 1.2 * 40 + 1.6)


def test_attention_maps_at_the_image_resolution(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (128, 192, 3))
    maps = rng.random((7, 7, 10))
    maps /= maps.sum(axis=(0, 1))
    names = [f"label-{i}" for i in range(NUM_LABELS)]
    path = plots.attention_maps(
        image,
        maps,
        np.arange(10),
        names,
        tmp_path / "attention_maps.png",
        scores=rng.random(NUM_LABELS),
        image_name="1000.jpeg",
    )
    # 6 panels a row, 2 rows of 2.6 x (2.6 * 128 / 192) inches, colour bar
    # and title.
    assert _png(path) == _inches(2.6 * 6 + 0.8, 2.6 * 128 / 192 * 2 + 0.5)


def test_maps_are_upsampled_to_the_image():
    attention = np.zeros((4, 4), np.float32)
    attention[0, 3] = 1.0  # the top-right cell
    upsampled = plots._resize(attention, 64, 96)
    assert upsampled.shape == (64, 96)
    row, col = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert row < 16 and col >= 72  # inside the top-right cell's pixels
    # Bilinear: the cell's pixel-centre block keeps the value 1.
    assert upsampled[:8, 84:].min() == pytest.approx(1.0)


def test_training_curves_and_save_figure(tmp_path):
    history = {"epoch": [0, 1, 2], "loss": [1.0, 0.7, 0.5], "val_mAP": [0.2, 0.4, 0.5]}
    path = plots.training_curves(history, tmp_path / "curves.png")
    assert _png(path) == _inches(10, 3.8)
    figure = plots.pyplot().figure(figsize=(3, 2), layout="constrained")
    figure.add_subplot().plot([0, 1], [1, 0])
    path = plots.save_figure(figure, tmp_path / "figure.png")
    assert _png(path) == _inches(3, 2)
    # Without a layout engine the PNG is cropped to what is drawn.
    figure = plots.pyplot().figure(figsize=(3, 2))
    figure.add_subplot().plot([0, 1], [1, 0])
    path = plots.save_figure(figure, tmp_path / "cropped.png")
    width, height = _png(path)
    assert width < _inches(3, 2)[0] and height < _inches(3, 2)[1]
