"""The runnable scripts of `export/`, on a tiny model."""

import os
import runpy
import sys

import keras
import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kmlc.export import existing_versions
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx
from tests.conftest import REPO_ROOT

SCRIPTS = REPO_ROOT / "export"


@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return str(path)


def run_script(name, *argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), *argv])
    runpy.run_path(str(SCRIPTS / name), run_name="__main__")


def test_saved_model_script(keras_file, tmp_path, capsys, monkeypatch):
    run_script(
        "saved_model.py",
        "--model",
        keras_file,
        "--out",
        str(tmp_path),
        "--server-base-path",
        "/models",
        monkeypatch=monkeypatch,
    )
    version_dir, config_path = capsys.readouterr().out.splitlines()
    assert version_dir == os.path.join(str(tmp_path), "tiny", "1")
    assert existing_versions(tmp_path / "tiny") == [1]
    config = text_format.Parse(
        open(config_path, encoding="utf-8").read(),
        model_server_config_pb2.ModelServerConfig(),
    )
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path) == ("tiny", "/models/tiny")


def run_tflite_script(keras_file, out, modes, monkeypatch):
    run_script(
        "tflite.py",
        *("--model", keras_file, "--out", str(out), "--quantize", *modes),
        monkeypatch=monkeypatch,
    )


def test_tflite_script(keras_file, model, images, tmp_path, capsys, monkeypatch):
    run_tflite_script(keras_file, tmp_path, ["float32", "float16"], monkeypatch)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in lines] == ["float32", "float16"]
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    for mode, tolerance in (("float32", 1e-5), ("float16", 2e-3)):
        predictor = Predictor(tmp_path / f"tiny_{mode}.tflite")
        assert predictor.contract["quantize"] == mode
        np.testing.assert_allclose(
            predictor.logits(images),
            expected,
            atol=tolerance * np.abs(expected).max(),
        )


def test_tflite_script_int8_needs_calibration_images(keras_file, tmp_path, monkeypatch):
    # In this process (a subprocess costs a TensorFlow start-up): the error
    # names what is missing and nothing is written.
    with pytest.raises(ValueError, match="needs representative_data"):
        run_tflite_script(keras_file, tmp_path, ["int8"], monkeypatch)
    assert os.listdir(tmp_path) == []


def test_onnx_script(keras_file, model, tmp_path, capsys, monkeypatch):
    import onnxruntime

    out = str(tmp_path / "m.onnx")
    run_script(
        "onnx_model.py", "--model", keras_file, "--out", out, monkeypatch=monkeypatch
    )
    assert capsys.readouterr().out == out + "\n"
    images = fx.images(2, seed=4)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    (logits,) = onnxruntime.InferenceSession(out).run(["logits"], {"images": images})
    np.testing.assert_allclose(logits, expected, atol=1e-5 * np.abs(expected).max())
