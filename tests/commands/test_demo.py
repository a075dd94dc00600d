"""`kmlc demo` on a tiny setting: the files others rely on, and the table."""

import json

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from kmlc import data
from kmlc.cli import main
from kmlc.commands.demo import format_table

HEADS = {"baseline": ("cls",), "full": ("cls", "gcn", "fusion", "attention")}


def _validation_map(model_path, data_dir, image_size):
    """scikit-learn's mAP of a saved model on the demo's validation split
    (the split the demo's config asks for: 15%, split seed 0)."""
    images = data.read_manifest(
        data_dir / "manifest.json", data_dir / "images", data_dir / "vocabulary.txt"
    )
    _, validation = data.split(images, 0.15, seed=0)
    model = keras.saving.load_model(model_path)
    scores, labels = [], []
    for batch_images, batch_labels in data.make_dataset(validation, image_size, 64):
        scores.append(np.asarray(model.predict_on_batch(batch_images)))
        labels.append(np.asarray(batch_labels))
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    assert len(labels) == len(validation)
    present = labels.sum(axis=0) > 0
    per_label = [
        average_precision_score(labels[:, d], scores[:, d])
        for d in np.nonzero(present)[0]
    ]
    return float(np.mean(per_label)), model, scores


DEMO_ARGS = {"num_images": 120, "epochs": 1, "image_size": 32}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`(out, printed)` of one `kmlc demo` on the tiny setting, seed 0."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            ["demo", "--out", str(out), "--images", str(DEMO_ARGS["num_images"])]
            + ["--epochs", str(DEMO_ARGS["epochs"])]
            + ["--image-size", str(DEMO_ARGS["image_size"])]
        )
    assert code == 0
    return out, printed.getvalue()


def test_demo_writes_models_metrics_and_plots(demo_run):
    out, printed = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"baseline", "full"}
    # Each reported mAP is the saved model's mAP on the validation split,
    # recomputed here with scikit-learn from the model's own predictions.
    scores = {}
    for preset in ("baseline", "full"):
        run = json.loads((out / "runs" / preset / "metrics.json").read_text())
        assert run["mAP"] == metrics[preset]["mAP"]
        expected, model, scores[preset] = _validation_map(
            out / "runs" / preset / "model.keras", out / "data", 32
        )
        assert metrics[preset]["mAP"] == pytest.approx(expected, abs=1e-5), preset
        assert model.heads == HEADS[preset]
    # The top-level model is the full run's model.
    _, model, top_scores = _validation_map(out / "model.keras", out / "data", 32)
    assert model.heads == HEADS["full"]
    np.testing.assert_allclose(top_scores, scores["full"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(scores["baseline"], scores["full"], atol=1e-3)
    for plot in ("ap_comparison.png", "attention_maps.png", "label_graph.png"):
        assert (out / plot).stat().st_size > 1000
    assert "baseline" in printed and "full" in printed
    assert str(out / "model.keras") in printed


def test_table_shows_each_preset_side_by_side():
    table = format_table(
        {
            "baseline": {
                "mAP": 0.5,
                "CP": 0.1,
                "CR": 0.2,
                "CF1": 0.3,
                "OP": 0.4,
                "OR": 0.5,
                "OF1": 0.6,
                "N+": 7,
            },
            "full": {
                "mAP": 0.75,
                "CP": 0.1,
                "CR": 0.2,
                "CF1": 0.3,
                "OP": 0.4,
                "OR": 0.5,
                "OF1": 0.6,
                "N+": 9,
            },
        }
    )
    lines = table.splitlines()
    assert lines[0].split() == ["baseline", "full"]
    assert lines[1].split() == ["mAP", "0.500", "0.750"]
    assert lines[-1].split()[-2:] == ["7", "9"]


def test_the_same_seed_prints_the_same_comparison(demo_run, tmp_path):
    # The demo's input pipeline is deterministic (shuffling, augmentation):
    # a seed gives the same figures each run, so two runs can be compared.
    # Run again (the baseline preset alone), it reproduces the first run's
    # baseline figures exactly.
    from kmlc.demo import DemoOptions
    from kmlc.demo import run_demo

    out, _ = demo_run
    first = json.loads((out / "metrics.json").read_text())
    options = DemoOptions(**DEMO_ARGS, presets=("baseline",), seed=0)
    second = run_demo(tmp_path / "second", options)
    assert second["baseline"]["mAP"] == first["baseline"]["mAP"]
    assert second["baseline"] == first["baseline"]
