"""`kmlc export`: each format through the command line, and its flags."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kmlc.export import existing_versions
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx

LABELS = fx.LABEL_NAMES


@pytest.fixture(scope="module")
def model():
    return fx.tiny_model(seed=0, label_names=LABELS)


@pytest.fixture(scope="module")
def keras_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "tiny.keras"
    model.save(path)
    return str(path)


def random_images(batch, seed=0):
    return fx.images(batch, seed=seed)


def test_cli_savedmodel_prints_only_the_version_dir(keras_file, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kmlc.cli", "export", "--model", keras_file]
        + ["--out", str(tmp_path), "--name", "corel"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == os.path.join(str(tmp_path), "corel", "1") + "\n"
    loaded = tf.saved_model.load(result.stdout.strip())
    images = random_images(2)
    model = keras.saving.load_model(keras_file)
    np.testing.assert_allclose(
        loaded.signatures["serving_images"](images=tf.constant(images))["logits"],
        keras.ops.convert_to_numpy(model(images, training=False)),
        atol=1e-5,
    )


def run_cli(capsys, *argv):
    from kmlc.cli import main

    code = main(["export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_models_config(path):
    return text_format.Parse(
        path.read_text(encoding="utf-8"), model_server_config_pb2.ModelServerConfig()
    )


def test_cli_models_config_serves_the_exported_model(keras_file, tmp_path, capsys):
    code, stdout, err = run_cli(
        capsys, "--model", keras_file, "--out", str(tmp_path), "--models-config"
    )
    assert code == 0, err
    # The name defaults to the model file's stem.
    assert stdout == os.path.join(str(tmp_path), "tiny", "1") + "\n"
    config = read_models_config(tmp_path / "tiny" / "models.config")
    (entry,) = config.model_config_list.config
    assert entry.name == "tiny"
    assert entry.base_path == str(tmp_path / "tiny")
    assert entry.model_platform == "tensorflow"
    policy = entry.model_version_policy
    assert policy.WhichOneof("policy_choice") == "latest"
    assert policy.latest.num_versions == 1
    # The file beside the versions is not taken for one.
    assert existing_versions(entry.base_path) == [1]

    # In a container the server sees the base directory elsewhere.
    code, stdout, err = run_cli(
        capsys,
        "--model",
        keras_file,
        "--out",
        str(tmp_path),
        "--models-config",
        "--server-base-path",
        "/models",
    )
    assert code == 0, err
    assert stdout == os.path.join(str(tmp_path), "tiny", "2") + "\n"
    (entry,) = read_models_config(
        tmp_path / "tiny" / "models.config"
    ).model_config_list.config
    assert (entry.name, entry.base_path) == ("tiny", "/models/tiny")
    assert existing_versions(tmp_path / "tiny") == [1, 2]


def test_cli_onnx(keras_file, tmp_path, capsys):
    import onnxruntime

    out = str(tmp_path / "m.onnx")
    code, stdout, _ = run_cli(
        capsys, "--model", keras_file, "--format", "onnx", "--out", out
    )
    assert code == 0
    assert stdout == out + "\n"
    session = onnxruntime.InferenceSession(out)
    images = random_images(2)
    model = keras.saving.load_model(keras_file)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    (logits,) = session.run(["logits"], {"images": images})
    np.testing.assert_allclose(logits, expected, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize(
    "quantize, flags, int8_weights",
    [
        ("float16", (), None),  # no int8 weights to speak of
        ("dynamic", (), True),
        ("dynamic", ("--float-weights",), False),
    ],
)
def test_cli_tflite(keras_file, tmp_path, capsys, quantize, flags, int8_weights):
    out = str(tmp_path / f"{quantize}.tflite")
    code, stdout, err = run_cli(
        capsys,
        "--model",
        keras_file,
        "--format",
        "tflite",
        "--quantize",
        quantize,
        *flags,
        "--out",
        out,
    )
    assert code == 0, err
    assert stdout == out + "\n"
    predictor = Predictor(out)
    assert predictor.contract["quantize"] == quantize
    assert predictor.contract.get("int8_weights") is int8_weights
    assert predictor.label_names == LABELS


def test_cli_tflite_int8_calibrates_on_a_manifest(
    keras_file, tmp_path, capsys, corel5k_dir
):
    samples = json.loads((corel5k_dir / "train.json").read_text())["samples"][:12]
    manifest = tmp_path / "calibration.json"
    manifest.write_text(json.dumps({"samples": samples}))
    out = str(tmp_path / "int8.tflite")
    code, stdout, err = run_cli(
        capsys,
        "--model",
        keras_file,
        "--format",
        "tflite",
        "--quantize",
        "int8",
        "--manifest",
        str(manifest),
        "--images",
        str(corel5k_dir / "images"),
        "--vocabulary",
        str(corel5k_dir / "vocabulary.txt"),
        "--num-calibration-samples",
        "10",
        "--int8-heads",
        "--out",
        out,
    )
    assert code == 0, err
    assert stdout == out + "\n"
    predictor = Predictor(out)
    assert predictor.contract["quantize"] == "int8"
    assert predictor.contract["float_heads"] is False
    assert predictor.contract["int8_weights"] is True
    assert predictor.predict(random_images(1)).shape == (1, len(LABELS))


def test_cli_int8_without_calibration_data(keras_file, tmp_path, capsys):
    code, stdout, err = run_cli(
        capsys,
        "--model",
        keras_file,
        "--format",
        "tflite",
        "--quantize",
        "int8",
        "--out",
        str(tmp_path / "m.tflite"),
    )
    assert code == 2
    assert stdout == ""
    assert "needs representative_data" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--format", "onnx", "--quantize", "int8"],
            "--quantize only apply to --format tflite",
        ),
        (
            ["--format", "tflite", "--name", "x"],
            "--name only apply to --format savedmodel",
        ),
        (
            ["--format", "onnx", "--version", "3", "--models-config"],
            "--version, --models-config only apply to --format savedmodel",
        ),
        (
            ["--server-base-path", "/models"],
            "--server-base-path is the base path written in models.config: it "
            "needs --models-config. Received: --server-base-path /models",
        ),
        (["--format", "tflite", "--csv", "x.csv"], "used by --quantize int8 only"),
        (
            ["--format", "tflite", "--quantize", "int8", "--manifest", "m.json"],
            "--manifest needs --images",
        ),
        (["--format", "onnx", "--int8-heads"], "--int8-heads only apply to"),
        (["--format", "tflite", "--int8-heads"], "--int8-heads needs --quantize int8"),
        (
            ["--format", "tflite", "--quantize", "float16", "--float-weights"],
            "--float-weights applies to --quantize dynamic or int8",
        ),
    ],
)
def test_cli_bad_flags(keras_file, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # the inputs exist: the flags are what is wrong
    for name in ("x.csv", "m.json"):
        (tmp_path / name).write_text("")
    code, stdout, err = run_cli(
        capsys, "--model", keras_file, "--out", str(tmp_path / "x"), *argv
    )
    assert code == 2
    assert stdout == ""
    assert message in err


def test_cli_missing_model(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "--model", str(tmp_path / "no.keras"), "--out", str(tmp_path)
    )
    assert code == 2
    assert f"--model: no such file or directory: {tmp_path / 'no.keras'}" in err
