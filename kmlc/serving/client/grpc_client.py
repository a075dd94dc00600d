"""`Client`: predictions from a TF Serving (or `kmlc serve`) gRPC endpoint."""

import logging

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import status_pb2

from kmlc.serving.client.predictions import check_ranking
from kmlc.serving.client.predictions import decode_strings
from kmlc.serving.client.predictions import float_batch
from kmlc.serving.client.predictions import rank_labels
from kmlc.serving.client.predictions import read_images
from kmlc.serving.errors import ServingError
from kmlc.serving.errors import check_retry_settings
from kmlc.serving.errors import wait_before_retry

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RANKING_OUTPUTS = ("scores", "label_names")


def _status_name(code):
    """A `tensorflow.error.Code` enum value -> its name."""
    field = status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"]
    return field.enum_type.values_by_number[code].name


def tensor_info_dict(info):
    """A `TensorInfo` -> `{"dtype": "DT_FLOAT", "shape": [-1, 4]}`."""
    shape = info.tensor_shape
    return {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "shape": None if shape.unknown_rank else [int(d.size) for d in shape.dim],
    }


class Client:
    """A gRPC client for a multi-label model served by TF Serving.

    Works with TF Serving and with `kmlc serve` (the same protocol). Each
    call has a deadline of `timeout` seconds; calls that fail with
    UNAVAILABLE (server not up yet, restarting, overloaded) are retried
    up to `retries` times with exponential backoff; every other error is
    raised at once as a `ServingError` that says what the server answered.

    Args:
        target: str. `host:port` of the gRPC endpoint, e.g.
            `"localhost:8500"`.
        model_name: str. The served model's name (`--model_name`).
        signature: str. `"serving_default"` (encoded image bytes) or
            `"serving_images"` (float arrays). Defaults to
            `"serving_default"`.
        timeout: float. Seconds per attempt. Defaults to 10.
        retries: int. Extra attempts after an UNAVAILABLE. Defaults to 3.
        backoff: float. Seconds before the first retry; doubled for each
            next one (at most 8 s). Defaults to 0.2.
        version: int or None. Ask for this model version. Defaults to the
            latest.
        input_name: str. The signature's input. Defaults to `"images"`.
        max_message_bytes: int. The largest request or answer. Defaults to
            64 MiB.

    Example:
    >>> client = kmlc.serving.Client("localhost:8500", "corel5k")
    >>> client.predict(["beach.jpg"], top_k=3)
    [[('sky', 0.93), ('water', 0.88), ('sand', 0.61)]]
    """

    def __init__(
        self,
        target,
        model_name,
        signature="serving_default",
        timeout=10.0,
        retries=3,
        backoff=0.2,
        version=None,
        input_name="images",
        max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
    ):
        check_retry_settings(timeout, retries, backoff)
        self.target = str(target)
        self.model_name = str(model_name)
        self.signature = str(signature)
        self.timeout = timeout
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.version = None if version is None else int(version)
        self.input_name = str(input_name)
        # Reconnect soon after a refused connection, so that the retries
        # reach a server that has just come up.
        reconnect_ms = max(100, int(self.backoff * 1000))
        self._channel = grpc.insecure_channel(
            self.target,
            options=[
                ("grpc.max_send_message_length", int(max_message_bytes)),
                ("grpc.max_receive_message_length", int(max_message_bytes)),
                ("grpc.initial_reconnect_backoff_ms", reconnect_ms),
                ("grpc.min_reconnect_backoff_ms", reconnect_ms),
                ("grpc.max_reconnect_backoff_ms", max(reconnect_ms, 1000)),
            ],
        )
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(
            self._channel
        )
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(self, images, top_k=None, threshold=None):
        """Ranked labels per image.

        Args:
            images: a list of encoded images (`bytes`) or file paths for
                `"serving_default"`; a float array `[B, H, W, 3]` (RGB,
                0-255) for `"serving_images"`.
            top_k: int or None. Keep the best k labels per image.
            threshold: float or None. Keep labels scoring at least this.

        Returns:
            Per image a list of `(label, score)`, highest score first.
        """
        check_ranking(top_k, threshold)
        outputs = self.predict_raw(images, output_filter=RANKING_OUTPUTS)
        return [
            rank_labels(scores, names, top_k, threshold)
            for scores, names in zip(
                outputs["scores"], outputs["label_names"], strict=True
            )
        ]

    def predict_raw(self, images, output_filter=()):
        """The signature's output arrays.

        Args:
            images: as in `predict`.
            output_filter: names of the outputs to return; empty for all.

        Returns:
            A dict `{output name: np.ndarray}` (`scores` and `logits`
            `[B, D]` float32, `label_names` `[B, D]` str).
        """
        request = predict_pb2.PredictRequest()
        self._fill_model_spec(request.model_spec)
        request.model_spec.signature_name = self.signature
        request.inputs[self.input_name].CopyFrom(_images_tensor(images))
        request.output_filter.extend(output_filter)
        response = self._call("Predict", self._prediction.Predict, request)
        outputs = {}
        for key, tensor in response.outputs.items():
            array = tf.make_ndarray(tensor)
            outputs[key] = decode_strings(array) if array.dtype == object else array
        missing = [key for key in output_filter if key not in outputs]
        if missing:
            raise ServingError(
                "Predict",
                "OK",
                f"the answer lacks the outputs {missing} of signature "
                f"{self.signature!r}; it has {sorted(outputs)}",
                self.model_name,
                self.target,
            )
        return outputs

    def metadata(self):
        """The model's signatures (GetModelMetadata).

        Returns:
            `{"name": str, "version": int, "signatures": {name: {"inputs":
            {key: {"dtype": "DT_STRING", "shape": [-1]}}, "outputs": {...},
            "method_name": str}}}`; shapes use -1 for unknown sizes and
            None for an unknown rank.
        """
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._fill_model_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(
            "GetModelMetadata", self._prediction.GetModelMetadata, request
        )
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {
            "name": response.model_spec.name,
            "version": int(response.model_spec.version.value),
            "signatures": {
                name: {
                    "inputs": {
                        key: tensor_info_dict(info)
                        for key, info in sorted(signature.inputs.items())
                    },
                    "outputs": {
                        key: tensor_info_dict(info)
                        for key, info in sorted(signature.outputs.items())
                    },
                    "method_name": signature.method_name,
                }
                for name, signature in sorted(signatures.signature_def.items())
                if not name.startswith("__")
            },
        }

    def status(self):
        """The model's versions (GetModelStatus).

        Returns:
            A list of `{"version": int, "state": "AVAILABLE" | "END" | ...,
            "error_code": "OK" | ..., "error_message": str}`.
        """
        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_model_spec(request.model_spec)
        response = self._call("GetModelStatus", self._models.GetModelStatus, request)
        states = get_model_status_pb2.ModelVersionStatus.State
        return [
            {
                "version": int(entry.version),
                "state": states.Name(entry.state),
                "error_code": _status_name(entry.status.error_code),
                "error_message": entry.status.error_message,
            }
            for entry in response.model_version_status
        ]

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _fill_model_spec(self, model_spec):
        model_spec.name = self.model_name
        if self.version is not None:
            model_spec.version.value = self.version

    def _call(self, method, stub_method, request):
        attempt = 0
        while True:
            attempt += 1
            try:
                return stub_method(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt <= self.retries:
                    wait_before_retry(
                        logger,
                        method,
                        self.target,
                        f"UNAVAILABLE ({error.details()})",
                        attempt,
                        self.retries,
                        self.backoff,
                    )
                    continue
                raise ServingError(
                    method,
                    code.name,
                    error.details(),
                    self.model_name,
                    self.target,
                    attempts=attempt,
                ) from None


def _images_tensor(images):
    """Encoded images or paths -> DT_STRING `[B]`; a float array -> DT_FLOAT."""
    if isinstance(images, np.ndarray) and images.dtype.kind in "fiu":
        return tf.make_tensor_proto(float_batch(images))
    encoded = read_images(images)
    return tf.make_tensor_proto(encoded, dtype=tf.string, shape=[len(encoded)])
