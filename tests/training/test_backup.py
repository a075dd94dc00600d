"""The backup a killed run resumes from: written atomically, checked whole
before anything changes, and a broken one never costs the run's history
(issue 11, item 1)."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml

import kmlc
import kmlc.cli
from kmlc.plots import read_history
from kmlc.training import backup
from tests.model_fixtures import scenes_config
from tests.training.backups import compiled_model
from tests.training.backups import write_backup
from tests.training.test_resume import sentinel_model
from tests.training.test_resume import tree_hashes
from tests.training.test_resume import write_history


def weights_of(model):
    return [np.asarray(w) for w in model.weights]


@pytest.fixture()
def interrupted(scenes_dir, tmp_path):
    """A run interrupted after 3 of 5 epochs: history, best.keras, a backup
    of epochs 2 and 3 (as `Backup` writes it)."""
    config = scenes_config(scenes_dir, tmp_path / "run", epochs=5)
    (tmp_path / "run").mkdir()
    write_history(tmp_path / "run" / "history.csv", [(0, 0.2), (1, 0.3), (2, 0.4)])
    sentinel_model(tmp_path / "run" / "best.keras")
    model = write_backup(config, 2, 3)
    return config, model


def test_the_backup_layout_and_what_inspect_loads(interrupted):
    config, saved = interrupted
    directory = os.path.join(config.output_dir, "backup")
    assert sorted(os.listdir(directory)) == [
        "epoch-0002.weights.h5",
        "epoch-0003.weights.h5",
        "training_metadata.json",
        "training_metadata.json.bkp",
    ]
    with open(os.path.join(directory, "training_metadata.json")) as f:
        assert json.load(f) == {
            "epoch": 3,
            "batch": 0,
            "weights": "epoch-0003.weights.h5",
            "stage": "main",
        }
    fresh = compiled_model(config)
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(weights_of(fresh), weights_of(saved), strict=True)
    )
    checkpoint = backup.inspect(fresh, directory)
    assert checkpoint.epoch == 3
    for a, b in zip(weights_of(fresh), weights_of(saved), strict=True):
        np.testing.assert_array_equal(a, b)
    # A third save keeps two checkpoints.
    backup.save(saved, directory, 4)
    assert sorted(os.listdir(directory))[:2] == [
        "epoch-0003.weights.h5",
        "epoch-0004.weights.h5",
    ]


def test_a_save_killed_midway_leaves_the_last_backup_whole(interrupted, monkeypatch):
    config, model = interrupted
    directory = os.path.join(config.output_dir, "backup")
    before = tree_hashes(directory)

    def dies_midway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 4096)  # a partial HDF5 file
        raise KeyboardInterrupt  # as a kill would stop it

    monkeypatch.setattr(keras.Model, "save_weights", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        backup.save(model, directory, 4)
    assert tree_hashes(directory) == before  # no partial file either
    monkeypatch.undo()
    assert backup.inspect(compiled_model(config), directory).epoch == 3


def corrupt_like_issue_11(directory):
    """Unreadable metadata and .bkp, truncated latest.weights.h5 (Keras'
    layout, as the issue reproduced it)."""
    weights = directory / "latest.weights.h5"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        (directory / name).write_bytes(b"\x00\x17{not json")


@pytest.fixture()
def broken(interrupted):
    """The interrupted run's backup in Keras' layout, then corrupted."""
    config, model = interrupted
    directory = os.path.join(config.output_dir, "backup")
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    model.save_weights(os.path.join(directory, "latest.weights.h5"))
    with open(os.path.join(directory, "training_metadata.json"), "w") as f:
        json.dump({"epoch": 3, "batch": 0}, f)
    corrupt_like_issue_11(pathlib.Path(directory))
    return config


def test_a_corrupted_backup_stops_naming_the_file_and_changes_nothing(broken):
    config = broken
    before = tree_hashes(config.output_dir)
    with pytest.raises(backup.BackupError) as info:
        kmlc.train(config)
    message = str(info.value)
    metadata = os.path.join(config.output_dir, "backup", "training_metadata.json")
    assert f"{metadata} is unreadable" in message
    assert "No file was changed" in message
    assert "--set resume=newest-intact" in message
    assert tree_hashes(config.output_dir) == before  # history.csv included


def test_the_command_line_says_the_same_and_exits_2(broken, tmp_path, capsys):
    config = broken
    before = tree_hashes(config.output_dir)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert kmlc.cli.main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "training_metadata.json is unreadable" in err and "Traceback" not in err
    assert tree_hashes(config.output_dir) == before


def test_a_truncated_weights_file_is_named(interrupted):
    config, _ = interrupted
    weights = pathlib.Path(config.output_dir, "backup", "epoch-0003.weights.h5")
    weights.write_bytes(weights.read_bytes()[:2000])
    before = tree_hashes(config.output_dir)
    with pytest.raises(backup.BackupError, match=f"{weights} does not load"):
        kmlc.train(config)
    assert tree_hashes(config.output_dir) == before


def test_newest_intact_resumes_from_the_checkpoint_before(interrupted):
    config, _ = interrupted
    weights = pathlib.Path(config.output_dir, "backup", "epoch-0003.weights.h5")
    weights.write_bytes(weights.read_bytes()[:2000])
    # What a run killed while saving best.keras and its backup left behind.
    run_dir = pathlib.Path(config.output_dir)
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # temporaries name their writer's pid: this one has ended
    tag = f"{killed.pid}.{'0' * 32}"
    (run_dir / f".tmp-best.keras.{tag}.keras").write_bytes(b"PK\x03\x04")
    (run_dir / "backup" / f".tmp-epoch-0004.weights.h5.{tag}.weights.h5").touch()
    config.resume = "newest-intact"
    result = kmlc.train(config)
    assert not list(run_dir.glob(".tmp-*"))
    # Epochs 2, 3 and 4 ran (epoch 2's old row replaced); 0 and 1 kept.
    assert len(result.history["loss"]) == 3
    history = read_history(os.path.join(config.output_dir, "history.csv"))
    assert history["epoch"] == [0, 1, 2, 3, 4]
    assert history["val_mAP"][:2] == [0.2, 0.3]
    assert not os.path.exists(os.path.join(config.output_dir, "backup"))


def test_newest_intact_with_nothing_intact_is_an_error(broken):
    config = broken
    config.resume = "newest-intact"
    before = tree_hashes(config.output_dir)
    with pytest.raises(backup.BackupError, match="No checkpoint in it is intact"):
        kmlc.train(config)
    assert tree_hashes(config.output_dir) == before


def test_resume_takes_only_the_known_policies(scenes_dir, tmp_path):
    config = scenes_config(scenes_dir, tmp_path / "run", resume="latest")
    with pytest.raises(ValueError) as info:
        config.validate()
    assert str(info.value) == (
        "resume must be one of ('backup', 'newest-intact'). Received: resume='latest'"
    )
