"""Malformed gRPC requests get the right code and message; the next works."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import encode
from tests.serving.conftest import random_pixels

PNG = encode(random_pixels(1, seed=0)[0])


@pytest.fixture(scope="module")
def stubs(server):
    channel = grpc.insecure_channel(
        server.grpc_target, options=[("grpc.max_send_message_length", 64 << 20)]
    )
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


def predict_request(images, name=MODEL_NAME, signature="", key="images", **spec):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for field, value in spec.items():
        if field == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, field, value)
    if isinstance(images, np.ndarray) and images.dtype != object:
        request.inputs[key].CopyFrom(tf.make_tensor_proto(images))
    else:
        request.inputs[key].CopyFrom(
            tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])
        )
    return request


def bad_requests(png):
    """`(id, request, code, fragments the message must hold)`."""
    cases = [
        (
            "unknown model",
            predict_request([png], name="nope"),
            grpc.StatusCode.NOT_FOUND,
            ["Servable not found", "nope", "'tiny'"],
        ),
        (
            "unknown signature",
            predict_request([png], signature="serving_typo"),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["serving_typo", "['serving_default', 'serving_images']"],
        ),
        (
            "wrong dtype",
            predict_request(np.zeros((1, 32, 32, 3), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["must be DT_STRING with shape [-1]", "DT_FLOAT with shape [1, 32, 32, 3]"],
        ),
        (
            "wrong shape",
            predict_request(
                np.zeros((1, 16, 16, 3), np.float32), signature="serving_images"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["[-1, 32, 32, 3]", "Received: DT_FLOAT with shape [1, 16, 16, 3]"],
        ),
        (
            "float64 for float32",
            predict_request(
                np.zeros((1, 32, 32, 3), np.float64), signature="serving_images"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["must be DT_FLOAT", "Received: DT_DOUBLE"],
        ),
        (
            "wrong input name",
            predict_request([png], key="image"),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["takes the inputs ['images']", "Received: inputs ['image']"],
        ),
        (
            "not an image",
            predict_request([png, b"\x89PNG but not really", png]),
            grpc.StatusCode.INVALID_ARGUMENT,
            [
                "Instance 1 of input 'images'",
                "not an image the server can read",
                "Received: instance 1 = 19 bytes",
            ],
        ),
        (
            "two bad images",
            predict_request([b"junk", png, b"more junk"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["Instance 0 of input 'images'", "Instances [2] are bad too"],
        ),
        (
            "empty batch",
            predict_request([]),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["empty batch", "Received: shape [0]"],
        ),
        (
            "empty float batch",
            predict_request(
                np.zeros((0, 32, 32, 3), np.float32), signature="serving_images"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["empty batch", "[0, 32, 32, 3]"],
        ),
        (
            "too large",
            predict_request([b"\0" * (2 << 20)]),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            ["larger than max"],
        ),
        (
            "version not served",
            predict_request([png], version=9),
            grpc.StatusCode.NOT_FOUND,
            ["Specific(tiny, 9)", "latest version only: 1"],
        ),
        (
            "version label",
            predict_request([png], version_label="stable"),
            grpc.StatusCode.UNIMPLEMENTED,
            ["Version labels", "'stable'"],
        ),
    ]
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.fixture(scope="module")
def good_request(png_images):
    return predict_request(png_images[:1])


def check_still_answers(stub, good_request):
    response = stub.Predict(good_request, timeout=10)
    assert tf.make_ndarray(response.outputs["scores"]).shape == (1, 5)


@pytest.mark.parametrize("request_, code, fragments", bad_requests(PNG))
def test_bad_predict_requests_get_code_and_message(
    stubs, good_request, request_, code, fragments
):
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].Predict(request_, timeout=10)
    assert info.value.code() == code
    for fragment in fragments:
        assert fragment in info.value.details()
    check_still_answers(stubs[0], good_request)


def test_unknown_output_filter_is_invalid(stubs, png_images, good_request):
    request = predict_request(png_images[:1])
    request.output_filter.extend(["scores", "probabilities"])
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Received: output_filter=['scores', 'probabilities']" in info.value.details()
    request = predict_request(png_images[:1])
    request.output_filter.append("scores")
    assert list(stubs[0].Predict(request, timeout=10).outputs) == ["scores"]


def test_other_methods_are_unimplemented(stubs, good_request):
    calls = [
        (stubs[0].Classify, classification_pb2.ClassificationRequest()),
        (
            stubs[1].HandleReloadConfigRequest,
            model_management_pb2.ReloadConfigRequest(),
        ),
    ]
    for method, request in calls:
        with pytest.raises(grpc.RpcError) as info:
            method(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "not implemented by the kmlc dev server" in info.value.details()
    check_still_answers(stubs[0], good_request)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ([], "must specify at least one metadata_field"),
        (["signature_def", "graph"], "Metadata field 'graph' is not supported"),
    ],
)
def test_bad_metadata_fields_are_invalid(stubs, fields, fragment):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL_NAME
    request.metadata_field.extend(fields)
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].GetModelMetadata(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


@pytest.mark.parametrize(
    "name, version, fragment",
    [
        ("nope", None, "Servable not found for request: Latest(nope)"),
        (MODEL_NAME, 4, "Could not find version 4 of model tiny"),
    ],
)
def test_status_of_unknown_model_or_version_is_not_found(
    stubs, name, version, fragment
):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    with pytest.raises(grpc.RpcError) as info:
        stubs[1].GetModelStatus(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert fragment in info.value.details()


def test_a_malformed_tensor_proto_is_invalid(stubs, good_request):
    request = predict_request([PNG], signature="serving_images")
    tensor = request.inputs["images"]
    tensor.Clear()
    tensor.dtype = tf.float32.as_datatype_enum
    for size in (1, 32, 32, 3):
        tensor.tensor_shape.dim.add().size = size
    tensor.tensor_content = b"\0\0\0"  # 3 bytes for 3072 floats
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == (
        "Input tensor 'images' declares shape [1, 32, 32, 3] (3,072 elements, "
        "12,288 bytes of tensor_content) but carries 3; send every value. "
        "Received: DT_FLOAT with shape [1, 32, 32, 3] and 3 bytes of tensor_content"
    )
    check_still_answers(stubs[0], good_request)


def test_an_unexpected_server_failure_is_internal(
    server, stubs, good_request, monkeypatch
):
    def broken(version=None):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(server.store, "servable", broken)
    with pytest.raises(grpc.RpcError) as info:
        stubs[0].Predict(good_request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "Predict failed: RuntimeError: disk on fire" in info.value.details()
    monkeypatch.undo()
    check_still_answers(stubs[0], good_request)
