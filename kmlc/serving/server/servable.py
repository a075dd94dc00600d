"""One loaded version of a SavedModel: its signatures, checked and run."""

import logging
import os
import re

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from kmlc.serving.errors import RequestError
from kmlc.serving.server.limits import MAX_NAMED_INSTANCES
from kmlc.serving.server.limits import check_inputs as check_limits
from kmlc.serving.server.limits import dtype_name

DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TF Serving replays at most this many warm-up records.
MAX_WARMUP_RECORDS = 1000

logger = logging.getLogger(__name__)


def read_signature_defs(path):
    """The serving signatures of a SavedModel directory, without loading it.

    Returns:
        A dict `{name: SignatureDef}`; names starting with `"__"` (such as
        `__saved_model_init_op`) are left out.
    """
    binary = os.path.join(path, "saved_model.pb")
    text = os.path.join(path, "saved_model.pbtxt")
    saved_model = saved_model_pb2.SavedModel()
    if os.path.isfile(binary):
        with open(binary, "rb") as file:
            saved_model.ParseFromString(file.read())
    elif os.path.isfile(text):
        with open(text, encoding="utf-8") as file:
            text_format.Parse(file.read(), saved_model)
    else:
        raise FileNotFoundError(f"No saved_model.pb or saved_model.pbtxt in {path}")
    if not saved_model.meta_graphs:
        raise ValueError(f"The SavedModel in {path} has no meta graph.")
    signature_defs = saved_model.meta_graphs[0].signature_def
    return {
        name: signature_defs[name]
        for name in sorted(signature_defs)
        if not name.startswith("__")
    }


def tensor_shape(tensor_info):
    """A `TensorInfo`'s shape: a list of ints (-1 unknown), None if no rank."""
    shape = tensor_info.tensor_shape
    if shape.unknown_rank:
        return None
    return [int(dim.size) for dim in shape.dim]


def array_dtype(array):
    """The `DataType` enum of a NumPy array; bytes and objects are strings."""
    if array.dtype.kind in ("O", "S", "U"):
        return types_pb2.DT_STRING
    try:
        return tf.as_dtype(array.dtype).as_datatype_enum
    except TypeError:
        return types_pb2.DT_INVALID


def clean_tf_message(error):
    """A TensorFlow op error's message without graph node decorations."""
    message = getattr(error, "message", None) or str(error)
    message = re.sub(r"\{\{[^}]*\}\}", "", message)
    message = message.split("\n\t [[")[0]
    message = re.sub(r"\s*\[Op:[^\]]*\]", "", message)
    return " ".join(message.split())


class Servable:
    """One version of a SavedModel, loaded, ready to run its signatures.

    Requests are checked against the SignatureDefs (input names, dtypes,
    shapes, a non-empty batch) before the model runs, and every refusal is
    a `RequestError` whose message names what was expected and received.

    Args:
        path: str. The version directory (`<base>/<name>/<version>`).
        version: int. The version number.
    """

    def __init__(self, path, version):
        self.path = str(path)
        self.version = int(version)
        self.signature_defs = read_signature_defs(self.path)
        if not self.signature_defs:
            raise ValueError(f"The SavedModel in {self.path} has no signatures.")
        self._loaded = tf.saved_model.load(self.path)
        missing = [
            name for name in self.signature_defs if name not in self._loaded.signatures
        ]
        if missing:
            raise ValueError(
                f"The SavedModel in {self.path} declares signatures it cannot "
                f"call. Received: {missing}"
            )
        self._functions = {
            name: self._loaded.signatures[name] for name in self.signature_defs
        }

    @property
    def signature_names(self):
        return list(self.signature_defs)

    def signature_def(self, name):
        """The `SignatureDef` called `name` (empty: the default)."""
        name = name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"Serving signature name {name!r} not found in the signatures of "
                f"version {self.version}. Valid signatures: {self.signature_names}. "
                f"Received: signature_name={name!r}",
            )
        return self.signature_defs[name]

    def run(
        self,
        signature_name,
        inputs,
        output_filter=(),
        limits=None,
        check_deadline=None,
    ):
        """Checks the inputs, runs a signature and returns its outputs.

        Args:
            signature_name: str. Empty means `"serving_default"`.
            inputs: dict `{input name: np.ndarray}`; strings as bytes.
            output_filter: sequence of output names to return; empty means
                all.
            limits: `RequestLimits` or None. Checked (batch size, image
                pixels, finite floats) before the model runs.
            check_deadline: callable or None. Called between the steps;
                raises a `RequestError` when the client has gone, so that
                no more work is done for it.

        Returns:
            A dict `{output name: np.ndarray}`.
        """
        check_deadline = check_deadline or (lambda: None)
        name = signature_name or DEFAULT_SIGNATURE
        signature = self.signature_def(name)
        self._check_inputs(name, signature, inputs)
        if limits is not None:
            check_limits(name, signature, inputs, limits, check_deadline)
        wanted = list(output_filter) or list(signature.outputs)
        unknown = [key for key in wanted if key not in signature.outputs]
        if unknown or len(set(wanted)) != len(wanted):
            raise RequestError(
                "INVALID_ARGUMENT",
                f"The output filter must name distinct outputs of signature "
                f"{name!r}: {sorted(signature.outputs)}. "
                f"Received: output_filter={list(output_filter)}",
            )
        feeds = {}
        for key, value in inputs.items():
            dtype = tf.as_dtype(signature.inputs[key].dtype)
            try:
                feeds[key] = tf.constant(value, dtype=dtype)
            except (TypeError, ValueError) as error:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Input {key!r} of signature {name!r} cannot be read as "
                    f"{dtype_name(dtype.as_datatype_enum)}: {error}",
                ) from None
        check_deadline()
        try:
            outputs = self._functions[name](**feeds)
        except tf.errors.InvalidArgumentError as error:
            raise self._explain(
                name, signature, inputs, error, check_deadline
            ) from None
        except tf.errors.ResourceExhaustedError as error:
            raise RequestError(
                "RESOURCE_EXHAUSTED",
                f"Signature {name!r} ran out of memory: {clean_tf_message(error)}",
            ) from None
        except tf.errors.OpError as error:
            raise RequestError(
                "INTERNAL", f"Signature {name!r} failed: {clean_tf_message(error)}"
            ) from None
        check_deadline()
        return {key: outputs[key].numpy() for key in wanted}

    def warm_up(self):
        """Replays `assets.extra/tf_serving_warmup_requests` as TF Serving does.

        Returns:
            The number of requests replayed (0 without a warm-up file).
        """
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.isfile(path):
            return 0
        count = 0
        try:
            for record in tf.data.TFRecordDataset(path).take(MAX_WARMUP_RECORDS):
                log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
                kind = log.WhichOneof("log_type")
                if kind != "predict_log":
                    raise ValueError(
                        f"Warm-up record {count} in {path}: the dev server replays "
                        f"predict requests only. Received: {kind}"
                    )
                request = log.predict_log.request
                inputs = {
                    key: tf.make_ndarray(tensor)
                    for key, tensor in request.inputs.items()
                }
                self.run(
                    request.model_spec.signature_name, inputs, request.output_filter
                )
                count += 1
        except RequestError as error:
            raise ValueError(
                f"Warm-up request {count} in {path} failed: {error.message}"
            ) from error
        except tf.errors.OpError as error:
            raise ValueError(
                f"Cannot read the warm-up file {path}: {clean_tf_message(error)}"
            ) from error
        return count

    # === Request checks ===

    def _check_inputs(self, name, signature, inputs):
        expected = sorted(signature.inputs)
        if sorted(inputs) != expected:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"Signature {name!r} takes the inputs {expected}. "
                f"Received: inputs {sorted(inputs)}",
            )
        for key in expected:
            info = signature.inputs[key]
            value = inputs[key]
            want_shape = tensor_shape(info)
            got_dtype = array_dtype(value)
            got_shape = list(value.shape)
            shape_ok = want_shape is None or (
                len(want_shape) == len(got_shape)
                and all(
                    w in (-1, g) for w, g in zip(want_shape, got_shape, strict=True)
                )
            )
            if got_dtype != info.dtype or not shape_ok:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Input {key!r} of signature {name!r} must be "
                    f"{dtype_name(info.dtype)} with shape {_shape_text(want_shape)}. "
                    f"Received: {dtype_name(got_dtype)} with shape {got_shape}",
                )
            if got_shape and got_shape[0] == 0:
                raise RequestError(
                    "INVALID_ARGUMENT",
                    f"Input {key!r} of signature {name!r} is an empty batch; send "
                    f"at least one instance. Received: shape {got_shape}",
                )

    def _explain(self, name, signature, inputs, error, check_deadline):
        """A `RequestError` for a failed run, naming the first bad images."""
        for key, value in inputs.items():
            if signature.inputs[key].dtype != types_pb2.DT_STRING:
                continue
            bad = {}
            for index, item in enumerate(np.asarray(value).reshape(-1)):
                check_deadline()
                try:
                    tf.io.decode_image(item, channels=3, expand_animations=False)
                except tf.errors.InvalidArgumentError as decode_error:
                    bad[index] = (item, clean_tf_message(decode_error))
                if len(bad) == MAX_NAMED_INSTANCES:
                    break
            if bad:
                index, (item, reason) = next(iter(bad.items()))
                which = (
                    f"Instance {index}" if len(bad) == 1 else f"Instances {list(bad)}"
                )
                return RequestError(
                    "INVALID_ARGUMENT",
                    f"{which} of input {key!r} (signature {name!r}) is not an "
                    f"image TensorFlow can decode: {reason} Received: instance "
                    f"{index} = {len(item)} bytes starting {bytes(item[:12])!r}",
                )
        return RequestError(
            "INVALID_ARGUMENT",
            f"Signature {name!r} failed on this input: {clean_tf_message(error)}",
        )


def _shape_text(shape):
    return "unknown" if shape is None else str(shape)
