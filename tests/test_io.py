"""kmlc.io: files appear whole or not at all."""

import json
import os
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


def test_remove_stale_temps_spares_other_files_and_young_temps(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    old = tmp_path / ".tmp-best.keras-0123.keras"
    old.write_text("x")
    stale_dir = tmp_path / ".tmp-3-abc"
    stale_dir.mkdir()
    (stale_dir / "saved_model.pb").write_text("x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(stale_dir, (past, past))
    young = tmp_path / ".tmp-now.json-99.json"
    young.write_text("x")
    removed = kmlc_io.remove_stale_temps(tmp_path, older_than_s=60)
    assert sorted(os.path.basename(p) for p in removed) == [
        ".tmp-3-abc",
        ".tmp-best.keras-0123.keras",
    ]
    assert sorted(os.listdir(tmp_path)) == [".tmp-now.json-99.json", "keep.txt"]
    assert kmlc_io.remove_stale_temps(tmp_path / "missing") == []
