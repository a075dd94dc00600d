"""kmlc.io: files appear whole or not at all."""

import json
import os
import subprocess
import sys
import time

import pytest

from kmlc import io as kmlc_io


def test_writers_replace_the_target(tmp_path):
    path = tmp_path / "sub" / "a.json"
    kmlc_io.write_json(path, {"a": 1})
    kmlc_io.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    kmlc_io.write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    kmlc_io.write_text(tmp_path / "c.txt", "é\n")
    assert (tmp_path / "c.txt").read_text(encoding="utf-8") == "é\n"
    kmlc_io.copy_file(tmp_path / "c.txt", tmp_path / "d.txt")
    assert (tmp_path / "d.txt").read_text(encoding="utf-8") == "é\n"
    assert sorted(os.listdir(tmp_path)) == ["b.bin", "c.txt", "d.txt", "sub"]


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "best.keras"
    path.write_bytes(b"old model")
    with pytest.raises(KeyboardInterrupt):
        with kmlc_io.atomic_path(path) as temp:
            assert temp.endswith(".keras")  # Keras chooses the format by suffix
            with open(temp, "wb") as f:
                f.write(b"half a new mo")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old model"
    assert os.listdir(tmp_path) == ["best.keras"]


def test_the_temporary_directory_is_removed_on_failure(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with kmlc_io.atomic_path(tmp_path / "cache", suffix="") as temp:
            os.makedirs(os.path.join(temp, "inner"))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_save_model_writes_keras_files_and_weights(tmp_path):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kmlc_io.save_model(model, tmp_path / "m.keras")
    kmlc_io.save_model(model, tmp_path / "m.weights.h5")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(reloaded(x), model(x))
    copy = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    copy.load_weights(tmp_path / "m.weights.h5")
    np.testing.assert_allclose(copy(x), model(x))
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "m.weights.h5"]


def _dead_pid():
    """The pid of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_remove_stale_temps_removes_dead_writers_and_old_temps_only(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    hex_id = "0" * 32
    # A killed writer's file and directory (their process has ended).
    dead = _dead_pid()
    orphan = tmp_path / f".tmp-best.keras.{dead}.{hex_id}.keras"
    orphan.write_text("x")
    orphan_dir = tmp_path / f".tmp-3.{dead}.{hex_id}"
    orphan_dir.mkdir()
    (orphan_dir / "saved_model.pb").write_text("x")
    # A writer still at work (this process's parent is alive), and one
    # whose name carries no pid but which is a day old.
    alive = tmp_path / f".tmp-now.json.{os.getppid()}.{hex_id}.json"
    alive.write_text("x")
    ancient = tmp_path / ".tmp-old-layout-0123.keras"
    ancient.write_text("x")
    past = time.time() - 2 * 24 * 3600
    os.utime(ancient, (past, past))
    removed = kmlc_io.remove_stale_temps(tmp_path)
    assert sorted(os.path.basename(p) for p in removed) == sorted(
        [orphan.name, orphan_dir.name, ancient.name]
    )
    assert sorted(os.listdir(tmp_path)) == [alive.name, "keep.txt"]
    assert kmlc_io.remove_stale_temps(tmp_path / "missing") == []


def test_remove_stale_temps_for_one_target(tmp_path):
    dead, hex_id = _dead_pid(), "f" * 32
    mine = tmp_path / f".tmp-m.tflite.{dead}.{hex_id}.tflite"
    other = tmp_path / f".tmp-other.onnx.{dead}.{hex_id}.onnx"
    mine.write_text("x")
    other.write_text("x")
    assert kmlc_io.remove_stale_temps(tmp_path, target="m.tflite") == [str(mine)]
    assert other.exists()


def test_temporary_names_carry_the_writer(tmp_path):
    name = os.path.basename(kmlc_io.temp_path_beside(tmp_path / "a.keras"))
    assert name.startswith(f".tmp-a.keras.{os.getpid()}.") and name.endswith(".keras")


def test_the_next_write_removes_a_killed_writers_temporary(tmp_path):
    orphan = tmp_path / f".tmp-model.tflite.{_dead_pid()}.{'a' * 32}.tflite"
    orphan.write_bytes(b"half")
    kmlc_io.write_bytes(tmp_path / "model.tflite", b"whole")
    assert os.listdir(tmp_path) == ["model.tflite"]
