"""Deadlines and retries: UNAVAILABLE is retried with backoff, nothing else."""

import concurrent.futures
import logging
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmlc.serving import Client
from kmlc.serving import DevServer
from kmlc.serving import RestClient
from kmlc.serving import ServingError
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version


class ScriptedService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers each Predict with the next scripted status, then OK."""

    def __init__(self, script, delay=0.0):
        self.script = list(script)
        self.delay = delay
        self.calls = 0

    def Predict(self, request, context):
        self.calls += 1
        time.sleep(self.delay)
        if self.script:
            context.abort(self.script.pop(0), "scripted failure")
        response = predict_pb2.PredictResponse()
        response.outputs["scores"].CopyFrom(
            tf.make_tensor_proto(np.array([[0.25, 0.75]], np.float32))
        )
        response.outputs["label_names"].CopyFrom(
            tf.make_tensor_proto(np.array([[b"a", b"b"]], object))
        )
        return response


@pytest.fixture
def scripted():
    """A fake PredictionService: `scripted(script, delay)` -> (service, target)."""
    servers = []

    def start(script, delay=0.0):
        service = ScriptedService(script, delay)
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            service, server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return service, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unavailable_is_retried_until_it_succeeds(scripted, caplog):
    unavailable = grpc.StatusCode.UNAVAILABLE
    service, target = scripted([unavailable, unavailable])
    with caplog.at_level(logging.INFO, logger="kmlc.serving.client.grpc_client"):
        with Client(target, MODEL_NAME, retries=3, backoff=0.01) as client:
            assert client.predict([b"x"]) == [[("b", 0.75), ("a", 0.25)]]
    assert service.calls == 3
    assert caplog.text.count("UNAVAILABLE") == 2
    assert "retry 2 of 3" in caplog.text


def test_the_last_unavailable_gives_a_clear_error(scripted):
    service, target = scripted([grpc.StatusCode.UNAVAILABLE] * 5)
    started = time.monotonic()
    with Client(target, MODEL_NAME, retries=2, backoff=0.1) as client:
        with pytest.raises(ServingError) as info:
            client.predict([b"x"])
    assert service.calls == 3
    assert time.monotonic() - started >= 0.1 + 0.2  # exponential backoff
    error = info.value
    assert error.code == "UNAVAILABLE" and error.attempts == 3
    assert f"Predict for model 'tiny' at {target} failed after 3 attempts" in str(error)
    assert "scripted failure" in str(error)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_other_errors_are_not_retried(scripted, code):
    service, target = scripted([code])
    with Client(target, MODEL_NAME, retries=3, backoff=0.01) as client:
        with pytest.raises(ServingError) as info:
            client.predict([b"x"])
    assert service.calls == 1
    assert info.value.code == code.name and info.value.attempts == 1


def test_deadline_exceeded_is_not_retried(scripted):
    service, target = scripted([], delay=1.0)
    with Client(target, MODEL_NAME, timeout=0.2, retries=3, backoff=0.01) as client:
        with pytest.raises(ServingError) as info:
            client.predict([b"x"])
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert service.calls == 1


def test_nothing_listening_gives_unavailable_after_the_retries():
    target = f"127.0.0.1:{free_port()}"
    with Client(target, MODEL_NAME, retries=2, backoff=0.01) as client:
        with pytest.raises(ServingError) as info:
            client.status()
    assert info.value.code == "UNAVAILABLE" and info.value.attempts == 3
    assert target in str(info.value)


def test_a_server_started_late_is_reached_by_retrying(
    exported, png_images, tmp_path, caplog
):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    port = free_port()
    server = DevServer(base, grpc_port=port, rest_port=None)
    starter = threading.Timer(1.0, server.start)
    starter.start()
    try:
        with caplog.at_level(logging.INFO, logger="kmlc.serving.client.grpc_client"):
            with Client(
                f"127.0.0.1:{port}", MODEL_NAME, retries=10, backoff=0.2
            ) as client:
                ranked = client.predict(png_images[:1])
        assert len(ranked[0]) == 5
        assert "UNAVAILABLE" in caplog.text  # it did have to retry
    finally:
        starter.join()
        server.stop(grace=0)


def test_rest_client_retries_a_refused_connection_then_fails_clearly():
    url = f"http://127.0.0.1:{free_port()}"
    rest = RestClient(url, MODEL_NAME, retries=2, backoff=0.01)
    with pytest.raises(ServingError) as info:
        rest.status()
    assert info.value.code == "UNAVAILABLE" and info.value.attempts == 3
    assert "ConnectionRefusedError" in info.value.details
    assert url in str(info.value)
