"""`kmlc serve`: starts, answers, stops on SIGTERM; bad paths are reported."""

import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

from kmlc import cli
from kmlc.serving import Client
from kmlc.serving import RestClient
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version
from tests.serving.conftest import expected_scores

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_kmlc_serve_answers_and_stops_on_sigterm(
    exported, models, pixels, png_images, tmp_path
):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    command = [sys.executable, "-m", "kmlc.cli", "serve", "--model-base", str(base)]
    command += ["--grpc-port", "0", "--rest-port", "0", "--poll-interval", "0.5"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.strip().startswith("REST "):
                break
        banner = "".join(lines)
        assert f"model '{MODEL_NAME}' version 1" in banner, banner
        grpc_target = next(
            line.split()[1] for line in lines if line.strip().startswith("gRPC ")
        )
        rest_url = next(
            line.split()[1] for line in lines if line.strip().startswith("REST ")
        ).split("/v1/")[0]
        with Client(grpc_target, MODEL_NAME) as client:
            scores = client.predict_raw(png_images)["scores"]
        np.testing.assert_allclose(
            scores, expected_scores(models[0], pixels), atol=1e-5
        )
        assert RestClient(rest_url, MODEL_NAME).status()[0]["state"] == "AVAILABLE"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "kmlc serve: stopping" in out


def test_kmlc_serve_reports_a_missing_model_base(tmp_path, capsys):
    code = cli.main(
        ["serve", "--model-base", str(tmp_path / "nope"), "--grpc-port", "0"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "kmlc serve: error:" in err and "is not a directory" in err


def test_kmlc_serve_limit_flags(capsys):
    from kmlc.commands.serve import request_limits
    from kmlc.serving.server.limits import RequestLimits

    parser = cli.build_parser()
    base = ["serve", "--model-base", "models/x"]
    defaults = RequestLimits()
    assert request_limits(parser.parse_args(base)) == defaults
    given = parser.parse_args(
        base + ["--max-batch-size", "8", "--max-request-pixels", "1000"]
    )
    assert request_limits(given) == RequestLimits(8, defaults.max_image_pixels, 1000)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for value in (
        defaults.max_batch_size,
        defaults.max_image_pixels,
        defaults.max_request_pixels,
    ):
        assert f"({value})" in help_text  # the help states the real defaults
    with pytest.raises(ValueError, match="max_batch_size must be a positive int"):
        request_limits(parser.parse_args(base + ["--max-batch-size", "0"]))
