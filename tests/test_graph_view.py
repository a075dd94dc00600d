import json
import re

import numpy as np

from kmlc import graph_view
from kmlc.graph import LabelGraph


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
