"""The REST endpoint (TF Serving's API) and `kmlc.serving.RestClient`."""

import base64
import http.client
import json

import numpy as np
import pytest

from kmlc.serving import Client
from kmlc.serving import RestClient
from kmlc.serving import ServingError
from tests.serving.conftest import LABELS
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import encode
from tests.serving.conftest import expected_scores
from tests.serving.conftest import random_pixels

PNG = encode(random_pixels(1, seed=0)[0])


def b64(data):
    return {"b64": base64.b64encode(data).decode("ascii")}


def call(server, method, path, body=None, raw=None):
    """`(status, decoded JSON)` of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    data = raw if raw is not None else None if body is None else json.dumps(body)
    connection.request(method, path, body=data)
    answer = connection.getresponse()
    status, payload = answer.status, json.loads(answer.read())
    connection.close()
    return status, payload


@pytest.fixture(scope="module")
def rest(server):
    return RestClient(server.rest_url, MODEL_NAME)


def test_rest_client_gives_the_models_scores(rest, models, pixels, png_images):
    outputs = rest.predict_raw(png_images)
    np.testing.assert_allclose(
        outputs["scores"], expected_scores(models[0], pixels), atol=1e-5
    )
    assert all(list(row) == LABELS for row in outputs["label_names"])


def test_rest_client_ranks_like_the_grpc_client(server, rest, png_images):
    with Client(server.grpc_target, MODEL_NAME) as client:
        want = client.predict(png_images, top_k=3)
    got = rest.predict(png_images, top_k=3)
    assert [[label for label, _ in row] for row in got] == [
        [label for label, _ in row] for row in want
    ]
    np.testing.assert_allclose(
        [[score for _, score in row] for row in got],
        [[score for _, score in row] for row in want],
        atol=1e-6,
    )


def test_rest_client_float_signature(server, models, pixels):
    rest = RestClient(server.rest_url, MODEL_NAME, signature="serving_images")
    outputs = rest.predict_raw(pixels.astype(np.float32))
    np.testing.assert_allclose(
        outputs["scores"], expected_scores(models[0], pixels), atol=1e-5
    )


def test_rest_metadata_and_status_match_grpc(server, rest):
    with Client(server.grpc_target, MODEL_NAME) as client:
        assert rest.metadata() == client.metadata()
        assert rest.status() == client.status()


def test_status_json_has_tf_servings_shape(server):
    status, payload = call(server, "GET", f"/v1/models/{MODEL_NAME}")
    assert status == 200
    assert payload == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    status, payload = call(server, "GET", f"/v1/models/{MODEL_NAME}/versions/1")
    assert status == 200 and payload["model_version_status"][0]["version"] == "1"


def test_metadata_json_has_tf_servings_shape(server):
    status, payload = call(server, "GET", f"/v1/models/{MODEL_NAME}/metadata")
    assert status == 200
    assert payload["model_spec"] == {
        "name": MODEL_NAME,
        "signature_name": "",
        "version": "1",
    }
    default = payload["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert default["inputs"]["images"]["dtype"] == "DT_STRING"
    assert default["method_name"] == "tensorflow/serving/predict"


OUTPUT_NAMES = ["decisions", "label_names", "logits", "scores"]


@pytest.mark.parametrize(
    "make_body, answer_key",
    [
        pytest.param(
            lambda images: {"instances": [b64(i) for i in images]},
            "predictions",
            id="row",
        ),
        pytest.param(
            lambda images: {"instances": [{"images": b64(i)} for i in images]},
            "predictions",
            id="row-named",
        ),
        pytest.param(
            lambda images: {"inputs": [b64(i) for i in images]},
            "outputs",
            id="columnar",
        ),
        pytest.param(
            lambda images: {"inputs": {"images": [b64(i) for i in images]}},
            "outputs",
            id="columnar-named",
        ),
    ],
)
def test_predict_body_forms(server, models, pixels, png_images, make_body, answer_key):
    # TF Serving's REST API: "instances" (row format) is answered with
    # "predictions", a list with one object per instance; "inputs"
    # (columnar) with "outputs", one object of whole-batch columns.
    status, payload = call(
        server, "POST", f"/v1/models/{MODEL_NAME}:predict", make_body(png_images)
    )
    assert status == 200
    assert list(payload) == [answer_key]
    if answer_key == "predictions":
        rows = payload["predictions"]
        assert isinstance(rows, list) and len(rows) == len(png_images)
        assert all(sorted(row) == OUTPUT_NAMES for row in rows)
        scores = [row["scores"] for row in rows]
        names = [row["label_names"] for row in rows]
    else:
        columns = payload["outputs"]
        assert isinstance(columns, dict) and sorted(columns) == OUTPUT_NAMES
        scores, names = columns["scores"], columns["label_names"]
    np.testing.assert_allclose(scores, expected_scores(models[0], pixels), atol=1e-5)
    assert names == [LABELS] * len(png_images)


def test_float_instances_are_converted_to_the_signatures_dtype(server, models, pixels):
    body = {"signature_name": "serving_images", "instances": pixels.tolist()}
    status, payload = call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", body)
    assert status == 200 and list(payload) == ["predictions"]
    np.testing.assert_allclose(
        [row["scores"] for row in payload["predictions"]],
        expected_scores(models[0], pixels),
        atol=1e-5,
    )
    body = {"signature_name": "serving_images", "inputs": pixels.tolist()}
    status, payload = call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", body)
    assert status == 200 and list(payload) == ["outputs"]
    np.testing.assert_allclose(
        payload["outputs"]["scores"], expected_scores(models[0], pixels), atol=1e-5
    )


def rest_errors(png):
    predict = f"/v1/models/{MODEL_NAME}:predict"
    good = [b64(png)]
    return [
        (
            "unknown model",
            "POST",
            "/v1/models/nope:predict",
            {"instances": good},
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "unknown signature",
            "POST",
            predict,
            {"signature_name": "typo", "instances": good},
            400,
            "Valid signatures: ['serving_default', 'serving_images']",
        ),
        (
            "not an image",
            "POST",
            predict,
            {"instances": [good[0], b64(b"text")]},
            400,
            "Instance 1 of input 'images'",
        ),
        ("empty batch", "POST", predict, {"instances": []}, 400, "empty batch"),
        (
            "wrong shape",
            "POST",
            predict,
            {"signature_name": "serving_images", "instances": [[[[0.0] * 3] * 4] * 4]},
            400,
            "Received: DT_FLOAT with shape [1, 4, 4, 3]",
        ),
        (
            "ragged floats",
            "POST",
            predict,
            {"signature_name": "serving_images", "instances": [[1.0], [1.0, 2.0]]},
            400,
            "rectangular",
        ),
        (
            "text for floats",
            "POST",
            predict,
            {"signature_name": "serving_images", "instances": ["a"]},
            400,
            "list of numbers for DT_FLOAT",
        ),
        (
            "bad base64",
            "POST",
            predict,
            {"instances": [{"b64": "%%%"}]},
            400,
            "not valid base64",
        ),
        (
            "number for bytes",
            "POST",
            predict,
            {"instances": [3]},
            400,
            'must be a string or {"b64": "..."}',
        ),
        (
            "both forms",
            "POST",
            predict,
            {"instances": good, "inputs": good},
            400,
            "exactly one of 'instances'",
        ),
        (
            "neither form",
            "POST",
            predict,
            {"instance": good},
            400,
            "exactly one of 'instances'",
        ),
        (
            "wrong input name",
            "POST",
            predict,
            {"instances": [{"image": good[0]}]},
            400,
            "must name the signature's inputs ['images']",
        ),
        ("not an object", "POST", predict, [1, 2], 400, "must be a JSON object"),
        (
            "version not served",
            "POST",
            f"/v1/models/{MODEL_NAME}/versions/3:predict",
            {"instances": good},
            404,
            "Specific(tiny, 3)",
        ),
        (
            "classify",
            "POST",
            f"/v1/models/{MODEL_NAME}:classify",
            {"examples": []},
            501,
            "classify is not implemented",
        ),
        (
            "malformed path",
            "GET",
            "/v2/whatever",
            None,
            400,
            "Malformed request: GET /v2/whatever",
        ),
        ("no model name", "GET", "/v1/models", None, 400, "Missing model name"),
        ("unknown model status", "GET", "/v1/models/nope", None, 404, "Latest(nope)"),
        (
            "unknown version status",
            "GET",
            f"/v1/models/{MODEL_NAME}/versions/5",
            None,
            404,
            "Could not find version 5",
        ),
    ]


@pytest.mark.parametrize(
    "method, path, body, status, fragment",
    [pytest.param(*case[1:], id=case[0]) for case in rest_errors(PNG)],
)
def test_rest_errors_have_status_and_message(
    server, method, path, body, status, fragment
):
    got_status, payload = call(server, method, path, body)
    assert got_status == status
    assert fragment in payload["error"]
    good = {"instances": [b64(PNG)]}
    assert call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", good)[0] == 200


def test_ragged_strings_are_a_bad_request(server):
    body = {"instances": [["a"], ["a", "b"]]}
    status, payload = call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", body)
    assert status == 400 and "cannot be read as DT_STRING" in payload["error"]


def test_an_unexpected_server_failure_is_500(server, monkeypatch):
    def broken(version=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.store, "servable", broken)
    status, payload = call(server, "GET", f"/v1/models/{MODEL_NAME}/metadata")
    assert status == 500 and payload["error"] == "RuntimeError: disk on fire"


def test_a_post_without_content_length_is_a_bad_request(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=10)
    connection.putrequest("POST", f"/v1/models/{MODEL_NAME}:predict")
    connection.endheaders()
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    connection.close()
    assert answer.status == 400
    assert "needs a Content-Length header" in payload["error"]


def test_invalid_json_is_a_bad_request(server):
    status, payload = call(
        server, "POST", f"/v1/models/{MODEL_NAME}:predict", raw="{not json"
    )
    assert status == 400 and "JSON Parse error" in payload["error"]


def test_body_over_the_limit_is_413(server, png_images):
    huge = {"instances": [b64(b"\0" * (1 << 20))]}  # > 1 MiB once in base64
    status, payload = call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", huge)
    assert status == 413
    assert "larger than the server's limit of 1048576 bytes" in payload["error"]
    good = {"instances": [b64(png_images[0])]}
    assert call(server, "POST", f"/v1/models/{MODEL_NAME}:predict", good)[0] == 200


def test_rest_client_errors_say_what_the_server_answered(server):
    rest = RestClient(server.rest_url, "nope")
    with pytest.raises(ServingError) as info:
        rest.status()
    error = info.value
    assert error.http_status == 404 and error.code == "NOT_FOUND"
    assert "Latest(nope)" in error.details
    assert server.rest_url in str(error) and "HTTP 404" in str(error)


def test_rest_client_refuses_a_bad_url():
    with pytest.raises(ValueError, match="must be an http"):
        RestClient("localhost:8501", MODEL_NAME)
