"""TF Serving's REST JSON <-> NumPy: request bodies in, outputs out.

Request tensors come as `"instances"` (row format: one item per instance)
or `"inputs"` (columnar); strings as `{"b64": "..."}` or plain text.
Outputs go back as `"predictions"` (row) or `"outputs"` (columnar); string
outputs as text, `*_bytes` outputs as base64. Floats are written as
TF Serving's `json_tensor.cc` writes them: NaN and infinities as the bare
tokens `NaN`, `Infinity` and `-Infinity` (what Python's `json` reads and
writes).
"""

import base64
import binascii

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from kmlc.serving.errors import RequestError
from kmlc.serving.server.servable import dtype_name


def json_to_array(value, dtype, where):
    """A JSON value -> an array of a signature input's dtype."""
    if dtype == types_pb2.DT_STRING:
        return np.array(_json_to_bytes(value, where), dtype=object)
    numpy_dtype = tf.as_dtype(dtype).as_numpy_dtype
    try:
        return np.asarray(value, dtype=numpy_dtype)
    except (TypeError, ValueError) as error:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{where} must be a (nested, rectangular) list of numbers for "
            f"{dtype_name(dtype)}: {error}",
        ) from None


def _json_to_bytes(value, where):
    if isinstance(value, list):
        return [_json_to_bytes(item, where) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"{where}: the 'b64' value is not valid base64: {error}",
            ) from None
    raise RequestError(
        "INVALID_ARGUMENT",
        f'{where} must be a string or {{"b64": "..."}}. '
        f"Received: {type(value).__name__}",
    )


def array_to_json(array, name):
    """An output array -> JSON; strings as text, `*_bytes` outputs as b64."""
    array = np.asarray(array)
    if array.dtype.kind not in ("O", "S"):
        return array.tolist()

    def convert(item):
        if isinstance(item, list):
            return [convert(value) for value in item]
        item = bytes(item)
        if not name.endswith("_bytes"):
            try:
                return item.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode("ascii")}

    return convert(array.tolist())


def parse_predict_body(body, signature, limits=None):
    """A predict request body -> (inputs dict, row format or not).

    Args:
        body: the parsed JSON object.
        signature: `SignatureDef`.
        limits: `RequestLimits` or None. A batch over `max_batch_size` is
            refused before its instances are converted.
    """
    keys = sorted(signature.inputs)
    has_instances = "instances" in body
    if has_instances == ("inputs" in body):
        raise RequestError(
            "INVALID_ARGUMENT",
            "A predict request needs exactly one of 'instances' (row format) "
            f"and 'inputs' (columnar format). Received: keys {sorted(body)}",
        )
    if has_instances:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError(
                "INVALID_ARGUMENT",
                f"'instances' must be a list. Received: {type(instances).__name__}",
            )
        if not instances:
            raise RequestError(
                "INVALID_ARGUMENT",
                "'instances' is an empty batch; send at least one instance. "
                "Received: []",
            )
        _check_batch_size(len(instances), "'instances'", limits)
        columns = {key: [] for key in keys}
        for index, instance in enumerate(instances):
            instance = _named(instance, keys, f"instance {index}")
            for key in keys:
                columns[key].append(instance[key])
        return {
            key: json_to_array(
                columns[key], signature.inputs[key].dtype, f"Input {key!r}"
            )
            for key in keys
        }, True
    named = _named(body["inputs"], keys, "'inputs'")
    for key in keys:
        if isinstance(named[key], list):
            _check_batch_size(len(named[key]), f"Input {key!r}", limits)
    return {
        key: json_to_array(named[key], signature.inputs[key].dtype, f"Input {key!r}")
        for key in keys
    }, False


def _check_batch_size(size, where, limits):
    if limits is not None and size > limits.max_batch_size:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{where} holds a batch of {size:,} instances, over the server's "
            f"limit of {limits.max_batch_size} (--max-batch-size); send smaller "
            f"batches. Received: {size:,} instances",
        )


def _named(value, keys, where):
    """`{input name: value}` from a named object or a bare single value."""
    if isinstance(value, dict) and set(value) != {"b64"}:
        if sorted(value) != keys:
            raise RequestError(
                "INVALID_ARGUMENT",
                f"{where} must name the signature's inputs {keys}. "
                f"Received: keys {sorted(value)}",
            )
        return value
    if len(keys) != 1:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"{where} must be an object naming the signature's inputs {keys}. "
            f"Received: {type(value).__name__}",
        )
    return {keys[0]: value}
