"""TF Serving's gRPC services over a `ModelStore`.

PredictionService answers Predict and GetModelMetadata; ModelService
answers GetModelStatus. The other methods answer UNIMPLEMENTED.
"""

import logging

import grpc
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmlc.serving.errors import RequestError
from kmlc.serving.server.limits import RequestLimits
from kmlc.serving.server.limits import tensor_from_proto
from kmlc.serving.server.servable import DEFAULT_SIGNATURE

logger = logging.getLogger(__name__)

METADATA_FIELD = "signature_def"


def _answer(context, method, handler):
    """Runs a handler; refusals become the status they name."""
    try:
        return handler()
    except RequestError as error:
        logger.info("%s refused: %s", method, error)
        context.abort(getattr(grpc.StatusCode, error.code), error.message)
    except Exception as error:  # the server must keep answering
        logger.exception("%s failed", method)
        context.abort(
            grpc.StatusCode.INTERNAL,
            f"{method} failed: {type(error).__name__}: {error}",
        )


def deadline_check(context):
    """A callable that raises once the call's client has gone or timed out."""

    def check():
        if not context.is_active():
            raise RequestError(
                "CANCELLED",
                "The call was cancelled or its deadline passed; the server "
                "stopped working on it.",
            )
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise RequestError(
                "DEADLINE_EXCEEDED",
                "The call's deadline passed; the server stopped working on it. "
                f"Received: {remaining:.3f} s remaining",
            )

    return check


def check_model_spec(store, model_spec):
    """The requested version (or None), after checking the model name."""
    if model_spec.name != store.name:
        raise RequestError(
            "NOT_FOUND",
            f"Servable not found for request: Latest({model_spec.name}). "
            f"This server serves model {store.name!r}. "
            f"Received: model_spec.name={model_spec.name!r}",
        )
    if model_spec.version_label:
        raise RequestError(
            "UNIMPLEMENTED",
            "Version labels need a model config file, which the dev server "
            f"does not read. Received: version_label={model_spec.version_label!r}",
        )
    return model_spec.version.value if model_spec.HasField("version") else None


def signature_def_map(servable):
    """The servable's signatures as a `SignatureDefMap` proto."""
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in servable.signature_defs.items():
        signatures.signature_def[name].CopyFrom(signature)
    return signatures


def _unimplemented(method):
    def handler(self, request, context):
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{method} is not implemented by the kmlc dev server; it answers "
            "Predict, GetModelMetadata and GetModelStatus. Use TF Serving for "
            f"{method}.",
        )

    handler.__name__ = method
    return handler


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata for the model of a `ModelStore`.

    Args:
        store: `kmlc.serving.ModelStore`.
        limits: `RequestLimits`. Defaults to `RequestLimits()`.
    """

    def __init__(self, store, limits=None):
        self.store = store
        self.limits = limits or RequestLimits()

    def Predict(self, request, context):
        return _answer(context, "Predict", lambda: self._predict(request, context))

    def GetModelMetadata(self, request, context):
        return _answer(context, "GetModelMetadata", lambda: self._metadata(request))

    Classify = _unimplemented("Classify")
    Regress = _unimplemented("Regress")
    MultiInference = _unimplemented("MultiInference")

    def _predict(self, request, context):
        check_deadline = deadline_check(context)
        version = check_model_spec(self.store, request.model_spec)
        servable = self.store.servable(version)
        inputs = {
            key: tensor_from_proto(key, tensor, self.limits)
            for key, tensor in sorted(request.inputs.items())
        }
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        outputs = servable.run(
            signature_name,
            inputs,
            request.output_filter,
            limits=self.limits,
            check_deadline=check_deadline,
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.store.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature_name
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def _metadata(self, request):
        version = check_model_spec(self.store, request.model_spec)
        fields = list(request.metadata_field)
        if not fields:
            raise RequestError(
                "INVALID_ARGUMENT",
                "GetModelMetadataRequest must specify at least one metadata_field "
                f"(the dev server knows {METADATA_FIELD!r}). Received: []",
            )
        unknown = [field for field in fields if field != METADATA_FIELD]
        if unknown:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"Metadata field {unknown[0]!r} is not supported; the dev server "
                f"knows {METADATA_FIELD!r}. Received: metadata_field={fields}",
            )
        servable = self.store.servable(version)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.store.name
        response.model_spec.version.value = servable.version
        response.metadata[METADATA_FIELD].Pack(signature_def_map(servable))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus for the model of a `ModelStore`.

    Args:
        store: `kmlc.serving.ModelStore`.
    """

    def __init__(self, store):
        self.store = store

    def GetModelStatus(self, request, context):
        return _answer(context, "GetModelStatus", lambda: self._status(request))

    HandleReloadConfigRequest = _unimplemented("HandleReloadConfigRequest")

    def _status(self, request):
        version = check_model_spec(self.store, request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in self.store.statuses(version):
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(
                status.state
            )
            entry.status.error_code = (
                entry.status.DESCRIPTOR.fields_by_name["error_code"]
                .enum_type.values_by_name[status.error_code]
                .number
            )
            entry.status.error_message = status.error_message
        return response
