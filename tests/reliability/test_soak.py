"""Issue 11's soak test: `kmlc serve` under 8 concurrent clients.

For `SOAK_SECONDS` (env `KMLC_SOAK_SECONDS`, default 30) eight client
threads on 127.0.0.1 send, in turn, good gRPC and REST requests and every
malformed kind of `test_serving_abuse.py`, while two new versions are
copied into the model base path (hot reloads). Checked: no good request
fails (and each gets one of the two models' scores), every bad one is
refused with its code, the server ends on the last version, and the
server process's resident memory stays within `RSS_GROWTH_BOUND` (300
MiB) of what it held after warming up, and under 2 GiB.
"""

import base64
import http.client
import itertools
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.reliability.abuse import huge_png
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version
from tests.serving.conftest import encode
from tests.serving.conftest import expected_scores
from tests.serving.conftest import random_pixels

psutil = pytest.importorskip("psutil")

SOAK_SECONDS = float(os.environ.get("KMLC_SOAK_SECONDS", "30"))
CLIENTS = 8
# The server may grow by at most this much over its size after warm-up.
RSS_GROWTH_BOUND = 300 * 1024 * 1024
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PREDICT = f"/v1/models/{MODEL_NAME}:predict"


# === The requests ===


def _request(tensor, signature="", name=MODEL_NAME):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    request.inputs["images"].CopyFrom(tensor)
    return request


def _strings(images):
    return tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])


def _b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


class Requests:
    """Every kind of request, built once: `(kind, send(client) -> outcome)`.

    An outcome is `("ok", scores)` or the refusal's code: a gRPC status name
    or `"HTTP <status>"`.
    """

    def __init__(self, pixels):
        self.pixels = pixels
        self.pngs = [encode(image) for image in pixels]
        self.floats = pixels.astype(np.float32)
        nan = self.floats.copy()
        nan[0, 0, 0, 0] = np.nan
        unfilled = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.5])
        for size in (4000, 96, 96, 3):
            unfilled.tensor_shape.dim.add().size = size
        tiny = encode(random_pixels(1, seed=5, size=1)[0])
        huge = huge_png()
        self.grpc = {
            "good-grpc-png": (_request(_strings(self.pngs)), "ok"),
            "good-grpc-floats": (
                _request(tf.make_tensor_proto(self.floats), "serving_images"),
                "ok",
            ),
            "grpc-unfilled-shape": (
                _request(unfilled, "serving_images"),
                "INVALID_ARGUMENT",
            ),
            "grpc-10000-images": (
                _request(_strings([tiny] * 10_000)),
                "INVALID_ARGUMENT",
            ),
            "grpc-huge-png": (_request(_strings([huge])), "INVALID_ARGUMENT"),
            "grpc-nan": (
                _request(tf.make_tensor_proto(nan), "serving_images"),
                "INVALID_ARGUMENT",
            ),
            "grpc-not-an-image": (_request(_strings([b"text"])), "INVALID_ARGUMENT"),
            "grpc-unknown-model": (
                _request(_strings(self.pngs[:1]), name="nope"),
                "NOT_FOUND",
            ),
        }
        good_body = json.dumps({"instances": [_b64(png) for png in self.pngs]})
        nan_body = json.dumps(
            {"signature_name": "serving_images", "instances": nan.tolist()}
        )
        self.rest = {
            "good-rest": (PREDICT, good_body, {}, "ok"),
            "good-rest-text-plain": (
                PREDICT,
                good_body,
                {"Content-Type": "text/plain"},
                "ok",
            ),
            "rest-nested-json": (
                PREDICT,
                '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}",
                {},
                "HTTP 400",
            ),
            "rest-5000-digit-version": (
                f"/v1/models/{MODEL_NAME}/versions/{'9' * 5000}:predict",
                good_body,
                {},
                "HTTP 400",
            ),
            "rest-60000-instances": (
                PREDICT,
                json.dumps({"instances": [_b64(b"x")] * 60_000}),
                {},
                "HTTP 400",
            ),
            "rest-nan": (PREDICT, nan_body, {}, "HTTP 400"),
            "rest-huge-png": (
                PREDICT,
                json.dumps({"instances": [_b64(huge)]}),
                {},
                "HTTP 400",
            ),
        }
        self.kinds = [
            *self.grpc,
            *self.rest,
            "rest-stalled-body",
            "rest-cut-body",
        ]

    def expected(self, kind):
        if kind in self.grpc:
            return self.grpc[kind][1]
        if kind in self.rest:
            return self.rest[kind][3]
        return {"rest-stalled-body": "HTTP 408", "rest-cut-body": "HTTP 400"}[kind]

    def send(self, kind, stub, rest_port):
        if kind in ("rest-stalled-body", "rest-cut-body"):
            return _short_body(rest_port, cut=kind == "rest-cut-body")
        if kind in self.grpc:
            return _grpc(stub, self.grpc[kind][0])
        path, body, headers, _ = self.rest[kind]
        return _rest(rest_port, path, body, headers)


def _grpc(stub, request, timeout=30):
    try:
        response = stub.Predict(request, timeout=timeout)
    except grpc.RpcError as error:
        return error.code().name, error.details()
    return "ok", tf.make_ndarray(response.outputs["scores"])


def _rest(port, path, body, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        payload = json.loads(answer.read())
    finally:
        connection.close()
    if answer.status != 200:
        return f"HTTP {answer.status}", payload.get("error")
    return "ok", np.array([row["scores"] for row in payload["predictions"]])


def _short_body(port, cut):
    """A body shorter than its Content-Length: the client waits (the server
    times out) or closes its side (`cut`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"
            '{"instances": '.encode()
        )
        if cut:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    status_line = b"".join(chunks).split(b"\r\n", 1)[0].decode()
    return f"HTTP {status_line.split()[1]}", status_line


# === The server ===


def _start_server(base):
    command = [sys.executable, "-m", "kmlc.cli", "serve", "--model-base", str(base)]
    command += ["--grpc-port", "0", "--rest-port", "0", "--poll-interval", "0.5"]
    command += ["--rest-read-timeout", "1"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    ports = {}
    for line in process.stdout:
        words = line.split()
        if words and words[0] in ("gRPC", "REST"):
            ports[words[0]] = int(words[1].split("/v1/")[0].rsplit(":", 1)[1])
        if "REST" in ports:
            break
    if set(ports) != {"gRPC", "REST"}:
        process.kill()
        raise RuntimeError(f"kmlc serve did not start: {ports}")
    threading.Thread(target=lambda: process.stdout.read(), daemon=True).start()
    return process, ports["gRPC"], ports["REST"]


class Memory:
    """Samples a process's resident memory every 0.2 s, in a thread."""

    def __init__(self, pid):
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


# === The test ===


def test_soak(exported, models, tmp_path):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    pixels = random_pixels(2, seed=11)
    answers = [expected_scores(model, pixels) for model in models]
    requests = Requests(pixels)
    process, grpc_port, rest_port = _start_server(base)
    try:
        channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{grpc_port}",
                options=[("grpc.max_send_message_length", 64 << 20)],
            )
            for _ in range(CLIENTS)
        ]
        stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in channels]
        for kind in requests.kinds:  # warm up: every path runs once
            requests.send(kind, stubs[0], rest_port)
        baseline = psutil.Process(process.pid).memory_info().rss
        counts = {kind: 0 for kind in requests.kinds}
        failures = []
        lock = threading.Lock()
        stop = time.monotonic() + SOAK_SECONDS

        def client(index):
            kinds = itertools.cycle(requests.kinds[index:] + requests.kinds[:index])
            while time.monotonic() < stop:
                kind = next(kinds)
                try:
                    outcome, detail = requests.send(kind, stubs[index], rest_port)
                except Exception as error:  # noqa: BLE001 - any failure counts
                    outcome, detail = type(error).__name__, str(error)
                expected = requests.expected(kind)
                good = outcome == expected
                if good and outcome == "ok":
                    good = any(
                        np.allclose(detail, answer, atol=1e-5) for answer in answers
                    )
                with lock:
                    counts[kind] += 1
                    if not good:
                        failures.append((kind, expected, outcome, str(detail)[:200]))

        with Memory(process.pid) as memory:
            threads = [
                threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)
            ]
            for thread in threads:
                thread.start()
            time.sleep(SOAK_SECONDS / 3)
            copy_version(exported[1], base, 2)  # hot reload to model B
            time.sleep(SOAK_SECONDS / 3)
            copy_version(exported[0], base, 3)  # and to model A again
            for thread in threads:
                thread.join()
        status = _wait_for_version(rest_port, "3")
        good = sum(count for kind, count in counts.items() if kind.startswith("good"))
        print(
            f"\nsoak: {sum(counts.values())} requests in {SOAK_SECONDS:g} s, "
            f"{good} good, {len(failures)} failed; RSS {baseline / 2**20:.0f} MiB "
            f"after warm-up, peak {memory.peak / 2**20:.0f} MiB; counts {counts}"
        )
        assert failures == []
        assert all(count > 0 for count in counts.values()), counts
        assert status[0] == {"version": "3", "state": "AVAILABLE"}
        assert memory.peak - baseline < RSS_GROWTH_BOUND
        assert memory.peak < 2 * 2**30  # the 2 GB server
        for channel in channels:
            channel.close()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for_version(port, version, timeout=60):
    """The model's status once `version` is served, or the last one seen.

    The server polls every 0.5 s, but loading the new version can take
    seconds on a loaded 2-core machine.
    """
    deadline = time.monotonic() + timeout
    status = _rest_status(port)
    while status[0]["version"] != version and time.monotonic() < deadline:
        time.sleep(0.5)
        status = _rest_status(port)
    return status


def _rest_status(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", f"/v1/models/{MODEL_NAME}")
    payload = json.loads(connection.getresponse().read())
    connection.close()
    return [
        {"version": entry["version"], "state": entry["state"]}
        for entry in payload["model_version_status"]
    ]
