"""benchmarks/rescore_runs.py: a control run stays a control when it is
re-scored with its own graph, `counted` is the counted graph's formula, and a
run already re-scored is refused."""

import importlib.util
import pathlib

import numpy as np
import pytest

from kmlc import rescoring
from kmlc.graph import LabelGraph
from kmlc.metrics import mean_average_precision

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks/rescore_runs.py"


@pytest.fixture(scope="module")
def rescore_runs():
    spec = importlib.util.spec_from_file_location("rescore_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(seed=0, num_images=200, num_labels=6):
    rng = np.random.default_rng(seed)
    y = (rng.random((num_images, num_labels)) < 0.3).astype(np.uint8)
    y[:, 1] = y[:, 0]
    logits = 2.0 * (y - 0.5) + rng.normal(0, 1.5, y.shape)
    return y, logits


@pytest.mark.parametrize("control", [None, "identity", "shuffled"])
def test_own_keeps_the_control_and_counted_drops_it(rescore_runs, control):
    y, logits = _data()
    counted = LabelGraph.from_labels(y)
    graph = counted.with_strategy(counted.strategy, control=control)
    scores = rescore_runs.rescored_maps(logits, y, graph, [1.0])

    def by_hand(source):
        conditional, prior = rescoring.statistics(source)
        rescored = rescoring.rescore(logits, conditional, prior, 1.0)
        return 100 * mean_average_precision(y, rescored)

    assert scores["raw"] == pytest.approx(100 * mean_average_precision(y, logits))
    assert scores["counted g1"] == pytest.approx(by_hand(counted))
    assert scores["own g1"] == pytest.approx(by_hand(graph))
    if control == "identity":
        assert scores["own g1"] == pytest.approx(scores["raw"])
    else:
        assert scores["own g1"] != pytest.approx(scores["raw"])
    # Label 1 always comes with label 0: the counted graph helps here.
    assert scores["counted g1"] > scores["raw"]


def test_a_run_trained_with_rescoring_is_refused(rescore_runs, tmp_path):
    (tmp_path / "config.yaml").write_text(
        "data:\n  manifest: m.json\n  images: images\n  vocabulary: v.txt\n"
        "model:\n  preset: baseline\n  rescoring_gamma: 2.0\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"trained with re-scoring .*gamma=2\.0"):
        rescore_runs.run_logits(str(tmp_path))
