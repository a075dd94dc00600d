"""Issue 11, items 2, 3 and 6: requests that cannot buy unbounded work.

Each test sends the abuse the issue reproduced (or the same at the tiny
model's 32 px) to a dev server on 127.0.0.1 and checks the code, the
message and that the answer came fast; then that a good request works.
"""

import base64
import http.client
import json
import socket
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmlc.serving import DevServer
from tests.reliability.abuse import huge_png
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version
from tests.serving.conftest import encode
from tests.serving.conftest import random_pixels

PNG = encode(random_pixels(1, seed=0)[0])
TINY_PNG = encode(random_pixels(1, seed=0, size=1)[0])


def start_server(exported, base, **options):
    copy_version(exported[0], base / MODEL_NAME, 1)
    options.setdefault("rest_read_timeout", 2.0)
    return DevServer(
        base / MODEL_NAME, MODEL_NAME, grpc_port=0, rest_port=0, **options
    ).start()


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    """A dev server with the default limits."""
    dev_server = start_server(exported, tmp_path_factory.mktemp("abuse"))
    yield dev_server
    dev_server.stop(grace=0)


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(
        server.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]
    )
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    channel.close()


def predict_request(tensor, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.model_spec.signature_name = signature
    request.inputs["images"].CopyFrom(tensor)
    return request


def images_request(images):
    return predict_request(
        tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])
    )


def refused(stub, request, timeout=10):
    """`(code, message, seconds)` of a request that must fail."""
    start = time.perf_counter()
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=timeout)
    return info.value.code(), info.value.details(), time.perf_counter() - start


def still_answers(stub):
    response = stub.Predict(images_request([PNG]), timeout=10)
    assert list(response.outputs["scores"].tensor_shape.dim)[0].size == 1


def rest(server, method, path, body=None, headers=None, timeout=20):
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.rest_port, timeout=timeout
    )
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    connection.request(method, path, body=data, headers=headers or {})
    answer = connection.getresponse()
    status, payload = answer.status, answer.read()
    connection.close()
    return status, payload


PREDICT = f"/v1/models/{MODEL_NAME}:predict"


def read_to_end(sock):
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


# === gRPC: what a tensor declares ===


def test_a_shape_the_values_do_not_fill_is_refused_fast(stub):
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.5])
    for size in (4000, 96, 96, 3):
        tensor.tensor_shape.dim.add().size = size
    assert tensor.ByteSize() < 64  # TensorFlow repeats the last value to fill
    code, message, seconds = refused(stub, predict_request(tensor, "serving_images"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and seconds < 2
    assert message == (
        "Input tensor 'images' declares shape [4000, 96, 96, 3] (110,592,000 "
        "elements, 110,592,000 values in float_val) but carries 1; send every "
        "value. Received: DT_FLOAT with shape [4000, 96, 96, 3] and 1 values in "
        "float_val"
    )
    still_answers(stub)


def test_a_batch_over_the_limit_is_refused_before_it_runs(stub):
    floats = tf.make_tensor_proto(random_pixels(65, seed=1).astype(np.float32))
    code, message, _ = refused(stub, predict_request(floats, "serving_images"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "a batch of 65 instances, over the server's limit of 64" in message
    code, message, seconds = refused(stub, images_request([TINY_PNG] * 10_000))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and seconds < 5
    assert "a batch of 10,000 instances, over the server's limit of 64" in message
    still_answers(stub)


def test_an_image_over_the_pixel_limit_is_never_decoded(stub, server):
    code, message, seconds = refused(stub, images_request([PNG, huge_png()]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and seconds < 5
    assert message.startswith(
        "Instance 1 of input 'images' (signature 'serving_default') is too "
        "large: the PNG is 20000x20000 px (400,000,000 pixels), over the "
        "server's limit of 40,000,000 (--max-image-pixels)."
    )
    status, payload = rest(server, "POST", PREDICT, {"instances": [b64(huge_png())]})
    assert status == 400 and "is too large: the PNG is 20000x20000" in str(payload)
    still_answers(stub)


def test_the_request_pixel_limit_counts_every_image(exported, tmp_path):
    from kmlc.serving.server.limits import RequestLimits

    limits = RequestLimits(max_request_pixels=20_000_000)
    with start_server(exported, tmp_path, limits=limits) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        images = [huge_png(3000, 3000)] * 3  # 9 Mpx each, 27 in all
        code, message, _ = refused(stub, images_request(images))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert message == (
            "The request's images hold 27,000,000 pixels (up to input 'images'), "
            "over the server's limit of 20,000,000 (--max-request-pixels); send "
            "fewer or smaller images. Received: 27,000,000 pixels"
        )
        still_answers(stub)
        channel.close()


def test_non_finite_floats_are_refused(stub, server):
    pixels = random_pixels(2, seed=3).astype(np.float32)
    pixels[1, 4, 5, 2] = np.nan
    code, message, _ = refused(
        stub, predict_request(tf.make_tensor_proto(pixels), "serving_images")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == (
        "Input 'images' of signature 'serving_images' holds NaN or infinite "
        "values; the model needs finite numbers. Received: nan at index [1, 4, 5, 2]"
    )
    body = json.dumps(
        {"signature_name": "serving_images", "instances": pixels.tolist()}
    )
    assert "NaN" in body  # Python writes the bare token TF Serving reads
    status, payload = rest(server, "POST", PREDICT, body.replace("NaN", "Infinity"))
    assert (
        status == 400 and "holds NaN or infinite values" in json.loads(payload)["error"]
    )


# === gRPC: the client's deadline ===


def test_work_stops_when_the_clients_deadline_has_passed(exported, tmp_path):
    with start_server(exported, tmp_path) as server:
        store = server.store
        ran = []
        servable = store.servable()
        for name, function in list(servable._functions.items()):
            servable._functions[name] = lambda f=function, **feeds: (
                ran.append(1),
                f(**feeds),
            )[1]
        slow_lookup = store.servable

        def slow(version=None):  # the server is busy before it can start
            time.sleep(1.0)
            return slow_lookup(version)

        store.servable = slow
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        code, _, seconds = refused(stub, images_request([PNG]), timeout=0.3)
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and seconds < 1
        time.sleep(1.5)  # the server has looked up the model by now
        assert ran == []  # and did not run it for a client that had gone
        store.servable = slow_lookup
        still_answers(stub)
        assert ran == [1]
        channel.close()


# === REST ===


def test_json_nested_100000_deep_is_a_bad_request(server):
    body = '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"
    status, payload = rest(server, "POST", PREDICT, body)
    assert status == 400
    assert json.loads(payload)["error"].startswith(
        "JSON Parse error: the document is nested too deeply"
    )


def test_a_5000_digit_version_is_a_bad_request(server):
    version = "9" * 5000
    for method, path, body in (
        (
            "POST",
            f"/v1/models/{MODEL_NAME}/versions/{version}:predict",
            {"instances": []},
        ),
        ("GET", f"/v1/models/{MODEL_NAME}/versions/{version}", None),
        ("GET", f"/v1/models/{MODEL_NAME}/versions/{version}/metadata", None),
    ):
        status, payload = rest(server, method, path, body)
        assert status == 400
        assert json.loads(payload)["error"] == (
            "Failed to convert version: 99999999999999999999...(5000 digits) to "
            "numeric."
        )
    status, _ = rest(server, "GET", f"/v1/models/{MODEL_NAME}/versions/{2**63}")
    assert status == 400


def test_a_body_shorter_than_its_content_length_does_not_hold_the_connection(
    server,
):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=20) as sock:
        sock.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
            '{"instances": '.encode()
        )
        start = time.perf_counter()
        answer = read_to_end(sock)  # the server closes the connection
        seconds = time.perf_counter() - start
        assert answer.startswith(b"HTTP/1.1 408 ") and seconds < 5  # timeout 2 s
        assert b"did not arrive within 2 s" in answer
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=20) as sock:
        head = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head.encode() + b"{")
        sock.shutdown(socket.SHUT_WR)  # the client gives up early
        answer = read_to_end(sock)
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert b"Received: 1 of 1000 bytes" in answer


def test_an_idle_connection_is_closed_after_the_read_timeout(server):
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=20) as sock:
        start = time.perf_counter()
        assert sock.recv(1) == b""
        assert time.perf_counter() - start < 5


def test_a_text_plain_body_is_read_as_json_like_tf_serving(server):
    # TF Serving's REST handler (http_rest_api_handler.cc) never looks at
    # the Content-Type: the dev server answers the same.
    body = json.dumps({"instances": [b64(PNG)]})
    answers = [
        rest(server, "POST", PREDICT, body, {"Content-Type": kind})
        for kind in (
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
        )
    ]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[0][1] == answers[1][1] == answers[2][1]


def test_non_finite_outputs_are_written_as_tf_serving_writes_them(server, monkeypatch):
    # TF Serving's json_tensor.cc writes NaN and infinities as the bare
    # JSON tokens NaN, Infinity and -Infinity.
    servable = server.store.servable()
    values = np.array([[np.nan, np.inf, -np.inf, 0.5]], np.float32)
    monkeypatch.setattr(servable, "run", lambda *args, **kwargs: {"scores": values})
    status, payload = rest(server, "POST", PREDICT, {"instances": [b64(PNG)]})
    assert status == 200
    assert payload == b'{"predictions": [[NaN, Infinity, -Infinity, 0.5]]}'


def test_60000_bad_instances_answer_fast_naming_the_first_few(exported, tmp_path):
    from kmlc.serving.server.limits import RequestLimits

    limits = RequestLimits(max_batch_size=100_000)
    with start_server(exported, tmp_path, limits=limits) as server:
        body = {"instances": [b64(b"x")] * 60_000}
        start = time.perf_counter()
        status, payload = rest(server, "POST", PREDICT, body)
        seconds = time.perf_counter() - start
        message = json.loads(payload)["error"]
        assert status == 400 and seconds < 10
        assert message == (
            "Instance 0 of input 'images' (signature 'serving_default') is not an "
            "image the server can read: not a PNG, JPEG, GIF, BMP or WebP image "
            "(1 bytes, no known signature). Instances [1, 2, 3, 4] (and maybe "
            "more) are bad too. Received: instance 0 = 1 bytes"
        )


def test_the_default_batch_limit_refuses_60000_instances_over_rest(server):
    body = {"instances": [b64(b"x")] * 60_000}
    status, payload = rest(server, "POST", PREDICT, body)
    assert status == 400
    assert json.loads(payload)["error"] == (
        "'instances' holds a batch of 60,000 instances, over the server's limit "
        "of 64 (--max-batch-size); send smaller batches. Received: 60,000 "
        "instances"
    )
