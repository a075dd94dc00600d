"""`kmlc.load_model`: clear errors that name the file."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kmlc
from tests import model_fixtures as fx


def test_loads_a_kmlc_model(tmp_path):
    model = fx.tiny_model("baseline")
    model.save(tmp_path / "m.keras")
    loaded = kmlc.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_array_equal(
        loaded.predict(fx.images(), verbose=0), model.predict(fx.images(), verbose=0)
    )


def test_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="Model file not found.*nope.keras"):
        kmlc.load_model(tmp_path / "nope.keras")


def test_names_a_file_that_is_not_a_keras_archive(tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match="Could not load a model from .*broken.keras"):
        kmlc.load_model(path)
    (tmp_path / "graph.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="Expected a .keras model file.*graph.npz"):
        kmlc.load_model(tmp_path / "graph.npz")


def test_names_a_model_that_is_not_kmlcs(tmp_path):
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="holds a Sequential, not a kmlc"):
        kmlc.load_model(tmp_path / "other.keras")


def test_loads_in_a_fresh_process_without_importing_the_whole_package(tmp_path):
    # `kmlc.saving` registers kmlc's classes by importing the modules that
    # define them, not `kmlc` (which would import training, export, ...).
    model = fx.tiny_model("full")
    model.compile(loss=kmlc.losses.AsymmetricLoss(), metrics="auto")
    model.save(tmp_path / "m.keras")
    expected = model.predict(fx.images(), verbose=0)
    np.save(tmp_path / "images.npy", fx.images())
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from kmlc.saving import load_model
        model = load_model({str(tmp_path / "m.keras")!r})
        np.save({str(tmp_path / "got.npy")!r},
                model.predict(np.load({str(tmp_path / "images.npy")!r}), verbose=0))
        print(type(model.loss).__name__)
        print(sorted(m for m in ("kmlc.training", "kmlc.export", "kmlc.export.lite")
                     if m in sys.modules))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["AsymmetricLoss", "[]"]
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), expected, atol=1e-6)
