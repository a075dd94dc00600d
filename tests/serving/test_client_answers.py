"""The clients check the answers they get, and the REST client retries 503."""

import concurrent.futures
import http.server
import json
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmlc.serving import Client
from kmlc.serving import RestClient
from kmlc.serving import ServingError


class ScoresOnly(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers every Predict with a `scores` output only."""

    def Predict(self, request, context):
        response = predict_pb2.PredictResponse()
        response.outputs["scores"].CopyFrom(
            tf.make_tensor_proto(np.array([[0.5]], np.float32))
        )
        return response


def test_grpc_client_reports_missing_outputs():
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        ScoresOnly(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}", "m") as client:
            with pytest.raises(
                ServingError, match=r"lacks the outputs \['label_names'\]"
            ):
                client.predict([b"x"])
            assert list(client.predict_raw([b"x"])) == ["scores"]
    finally:
        server.stop(0)


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers POSTs with the next `(status, JSON)` of the server's script."""

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status, payload = self.server.script.pop(0)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_script():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.script = []
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_rest_client_retries_503_then_succeeds(http_script):
    row = {"scores": [0.2, 0.7], "label_names": ["a", "b"]}
    http_script.script = [
        (503, {"error": "busy"}),
        (503, {"error": "busy"}),
        (200, {"predictions": [row]}),
    ]
    url = f"http://127.0.0.1:{http_script.server_address[1]}"
    rest = RestClient(url, "m", retries=2, backoff=0.01)
    assert rest.predict([b"x"]) == [[("b", 0.7), ("a", 0.2)]]
    assert http_script.script == []


@pytest.mark.parametrize(
    "answer, match",
    [
        ((200, {"outputs": [1]}), "has no 'predictions' list"),
        ((200, {"predictions": [{"logits": [1.0]}]}), "lacks the output 'scores'"),
        ((503, {"error": "still busy"}), r"HTTP 503 \(UNAVAILABLE\): still busy"),
        ((400, "not json at all"), "not json at all"),
    ],
)
def test_rest_client_reports_bad_answers(http_script, answer, match):
    http_script.script = [answer]
    url = f"http://127.0.0.1:{http_script.server_address[1]}"
    with pytest.raises(ServingError, match=match):
        RestClient(url, "m", retries=0).predict([b"x"])


def test_rest_client_single_output_comes_back_as_outputs(http_script):
    http_script.script = [(200, {"predictions": [[0.1, 0.9]]})]
    url = f"http://127.0.0.1:{http_script.server_address[1]}"
    outputs = RestClient(url, "m").predict_raw([b"x"])
    np.testing.assert_allclose(outputs["outputs"], [[0.1, 0.9]])
