"""Tests for kmlc.train: a real training run on Corel-5k images, its outputs,
and bad input (resuming: test_resume.py)."""

import hashlib
import json
import math
import pathlib
import re

import keras
import numpy as np
import pytest
import yaml
from PIL import Image
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score

import kmlc
import kmlc.cli
from kmlc import data as data_lib
from kmlc.config import load_config
from kmlc.data.sources import read_image_set
from kmlc.plots import read_history
from kmlc.thresholds import choose_thresholds
from tests.model_fixtures import scenes_config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def validation_keys(keys, fraction, seed=0):
    """The documented split rule, written again here: a key goes to
    validation when the first 8 bytes of blake2b("{seed}:{key}") read as a
    fraction of 2**64 fall below `fraction`."""
    chosen = set()
    for key in keys:
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        if int.from_bytes(digest, "big") < int(fraction * 2**64):
            chosen.add(key)
    return chosen


def sklearn_map(y_true, scores):
    """Mean AP over the labels with positives, by scikit-learn."""
    present = np.flatnonzero(y_true.sum(axis=0) > 0)
    return float(
        np.mean([average_precision_score(y_true[:, d], scores[:, d]) for d in present])
    )


def is_png(path):
    with Image.open(path) as image:
        return image.format == "PNG" and min(image.size) > 50


# A real run.

COREL_IMAGES = 360
COREL_VALIDATION_FRACTION = 0.25
COREL_EPOCHS = 4


@pytest.fixture(scope="module")
def corel_run(corel5k_dir, tmp_path_factory):
    """A short run on the first 360 Corel-5k images, from a YAML config."""
    out = tmp_path_factory.mktemp("corel_run")
    config = {
        "data": {
            "format": "manifest",
            "manifest": str(corel5k_dir / "train.json"),
            "images": str(corel5k_dir / "images"),
            "vocabulary": str(corel5k_dir / "vocabulary.txt"),
            "max_images": COREL_IMAGES,
            "validation_fraction": COREL_VALIDATION_FRACTION,
            "augment": False,
            "cache": True,
        },
        "model": {"preset": "gcn", "backbone": "smallcnn", "image_size": 64},
        "optimizer": {"name": "adamw", "learning_rate": 3e-3, "warmup_epochs": 0},
        "epochs": COREL_EPOCHS,
        "batch_size": 32,
        "tensorboard": False,
        "output_dir": str(out / "run"),
    }
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    config = load_config(path)
    result = kmlc.train(config)
    return config, result, out / "run"


@pytest.fixture(scope="module")
def corel_split(corel5k_dir, corel5k_labels):
    """`(y_train, y_validation, validation_keys)` of the run, computed here."""
    y, _ = corel5k_labels
    samples = json.loads((corel5k_dir / "train.json").read_text("utf-8"))["samples"]
    keys = [sample["image_name"] for sample in samples[:COREL_IMAGES]]
    chosen = validation_keys(keys, COREL_VALIDATION_FRACTION)
    mask = np.array([key in chosen for key in keys])
    y = y[:COREL_IMAGES].astype(np.float32)
    return y[~mask], y[mask], [key for key in keys if key in chosen]


def test_the_run_writes_every_output(corel_run):
    _, result, run_dir = corel_run
    names = {path.name for path in run_dir.iterdir()}
    expected = {
        "config.yaml",
        "labels.txt",
        "label_graph.npz",
        "label_graph.png",
        "best.keras",
        "model.keras",
        "history.csv",
        "training_curves.png",
        "metrics.json",
        "per_label_ap.png",
    }
    assert expected <= names
    assert "backup" not in names  # removed at the end of a finished run
    assert "tensorboard" not in names  # tensorboard: false
    for name in ("training_curves.png", "per_label_ap.png", "label_graph.png"):
        assert is_png(run_dir / name), name
    assert result.model_path == str(run_dir / "model.keras")
    assert result.skipped_images == []


def test_the_saved_config_reloads_to_the_same_config(corel_run):
    config, _, run_dir = corel_run
    assert load_config(run_dir / "config.yaml") == config


def test_the_training_loss_goes_down(corel_run):
    _, result, run_dir = corel_run
    history = read_history(run_dir / "history.csv")
    assert history["epoch"] == list(range(COREL_EPOCHS))
    losses = history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.all(np.diff(losses) < 0), losses
    # The CSV and the returned history agree.
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)
    np.testing.assert_allclose(result.history["val_mAP"], history["val_mAP"], rtol=1e-6)


def test_the_model_beats_a_constant_predictor(corel_run, corel_split):
    _, result, run_dir = corel_run
    y_train, y_validation, keys = corel_split
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["num_images"] == len(keys) == len(y_validation)
    # Scores = label frequencies in training: the best a model that ignores
    # the image can do (AP is per label, so this is each label's base rate).
    frequencies = y_train.mean(axis=0)
    constant = sklearn_map(y_validation, np.tile(frequencies, (len(keys), 1)))
    assert metrics["mAP"] > constant + 0.08, (metrics["mAP"], constant)
    assert metrics["num_labels_with_positives"] == int((y_validation.sum(0) > 0).sum())
    assert result.metrics["mAP"] == pytest.approx(metrics["mAP"])


@pytest.fixture(scope="module")
def final_model(corel_run, corel_split, corel5k_dir):
    """The run's model.keras and its logits on the run's validation images,
    read again from the manifest in the split's order."""
    _, _, run_dir = corel_run
    _, y_validation, keys = corel_split
    model = keras.saving.load_model(run_dir / "model.keras")
    images = data_lib.read_manifest(
        corel5k_dir / "train.json",
        corel5k_dir / "images",
        corel5k_dir / "vocabulary.txt",
    )
    position = {key: i for i, key in enumerate(images.keys)}
    subset = images.subset(np.array([position[key] for key in keys]))
    np.testing.assert_array_equal(subset.labels, y_validation)
    dataset = data_lib.make_dataset(subset, 64, 32)
    return model, np.concatenate([model.predict_on_batch(x) for x, _ in dataset])


def test_metrics_are_the_final_model_on_the_validation_split(
    corel_run, corel_split, final_model
):
    """metrics.json's mAP is scikit-learn's on model.keras's validation scores;
    model.keras is the best epoch's (its mAP is the best in history.csv)."""
    _, _, run_dir = corel_run
    y_validation = corel_split[1]
    model, logits = final_model
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(sklearn_map(y_validation, logits), abs=1e-6)
    history = read_history(run_dir / "history.csv")
    assert metrics["mAP"] == pytest.approx(max(history["val_mAP"]), abs=1e-5)
    best = keras.saving.load_model(run_dir / "best.keras")
    for a, b in zip(best.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert model.label_names == [
        line for line in (run_dir / "labels.txt").read_text().splitlines() if line
    ]
    assert model.heads == ("cls", "gcn")
    assert tuple(model.image_size) == (64, 64)


def test_the_label_graph_is_counted_on_the_training_split_only(
    corel_run, corel_split, corel5k_labels
):
    _, _, run_dir = corel_run
    y_train, y_validation, _ = corel_split
    _, names = corel5k_labels
    saved = kmlc.LabelGraph.load(run_dir / "label_graph.npz")
    expected = kmlc.LabelGraph.from_labels(y_train, strategy="threshold", tau=0.4)
    assert saved.num_samples == len(y_train)
    np.testing.assert_array_equal(saved.pair_counts, expected.pair_counts)
    np.testing.assert_array_equal(saved.label_counts, expected.label_counts)
    np.testing.assert_array_equal(saved.adjacency, expected.adjacency)
    assert list(saved.label_names) == names
    # Counting all images would differ: the validation labels add pairs.
    everything = kmlc.LabelGraph.from_labels(np.concatenate([y_train, y_validation]))
    assert not np.array_equal(saved.pair_counts, everything.pair_counts)
    assert not np.array_equal(saved.label_counts, everything.label_counts)


# Bad input.


@pytest.mark.parametrize("field", ["images", "manifest", "vocabulary"])
def test_a_missing_data_path_names_its_field_and_writes_nothing(
    scenes_dir, tmp_path, field
):
    config = scenes_config(scenes_dir, tmp_path / "run", epochs=1)
    missing = str(tmp_path / "not_here")
    setattr(config.data, field, missing)
    with pytest.raises(FileNotFoundError) as info:
        kmlc.train(config)
    assert str(info.value) == (
        f"data.{field} not found: {missing}. A relative path in a config file "
        f"is read from the config file's folder; --set data.{field}=PATH reads "
        f"it from elsewhere. Received: data.{field}={missing!r}"
    )
    assert not (tmp_path / "run").exists()


def test_a_shipped_config_on_a_clone_without_the_data(tmp_path, capsys, monkeypatch):
    """The shipped config's relative data path, read from the config's own
    folder, names the field and the override when the data is elsewhere."""
    configs = tmp_path / "clone" / "training" / "configs"
    configs.mkdir(parents=True)
    text = (REPO_ROOT / "training" / "configs" / "corel5k.yaml").read_text()
    (configs / "corel5k.yaml").write_text(text)
    monkeypatch.delenv("KMLC_COREL5K", raising=False)
    monkeypatch.chdir(tmp_path)
    code = kmlc.cli.main(
        [
            "train",
            "--config",
            str(configs / "corel5k.yaml"),
            "--set",
            f"output_dir={tmp_path / 'run'}",
        ]
    )
    err = capsys.readouterr().err
    expected = tmp_path / "shared" / "data" / "corel5k" / "train.json"
    assert code == 2
    assert f"data.manifest not found: {expected}." in err
    assert "--set data.manifest=PATH" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_model_that_cannot_be_built_writes_nothing(scenes_dir, tmp_path):
    config = scenes_config(scenes_dir, tmp_path / "run", model={"image_size": 8})
    with pytest.raises(ValueError, match=r"image_size=\(8, 8\) is too small"):
        kmlc.train(config)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("verbose", [1, 0])
def test_one_line_an_epoch_with_the_steps_known_from_the_first(
    scenes_dir, tmp_path, capsys, caplog, verbose
):
    """Keras' bar knows the epoch's steps from epoch 1 (no "Unknown"); kmlc
    logs its own epoch line only when Keras prints none; the skipped count
    is no metric."""
    config = scenes_config(scenes_dir, tmp_path / "run", epochs=2, verbose=verbose)
    train_set, _ = read_image_set(config.data)
    steps = math.ceil(len(train_set) / config.batch_size)
    capsys.readouterr()
    with caplog.at_level("INFO", logger="kmlc.train"):
        result = kmlc.train(config)
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # no colours
    epoch_lines = [m for m in caplog.messages if re.match(r"epoch \d", m)]
    if verbose:
        assert "Unknown" not in out
        first_epoch = out.split("Epoch 2/2")[0]
        assert f"1/{steps} " in first_epoch and f"{steps}/{steps} " in first_epoch
        assert epoch_lines == []
    else:
        assert out == ""
        assert [line.split(":")[0] for line in epoch_lines] == [
            "epoch 1/2",
            "epoch 2/2",
        ]
    assert "skipped_images" not in result.history
    header = (tmp_path / "run" / "history.csv").read_text().splitlines()[0]
    assert header == "epoch,loss,val_loss,val_mAP"


def test_a_label_outside_the_vocabulary_is_named(scenes_dir, tmp_path, capsys):
    samples = json.loads((scenes_dir / "manifest.json").read_text())["samples"]
    samples[5]["image_labels"] = samples[5]["image_labels"] + ["unicorn"]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"samples": samples}))
    config = scenes_config(scenes_dir, tmp_path / "run", epochs=1)
    config.data.manifest = str(manifest)
    with pytest.raises(ValueError) as info:
        kmlc.train(config)
    message = str(info.value)
    assert "'unicorn'" in message and str(manifest) in message
    assert "sample 5" in message and samples[5]["image_name"] in message
    # The command line says the same, with exit code 2 and no traceback.
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config.to_dict()))
    capsys.readouterr()
    assert kmlc.cli.main(["train", "--config", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert "'unicorn'" in err and "Traceback" not in err


def test_a_split_without_validation_images_is_an_error(scenes_dir, tmp_path):
    keys = [f"{i:05d}.png" for i in range(4)]
    # The rule itself says none of the first 4 keys goes to validation.
    assert not validation_keys(keys, 0.01)
    config = scenes_config(scenes_dir, tmp_path / "run", epochs=1)
    config.data.max_images = 4
    config.data.validation_fraction = 0.01
    with pytest.raises(ValueError) as info:
        kmlc.train(config)
    message = str(info.value)
    assert "The split left 4 training and 0 validation images" in message
    assert "data.validation_fraction" in message


def test_the_final_model_carries_per_label_thresholds(
    corel_run, corel_split, final_model
):
    """Chosen on the validation split from model.keras's own scores, saved in
    model.keras and best.keras, and reported at 0.5 and at them (in-sample
    and cross-fitted)."""
    _, _, run_dir = corel_run
    y_validation = corel_split[1]
    model, logits = final_model
    scores = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = choose_thresholds(y_validation, scores)
    assert model.has_thresholds
    np.testing.assert_allclose(model.thresholds, expected, atol=1e-6)
    best = keras.saving.load_model(run_dir / "best.keras")
    np.testing.assert_array_equal(best.thresholds, model.thresholds)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["threshold"] == 0.5
    assert metrics["threshold_choice"] == {
        "min_positives": 1,
        "prior_positives": 10.0,
        "labels": int((y_validation.sum(axis=0) >= 1).sum()),
    }
    pooled = f1_score(y_validation.ravel(), (scores >= model.thresholds).ravel())
    assert metrics["model_thresholds"]["OF1"] == pytest.approx(pooled, abs=1e-4)
    fixed = f1_score(y_validation.ravel(), (scores >= 0.5).ravel())
    assert metrics["OF1"] == pytest.approx(fixed, abs=1e-4)
    assert set(metrics["model_thresholds_cross_fitted"]) == {
        "CP",
        "CR",
        "CF1",
        "OP",
        "OR",
        "OF1",
        "N+",
    }
    label = model.label_names[0]
    assert metrics["per_label"][label]["threshold"] == pytest.approx(
        float(model.thresholds[0])
    )


def test_per_label_thresholds_can_be_switched_off(scenes_dir, tmp_path):
    config = scenes_config(
        scenes_dir, tmp_path / "run", epochs=1, per_label_thresholds=False
    )
    result = kmlc.train(config)
    assert not kmlc.load_model(result.model_path).has_thresholds
    assert "model_thresholds" not in result.metrics
    assert "model_thresholds_cross_fitted" not in result.metrics
