"""TFLite flatbuffer surgery: float32 weights stored as int8.

A quantized model keeps some weights in float32: the heads of an `"int8"`
model (they compute in float, `kmlc.export.lite`), the gather tables the
`"dynamic"` converter leaves. `store_float_weights_as_int8` stores each
large one as int8 with per-channel scales, followed by a DEQUANTIZE op that
LiteRT runs once, when the interpreter is prepared: the ops keep computing
in float32 on weights a quarter of the bytes. `pack` writes a TFLite
`ModelT` back to flatbuffer bytes.
"""

import logging

import numpy as np

logger = logging.getLogger(__name__)


def _quantization_axis(shape):
    """The first axis longer than 1 (per-channel scales along it), or None."""
    for axis, dim in enumerate(shape):
        if dim > 1:
            return axis if len(shape) > 1 else None
    return None


def _symmetric_int8(values, axis):
    """`values` as int8 with symmetric scales, per channel along `axis`."""
    if axis is None:
        max_abs = np.max(np.abs(values), keepdims=True).reshape(1)
    else:
        other = tuple(i for i in range(values.ndim) if i != axis)
        max_abs = np.max(np.abs(values), axis=other)
    scale = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    shape = [1] * values.ndim
    if axis is not None:
        shape[axis] = -1
    quantized = np.clip(np.round(values / scale.reshape(shape)), -127, 127)
    return quantized.astype(np.int8), scale


def store_float_weights_as_int8(flatbuffer, min_elements=1024):
    """Stores the large float32 constants of a TFLite model as int8.

    Weight-only quantization for what a quantized model keeps in float (the
    heads of an `"int8"` model, the constants the `"dynamic"` converter
    leaves, such as gather tables): each float32 constant tensor with at
    least `min_elements` entries becomes an int8 tensor (symmetric, per
    channel along its first axis longer than 1) followed by a DEQUANTIZE op
    before its first consumer. The ops keep computing in float32; their
    weights take a quarter of the bytes, with a rounding error of at most
    half a step (max |w| / 254 per channel). LiteRT dequantizes constant
    inputs once, when the interpreter is prepared.

    Args:
        flatbuffer: bytes. A TFLite model.
        min_elements: int. Smaller constants (biases, scalars) stay float32.

    Returns:
        bytes. The model; the same bytes if there was nothing to store.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    empty_buffer = _empty_buffer(model, schema)
    int8_buffers = {}  # float32 buffer index -> (int8 buffer index, scale, axis)
    for subgraph in model.subgraphs:
        boundary = set(subgraph.inputs) | set(subgraph.outputs)
        first_consumer = {}
        for index, op in enumerate(subgraph.operators):
            for tensor_index in op.inputs:
                first_consumer.setdefault(int(tensor_index), index)
        inserted = {}  # operator index -> DEQUANTIZE ops to run before it
        for tensor_index, tensor in enumerate(list(subgraph.tensors)):
            buffer = model.buffers[tensor.buffer]
            if (
                tensor.type != schema.TensorType.FLOAT32
                or tensor_index in boundary
                or tensor_index not in first_consumer
                or tensor.isVariable
                or buffer.data is None
                or len(buffer.data) < 4 * min_elements
            ):
                continue
            shape = [int(dim) for dim in tensor.shape]
            if tensor.buffer not in int8_buffers:
                values = np.frombuffer(bytes(buffer.data), dtype="<f4")
                axis = _quantization_axis(shape)
                quantized, scale = _symmetric_int8(values.reshape(shape), axis)
                int8_buffer = schema.BufferT()
                int8_buffer.data = np.frombuffer(quantized.tobytes(), dtype=np.uint8)
                model.buffers.append(int8_buffer)
                int8_buffers[tensor.buffer] = (len(model.buffers) - 1, scale, axis)
            int8_buffer_index, scale, axis = int8_buffers[tensor.buffer]
            int8_tensor = schema.TensorT()
            int8_tensor.name = tensor.name + b"/int8"
            int8_tensor.shape = np.array(shape, dtype=np.int32)
            int8_tensor.type = schema.TensorType.INT8
            int8_tensor.buffer = int8_buffer_index
            int8_tensor.quantization = schema.QuantizationParametersT()
            int8_tensor.quantization.scale = scale.tolist()
            int8_tensor.quantization.zeroPoint = [0] * len(scale)
            int8_tensor.quantization.quantizedDimension = axis or 0
            subgraph.tensors.append(int8_tensor)
            # The float tensor becomes the DEQUANTIZE op's output.
            tensor.buffer = empty_buffer
            op = schema.OperatorT()
            # TFLite's op versions: DEQUANTIZE from int8 is 2, 5 per channel.
            op.opcodeIndex = _operator_code(
                model,
                schema,
                schema.BuiltinOperator.DEQUANTIZE,
                version=5 if len(scale) > 1 else 2,
            )
            op.inputs = np.array([len(subgraph.tensors) - 1], dtype=np.int32)
            op.outputs = np.array([tensor_index], dtype=np.int32)
            inserted.setdefault(first_consumer[tensor_index], []).append(op)
        operators = []
        for index, op in enumerate(subgraph.operators):
            operators.extend(inserted.get(index, ()))
            operators.append(op)
        subgraph.operators = operators
    if not int8_buffers:
        return flatbuffer
    # Drop the float32 bytes no tensor reads any more.
    still_read = {
        tensor.buffer for subgraph in model.subgraphs for tensor in subgraph.tensors
    }
    for buffer_index in int8_buffers:
        if buffer_index not in still_read:
            model.buffers[buffer_index].data = None
    logger.info("Stored %d float32 constants as int8", len(int8_buffers))
    return pack(model, size_hint=len(flatbuffer))


def pack(model, size_hint):
    """The flatbuffer bytes of a TFLite `ModelT`."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _empty_buffer(model, schema):
    """The index of an empty buffer (TFLite's convention: buffer 0)."""
    for index, buffer in enumerate(model.buffers):
        if buffer.data is None or len(buffer.data) == 0:
            return index
    model.buffers.append(schema.BufferT())
    return len(model.buffers) - 1


def _operator_code(model, schema, builtin_code, version):
    """The index of `builtin_code` at `version` in the model's operator codes."""
    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == builtin_code and code.version == version:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin_code
    code.deprecatedBuiltinCode = min(builtin_code, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1
