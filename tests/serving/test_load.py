"""A small load: 8 concurrent clients x 10 requests, no errors (no timings)."""

import importlib.util
import pathlib

from tests.serving.conftest import MODEL_NAME

BENCHMARK = pathlib.Path(__file__).resolve().parents[2] / "benchmarks/serving_load.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("serving_load", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_eight_concurrent_clients_get_no_errors(server, png_images):
    report = load_benchmark().run_load(
        server.grpc_target, MODEL_NAME, png_images, clients=8, requests=10, batch=2
    )
    assert report["errors"] == 0, report["first_errors"]
    assert report["completed"] == report["requests"] == 80
