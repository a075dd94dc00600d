"""Resuming a run: a killed run resumes from its backup, the best checkpoint
and early stopping continue across a resume, and an old output directory is
never taken for a run to resume."""

import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml

import kmlc
from kmlc import synthetic
from kmlc.plots import read_history
from kmlc.training.run_directory import monitored_per_epoch
from tests.model_fixtures import scenes_config
from tests.training.backups import write_backup

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def file_hash(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def weights_hash(path):
    """A hash of a `.keras` model's weights: what the best checkpoint holds
    (the run's end adds the per-label thresholds to the same weights)."""
    model = kmlc.load_model(path, compile=False)
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def tree_hashes(directory):
    """Every file under `directory` (relative path -> hash)."""
    directory = pathlib.Path(directory)
    return {
        str(path.relative_to(directory)): file_hash(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def run_command(config_path, log_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "kmlc.cli", "train", "--config", str(config_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log = log
    return process


def backup_epoch(output_dir):
    try:
        text = (output_dir / "backup" / "training_metadata.json").read_text()
        return json.loads(text)["epoch"]
    except (OSError, ValueError, KeyError):
        return None


def test_a_killed_run_resumes_from_its_backup(scenes_dir, tmp_path):
    output_dir = tmp_path / "run"
    config = scenes_config(scenes_dir, output_dir, epochs=5)
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")

    first = run_command(config_path, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 240
        while (backup_epoch(output_dir) or 0) < 2:
            assert first.poll() is None, (
                "the run ended before its backup held epoch 2:\n"
                + (tmp_path / "first.log").read_text()
            )
            assert time.monotonic() < deadline, "no backup of epoch 2 in time"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.log.close()
    assert first.returncode == -signal.SIGKILL
    killed_at = backup_epoch(output_dir)
    assert killed_at in (2, 3)
    best_before = max(read_history(output_dir / "history.csv")["val_mAP"])
    best_hash = weights_hash(output_dir / "best.keras")
    assert not (output_dir / "metrics.json").exists()

    second = run_command(config_path, tmp_path / "second.log")
    try:
        second.wait(240)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
        second.log.close()
    log = (tmp_path / "second.log").read_text()
    assert second.returncode == 0, log
    assert f"resuming from the backup in {output_dir} at epoch {killed_at + 1}" in log
    assert "Epoch 1/5" not in log  # no epoch ran twice

    history = read_history(output_dir / "history.csv")
    assert history["epoch"] == [0, 1, 2, 3, 4]
    assert not (output_dir / "backup").exists()
    metrics = json.loads((output_dir / "metrics.json").read_text())
    # best.keras is the best epoch's, before or after the kill.
    assert metrics["mAP"] >= best_before - 1e-6
    assert metrics["mAP"] == pytest.approx(max(history["val_mAP"]), abs=1e-5)
    # best.keras was replaced if and only if a resumed epoch beat the best
    # before the kill (the threshold carried across the resume): a lost
    # threshold replaces it without improvement, a lost checkpoint keeps it
    # despite one. (Both cases, made certain: the test below.)
    improved = max(history["val_mAP"][killed_at:]) > best_before
    assert (weights_hash(output_dir / "best.keras") != best_hash) == improved


def write_history(path, rows):
    lines = ["epoch,loss,skipped_images,val_loss,val_mAP"]
    lines += [f"{epoch},0.5,0,0.5,{value}" for epoch, value in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def sentinel_model(path, image_size=32):
    """A model of the scenes' labels, saved as an earlier run's best.keras."""
    model = kmlc.build_model(
        len(synthetic.LABELS),
        backbone="smallcnn",
        image_size=image_size,
        heads="baseline",
        label_names=list(synthetic.LABELS),
    )
    model.save(path)
    return weights_hash(path)


@pytest.mark.parametrize("best_before", [1.0, 0.0])
def test_a_resumed_run_replaces_the_best_checkpoint_only_by_a_better_one(
    scenes_dir, tmp_path, best_before
):
    """The interrupted run's best val_mAP is the resumed checkpoint's
    threshold: 1.0 (unbeatable) keeps the earlier best.keras, 0.0 (beaten by
    any model) has the resumed epoch's model replace it."""
    output_dir = tmp_path / "run"
    config = scenes_config(scenes_dir, output_dir, epochs=3)
    write_backup(config, 2)
    # Epochs 0 and 1 finished; epoch 2's row was written, its backup was not.
    rows = [(0, 0.0), (1, best_before), (2, 0.0)]
    write_history(output_dir / "history.csv", rows)
    best_hash = sentinel_model(output_dir / "best.keras")

    result = kmlc.train(config)

    assert len(result.history["loss"]) == 1  # only epoch 2 ran
    history = read_history(output_dir / "history.csv")
    assert history["epoch"] == [0, 1, 2]  # epoch 2's old row replaced
    assert history["val_mAP"][:2] == [0.0, best_before]
    resumed = history["val_mAP"][2]
    assert resumed == pytest.approx(result.history["val_mAP"][0])
    assert 0.0 < resumed < 1.0
    replaced = weights_hash(output_dir / "best.keras") != best_hash
    assert replaced == (best_before == 0.0)
    if best_before == 0.0:  # replaced by the resumed epoch's model
        best = keras.saving.load_model(output_dir / "best.keras")
        final = keras.saving.load_model(output_dir / "model.keras")
        for a, b in zip(best.get_weights(), final.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        metrics = json.loads((output_dir / "metrics.json").read_text())
        assert metrics["mAP"] == pytest.approx(resumed, abs=1e-5)
    assert not (output_dir / "backup").exists()


def test_a_resumed_run_continues_the_early_stopping_count(scenes_dir, tmp_path):
    """Epoch 0 scored 1.0 (unbeatable) and epoch 1 did not beat it: with
    patience 1 the resumed run stops after its first epoch, as the
    uninterrupted run would have, instead of counting anew."""
    output_dir = tmp_path / "run"
    config = scenes_config(scenes_dir, output_dir, epochs=6)
    write_backup(config, 2)
    write_history(output_dir / "history.csv", [(0, 1.0), (1, 0.3)])
    sentinel_model(output_dir / "best.keras")
    config.early_stopping_patience = 1

    result = kmlc.train(config)

    assert len(result.history["loss"]) == 1
    assert read_history(output_dir / "history.csv")["epoch"] == [0, 1, 2]


def test_monitored_per_epoch(tmp_path):
    path = tmp_path / "history.csv"
    write_history(path, [(0, 0.3), (1, 0.5), (3, 0.4)])  # epoch 2's row lost
    values = monitored_per_epoch(str(path), 4)
    assert values[:2] == [0.3, 0.5] and values[3] == 0.4
    assert np.isnan(values[2])
    assert all(np.isnan(monitored_per_epoch(str(tmp_path / "none.csv"), 2)))


def test_a_new_run_in_an_old_output_directory_starts_afresh(scenes_dir, tmp_path):
    """Without a backup, a run is new: with overwrite the old results go."""
    output_dir = tmp_path / "run"
    output_dir.mkdir()
    write_history(output_dir / "history.csv", [(i, 1.0) for i in range(4)])
    old_hash = sentinel_model(output_dir / "best.keras")
    for name in ("config.yaml", "labels.txt"):
        (output_dir / name).write_text(f"the earlier run's {name}\n")
    before = tree_hashes(output_dir)

    # Without overwrite a finished run's results are never lost, nor its
    # config and labels: the check comes before anything is written.
    with pytest.raises(FileExistsError, match="holds a finished run.*history.csv"):
        kmlc.train(scenes_config(scenes_dir, output_dir, epochs=2))
    assert tree_hashes(output_dir) == before

    config = scenes_config(scenes_dir, output_dir, epochs=2)
    config.overwrite = True
    result = kmlc.train(config)

    history = read_history(output_dir / "history.csv")
    assert history["epoch"] == [0, 1]
    np.testing.assert_allclose(history["val_mAP"], result.history["val_mAP"])
    assert file_hash(output_dir / "best.keras") != old_hash
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(max(history["val_mAP"]), abs=1e-5)
