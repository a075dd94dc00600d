"""What one request may cost the dev server, checked before the work starts.

A 64-byte TensorProto can declare a `[4000, 96, 96, 3]` tensor and a 389 KB
PNG 20000 x 20000 pixels; both are refused here, before anything is
allocated or decoded:

- `tensor_from_proto`: a TensorProto must carry exactly the values its
  shape declares (TensorFlow would repeat the last value to fill the
  shape; the dev server refuses instead), and its declared batch and
  pixels must be within the limits;
- `check_inputs`: the batch size, each encoded image's declared pixels
  (read from its header), the request's total pixels, and finite floats.

Every refusal is an INVALID_ARGUMENT `RequestError` naming the input, the
limit (and the `kmlc serve` flag that sets it) and what was received.
"""

import dataclasses

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
from kmlc.data.image_header import HeaderError
from kmlc.data.image_header import image_size
from kmlc.serving.errors import RequestError

# How many bad instances a refusal names before it stops looking.
MAX_NAMED_INSTANCES = 5

# The TensorProto field holding each dtype's values, and values per element.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: ("float_val", 1),
    types_pb2.DT_DOUBLE: ("double_val", 1),
    types_pb2.DT_INT32: ("int_val", 1),
    types_pb2.DT_INT16: ("int_val", 1),
    types_pb2.DT_INT8: ("int_val", 1),
    types_pb2.DT_UINT8: ("int_val", 1),
    types_pb2.DT_UINT16: ("int_val", 1),
    types_pb2.DT_INT64: ("int64_val", 1),
    types_pb2.DT_UINT32: ("uint32_val", 1),
    types_pb2.DT_UINT64: ("uint64_val", 1),
    types_pb2.DT_BOOL: ("bool_val", 1),
    types_pb2.DT_HALF: ("half_val", 1),
    types_pb2.DT_BFLOAT16: ("half_val", 1),
    types_pb2.DT_COMPLEX64: ("scomplex_val", 2),
    types_pb2.DT_COMPLEX128: ("dcomplex_val", 2),
    types_pb2.DT_STRING: ("string_val", 1),
}


def dtype_name(dtype):
    """`types_pb2.DataType` enum -> its name, e.g. `"DT_FLOAT"`."""
    return types_pb2.DataType.Name(dtype)


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """The most one predict request may ask for.

    The defaults keep a request's decoded pixels under about 600 MB as
    float32 (50 megapixels x 3 channels x 4 bytes), so that a server with
    2 GB of memory holds a request, the model and its activations.

    Args:
        max_batch_size: int. Instances per request. Defaults to 64.
        max_image_pixels: int. Width x height of one encoded image, as its
            header declares. Defaults to 40 million.
        max_request_pixels: int. Pixels of all the images of a request
            (encoded images as declared, float images `[B, H, W, C]` as
            `B * H * W`). Defaults to 50 million.
    """

    max_batch_size: int = 64
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_request_pixels: int = 50_000_000

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(
                    f"{field.name} must be a positive int. Received: "
                    f"{field.name}={value!r}"
                )


def tensor_from_proto(key, proto, limits):
    """A request's TensorProto -> a NumPy array, after checking what it declares.

    Args:
        key: str. The input's name, for messages.
        proto: `tensorflow.TensorProto`.
        limits: `RequestLimits`.

    Returns:
        The array (strings as bytes, object dtype).
    """
    shape = _declared_shape(key, proto)
    elements = int(np.prod(shape, dtype=object)) if shape else 1
    _check_value_count(key, proto, shape, elements)
    _check_batch(key, shape, limits)
    if proto.dtype != types_pb2.DT_STRING and len(shape) == 4:
        _check_request_pixels(key, shape[0] * shape[1] * shape[2], limits)
    try:
        return tf.make_ndarray(proto)
    except Exception as error:  # a malformed TensorProto
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Cannot read input tensor {key!r}: {error}. Received: "
            f"{dtype_name(proto.dtype)} with shape {shape}",
        ) from None


def check_inputs(name, signature, inputs, limits, check_deadline=None):
    """Checks decoded request inputs against the limits, before the model runs.

    Args:
        name: str. The signature's name, for messages.
        signature: `SignatureDef`.
        inputs: dict `{input name: np.ndarray}`.
        limits: `RequestLimits`.
        check_deadline: callable or None. Called now and then; raises when
            the client has gone.
    """
    total = 0
    for key, value in sorted(inputs.items()):
        shape = list(np.shape(value))
        _check_batch(key, shape, limits)
        info = signature.inputs.get(key)
        if info is None:
            continue  # Servable.run names unknown inputs
        if info.dtype == types_pb2.DT_STRING:
            total += _image_pixels(name, key, value, limits, check_deadline)
        elif np.asarray(value).dtype.kind in "fc":
            _check_finite(name, key, value)
            if len(shape) == 4:
                total += shape[0] * shape[1] * shape[2]
        _check_request_pixels(key, total, limits)


def _declared_shape(key, proto):
    if proto.tensor_shape.unknown_rank:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input tensor {key!r} has an unknown rank; a request tensor needs "
            "a shape. Received: tensor_shape.unknown_rank=true",
        )
    shape = [int(dim.size) for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in shape):
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input tensor {key!r} declares a negative dimension. Received: "
            f"shape {shape}",
        )
    return shape


def _check_value_count(key, proto, shape, elements):
    if proto.dtype not in _VALUE_FIELDS:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input tensor {key!r} has a dtype the dev server does not read. "
            f"Received: {dtype_name(proto.dtype)}",
        )
    field, per_element = _VALUE_FIELDS[proto.dtype]
    if proto.tensor_content:
        itemsize = np.dtype(tf.as_dtype(proto.dtype).as_numpy_dtype).itemsize
        expected, carried = elements * itemsize, len(proto.tensor_content)
        unit = "bytes of tensor_content"
    else:
        expected = elements * per_element
        carried = len(getattr(proto, field))
        unit = f"values in {field}"
    if carried != expected:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input tensor {key!r} declares shape {shape} ({elements:,} "
            f"elements, {expected:,} {unit}) but carries {carried:,}; send "
            f"every value. Received: {dtype_name(proto.dtype)} with shape "
            f"{shape} and {carried:,} {unit}",
        )


def _check_batch(key, shape, limits):
    if shape and shape[0] > limits.max_batch_size:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input {key!r} holds a batch of {shape[0]:,} instances, over the "
            f"server's limit of {limits.max_batch_size} (--max-batch-size); "
            f"send smaller batches. Received: shape {shape}",
        )


def _check_request_pixels(key, pixels, limits):
    if pixels > limits.max_request_pixels:
        raise RequestError(
            "INVALID_ARGUMENT",
            f"The request's images hold {pixels:,} pixels (up to input "
            f"{key!r}), over the server's limit of {limits.max_request_pixels:,} "
            "(--max-request-pixels); send fewer or smaller images. Received: "
            f"{pixels:,} pixels",
        )


def _image_pixels(name, key, value, limits, check_deadline):
    """The declared pixels of every encoded image; refuses bad or huge ones."""
    total = 0
    bad = []  # (index, reason, size in bytes)
    for index, item in enumerate(np.asarray(value, dtype=object).reshape(-1)):
        if len(bad) == MAX_NAMED_INSTANCES:
            break
        if check_deadline is not None and index % 64 == 0:
            check_deadline()
        if not isinstance(item, bytes):
            continue  # not a string: Servable.run says what it is
        try:
            size = image_size(item)
        except HeaderError as error:
            bad.append((index, f"is not an image the server can read: {error}", item))
            continue
        if size.pixels > limits.max_image_pixels:
            reason = (
                f"is too large: the {size.format.upper()} is {size.width}x"
                f"{size.height} px ({size.pixels:,} pixels), over the server's "
                f"limit of {limits.max_image_pixels:,} (--max-image-pixels)"
            )
            bad.append((index, reason, item))
        total += size.pixels
        if total > limits.max_request_pixels and not bad:
            _check_request_pixels(key, total, limits)
    if bad:
        index, reason, item = bad[0]
        others = [i for i, _, _ in bad[1:]]
        more = ""
        if others:
            maybe = " (and maybe more)" if len(bad) == MAX_NAMED_INSTANCES else ""
            more = f" Instances {others}{maybe} are bad too."
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Instance {index} of input {key!r} (signature {name!r}) {reason}."
            f"{more} Received: instance {index} = {len(item):,} bytes",
        )
    return total


def _check_finite(name, key, value):
    array = np.asarray(value)
    finite = np.isfinite(array)
    if not finite.all():
        where = [int(i) for i in np.argwhere(~finite)[0]]
        raise RequestError(
            "INVALID_ARGUMENT",
            f"Input {key!r} of signature {name!r} holds NaN or infinite values; "
            f"the model needs finite numbers. Received: {array[tuple(where)]} at "
            f"index {where}",
        )
