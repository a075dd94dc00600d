"""`model.rescoring_gamma` in a run: a fixed gamma is built in; `auto` is
chosen at the end on out-of-fold logits of the training split and added to
the final model, and both are recorded in metrics.json."""

import json
import logging
import types

import numpy as np
import pytest

import kmlc
from kmlc import data as data_lib
from kmlc import rescoring
from kmlc.data.sources import read_image_set
from kmlc.metrics import mean_average_precision
from kmlc.prediction import collect_scores
from kmlc.training import rescoring as training_rescoring
from tests.model_fixtures import scenes_config

CACHED = {"freeze_backbone": True, "cache_features": True}


def _validation_scores(model, config):
    _, validation = read_image_set(config.data)
    dataset = data_lib.make_dataset(validation, config.model.image_size, 16)
    return collect_scores(model, dataset)


def test_auto_gamma_is_chosen_on_the_training_split(scenes_dir, tmp_path, monkeypatch):
    seen = {}
    choose = rescoring.choose_gamma

    def one_gamma(logits, labels, graph):  # a one-point grid: gamma 1 is added
        seen["rows"], seen["graph"] = len(labels), graph
        return choose(logits, labels, graph, gammas=(1.0,))

    monkeypatch.setattr(training_rescoring.rescoring, "choose_gamma", one_gamma)
    config = scenes_config(
        scenes_dir,
        tmp_path / "run",
        model={**CACHED, "rescoring_gamma": "auto", "cache_views": 2},
        epochs=2,
        per_label_thresholds=False,  # best.keras stays the plain best epoch
    )
    kmlc.train(config)
    train_set, _ = read_image_set(config.data)
    assert seen["rows"] == len(train_set)  # one row an image: no validation
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    record = metrics["rescoring"]
    assert record["gamma"] == 1.0 and record["folds"] == 5
    assert list(record["out_of_fold_mAP"]) == ["1"]
    assert record["chosen_by"].startswith("auto: 5-fold out-of-fold")
    final = kmlc.load_model(str(tmp_path / "run" / "model.keras"))
    best = kmlc.load_model(str(tmp_path / "run" / "best.keras"))
    assert best.rescoring is None and final.rescoring.gamma == 1.0
    logits, labels = _validation_scores(final, config)
    plain, _ = _validation_scores(best, config)
    expected = rescoring.rescore(plain, *rescoring.statistics(seen["graph"]), 1.0)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert metrics["mAP"] == np.float64(mean_average_precision(labels, logits))


def test_pooled_features_take_the_first_view(tmp_path):
    from kmlc.feature_cache import FeatureCache

    maps = np.random.default_rng(0).normal(size=(6, 2, 3, 4)).astype(np.float16)
    (tmp_path / "c").mkdir()
    np.save(tmp_path / "c" / "features.npy", maps)
    np.save(tmp_path / "c" / "labels.npy", np.eye(6, 3, dtype=np.uint8))
    (tmp_path / "c" / "meta.json").write_text(json.dumps({"views": 2}))
    features, labels = training_rescoring.pooled_features(FeatureCache(tmp_path / "c"))
    np.testing.assert_allclose(
        features, maps[::2].astype(np.float32).mean(axis=(1, 2)), rtol=1e-6
    )
    np.testing.assert_array_equal(labels, np.eye(6, 3)[::2])


@pytest.mark.parametrize("fine_tune_epochs", [0, 1])
def test_a_fixed_gamma_is_built_in_and_recorded(scenes_dir, tmp_path, fine_tune_epochs):
    """Also through a frozen, cached stage and fine-tuning (README: gamma 1
    after fine-tuning)."""
    frozen = CACHED if fine_tune_epochs else {}
    config = scenes_config(
        scenes_dir,
        tmp_path / "run",
        model={"rescoring_gamma": 2.0, **frozen},
        epochs=1,
        fine_tune_epochs=fine_tune_epochs,
    )
    kmlc.train(config)
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 1 + fine_tune_epochs  # header, then an epoch a line
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["rescoring"] == {"gamma": 2.0, "chosen_by": "model.rescoring_gamma"}
    final = kmlc.load_model(str(tmp_path / "run" / "model.keras"))
    assert final.rescoring.gamma == 2.0


@pytest.mark.parametrize(
    "heads, gamma, fine_tune_epochs, warning",
    [
        (("cls",), "auto", 0, None),
        (("cls", "gcn", "fusion", "attention"), "auto", 0, "took 1.44 from full"),
        (("cls", "gcn", "fusion", "attention"), "auto", 6, "took 1.44 from full"),
        (("cls",), "auto", 6, "but this run fine-tunes the backbone"),
        (("cls", "gcn"), 1.0, 0, None),
        (("cls",), 1.0, 6, None),
    ],
)
def test_auto_warns_when_its_probes_are_not_the_runs_heads(
    heads, gamma, fine_tune_epochs, warning, caplog
):
    run = types.SimpleNamespace(
        model=types.SimpleNamespace(heads=heads),
        config=types.SimpleNamespace(
            model=types.SimpleNamespace(rescoring_gamma=gamma),
            fine_tune_epochs=fine_tune_epochs,
        ),
    )
    with caplog.at_level(logging.WARNING, logger="kmlc.train"):
        training_rescoring.warn_about_probes(run)
    if warning is None:
        assert not caplog.records
    else:
        assert len(caplog.records) == 1
        assert warning in caplog.text
