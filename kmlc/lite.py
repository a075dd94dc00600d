"""TFLite / LiteRT conversion, a signature runner, and evaluation.

Conversion starts from the SavedModel's `serving_images` signature (a Keras
model is first exported to a temporary SavedModel with `kmlc.export`). The
`.tflite` model has one signature, `serving_images`: input `images` float32
`[B, H, W, 3]` (RGB, 0..255; int8 with `int8_io=True`), outputs `logits` and
`scores` (sigmoid of the logits) `[B, D]`; B is fixed at 1 unless
`convert(..., batch_size=None)`. The label names string output of
the SavedModel is left out: the labels travel as metadata instead.

Quantization: `"int8"` quantizes the backbone fully (weights and
activations) and keeps the heads and the ops XNNPACK has no int8 kernel for
computing in float32; the float32 constants that leaves (the heads' weights)
are then stored as int8 and dequantized once at load
(`store_float_weights_as_int8`), so the file is about a quarter of the
float32 one while the label ranking stays close to float's.

Metadata: the tflite-support and MediaPipe metadata writers cannot run
beside TF 2.21 (tflite-support needs protobuf < 4; MediaPipe 1.2's writer
imports a compiled module its wheel does not ship), so kmlc embeds the
labels and the input contract itself:

- `TFLITE_METADATA` (`kmlc.tflite_metadata`): the standard model metadata
  flatbuffer (`metadata_schema.fbs`) that MediaPipe's image classifier
  task reads (RGB input, normalisation mean 0 std 1 on 0..255 pixels, and
  `labels.txt` as each output's label file);
- TFLite model metadata entries `kmlc_contract` (JSON: input size, dtype,
  RGB, range 0..255, normalisation, quantization, outputs, label file) and
  `kmlc_labels` (the labels, one a line), which `Predictor` reads;
- associated files, appended to the flatbuffer as a zip archive (as
  tflite-support's populator does): `labels.txt` and `kmlc_contract.json`.

`<output>.labels.txt` is written beside the model too.
"""

import io
import json
import logging
import os
import re
import statistics
import tempfile
import time
import zipfile

import keras
import numpy as np

from kmlc import export as export_lib
from kmlc import io as kmlc_io
from kmlc import tflite_metadata
from kmlc.metrics import sigmoid
from kmlc.precision import all_layers
from kmlc.precision import is_mixed_precision  # noqa: F401 (kmlc.lite API)
from kmlc.precision import to_float32

logger = logging.getLogger(__name__)

QUANTIZE_MODES = ("float32", "float16", "dynamic", "int8")
SIGNATURE = "serving_images"
CONTRACT_METADATA = "kmlc_contract"
LABELS_METADATA = "kmlc_labels"
LABELS_FILE = "labels.txt"
CONTRACT_FILE = "kmlc_contract.json"
# Ops kept in float32 in int8 models: ai-edge-litert 2.3's XNNPACK delegate
# has no int8 kernel for them (HARD_SWISH: MobileNetV3; SOFTMAX and
# BATCH_MATMUL: the GCN and attention heads).
INT8_FLOAT_OPS = ("HARD_SWISH", "SOFTMAX", "BATCH_MATMUL")
# The layers of `kmlc.MultiLabelClassifier` after the backbone's pooling.
HEAD_LAYERS = (
    "classifier",
    "feature_activation",
    "label_gcn",
    "gcn_scores",
    "knowledge_fusion",
    "relation_attention",
    "attention_prior",
    "head_sum",
    "logits",
)


# === Calibration data ===


def calibration_samples(representative_data, image_size, num_samples=200):
    """Single-image float32 batches `[1, H, W, 3]` for int8 calibration.

    Args:
        representative_data: iterable of image batches `[B, H, W, 3]` (RGB,
            0..255), or of `(images, labels)` pairs such as
            `kmlc.data.make_dataset` yields.
        image_size: `(H, W)` the model expects.
        num_samples: int. At most this many images are taken.

    Returns:
        list of float32 arrays `[1, H, W, 3]`.
    """
    expected = f"[batch, {image_size[0]}, {image_size[1]}, 3]"
    if representative_data is None:
        raise ValueError(
            "quantize='int8' needs representative_data: an iterable of float "
            f"image batches {expected} (RGB, 0..255) from the training data. "
            "Received: representative_data=None"
        )
    samples = []
    for batch in representative_data:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = np.asarray(keras.ops.convert_to_numpy(batch), dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or tuple(batch.shape[1:]) != (*image_size, 3):
            raise ValueError(
                "The representative data must hold image batches of shape "
                f"{expected} (the model's input). Received: a batch of shape "
                f"{tuple(batch.shape)}"
            )
        for image in batch:
            samples.append(image[None])
            if len(samples) >= num_samples:
                return samples
    if not samples:
        raise ValueError(
            "The representative data is empty: int8 calibration needs image "
            f"batches of shape {expected}. Received: no batches"
        )
    return samples


# === Conversion ===


def _lite_saved_model(saved_model_dir, directory, batch_size=1):
    """A SavedModel with one signature: `serving_images` -> logits, scores."""
    import tensorflow as tf

    loaded = tf.saved_model.load(saved_model_dir)
    if SIGNATURE not in loaded.signatures:
        raise ValueError(
            f"The SavedModel has no {SIGNATURE!r} signature; export it with "
            "kmlc.export.export_saved_model. Received: signatures "
            f"{sorted(loaded.signatures)} in {saved_model_dir}"
        )
    signature = loaded.signatures[SIGNATURE]
    spec = signature.structured_input_signature[1]["images"]

    shape = [batch_size, *spec.shape[1:]]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
    def serving_images(images):
        outputs = signature(images=images)
        return {"logits": outputs["logits"], "scores": outputs["scores"]}

    module = tf.Module()
    module.base = loaded
    module.serving_images = serving_images
    tf.saved_model.save(
        module,
        directory,
        signatures={SIGNATURE: serving_images.get_concrete_function()},
    )
    return tuple(int(dim) for dim in spec.shape[1:3])


def _configure(converter, quantize, samples, int8_io, float_ops, float_heads):
    import tensorflow as tf

    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample] for sample in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if float_ops or float_heads:
            # The float kernels of the ops left out of quantization.
            converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def _head_tensors(lite_dir):
    """Names of the TFLite tensors computed by the heads (`HEAD_LAYERS`)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    converter = tf.lite.TFLiteConverter.from_saved_model(
        lite_dir, signature_keys=[SIGNATURE]
    )
    names = [
        detail["name"]
        for detail in Interpreter(
            model_content=converter.convert()
        ).get_tensor_details()
    ]
    pattern = re.compile(r"/(%s)(_\d+)?/" % "|".join(HEAD_LAYERS))
    return [name for name in names if pattern.search(name + "/")]


def _run_converter(converter, quantize, samples, float_ops, float_nodes=()):
    import tensorflow as tf

    if quantize != "int8" or not (float_ops or float_nodes):
        return converter.convert()
    # Selective quantization: TF's documented route is the quantization
    # debugger's deny list.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=lambda: ([sample] for sample in samples),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(float_ops), denylisted_nodes=list(float_nodes)
        ),
    )
    flatbuffer = debugger.get_nondebug_quantized_model()
    if converter.inference_input_type == tf.int8:
        # The debugger leaves the model's float input and outputs as they are.
        from tensorflow.lite.python import util

        flatbuffer = util.modify_model_io_type(flatbuffer, tf.int8, tf.int8)
    return flatbuffer


_UNSUPPORTED_OP = re.compile(
    r"fused\[\"[^\"]*:\", \"(?P<path>[^\"@]+)@[^\"]*\"\][^\n]*?"
    r"'tf\.(?P<op>\w+)' op is neither a custom op nor a flex op"
)
_SCOPE_SUFFIX = re.compile(r"_\d+$")


def _layer_of(path, model):
    """The layer path (`outer/inner`) of a TF op's name scope."""
    parts = path.split("/")[:-1]  # the last part is the op itself
    names = {layer.name for layer in all_layers(model)} if model else None
    layers = []
    for part in parts:
        for candidate in (part, _SCOPE_SUFFIX.sub("", part)):
            if names is None or candidate in names:
                layers.append(candidate)
                break
    if names is None:
        return "/".join(_SCOPE_SUFFIX.sub("", part) for part in parts) or path
    return "/".join(layers) or path


def unsupported_ops(message, model=None):
    """`[(layer_path, op)]` that a converter error says TFLite lacks."""
    found = []
    for match in _UNSUPPORTED_OP.finditer(message):
        item = (_layer_of(match["path"], model), match["op"])
        if item not in found:
            found.append(item)
    return found


def _convert_error(error, model, quantize):
    message = str(error)
    found = unsupported_ops(message, model)
    if found:
        where = "; ".join(f"layer {layer!r} uses op {op!r}" for layer, op in found)
        return ValueError(
            f"TFLite builtins lack an op of this model: {where}. Replace that "
            "op in the layer with ones TFLite supports (see "
            "https://ai.google.dev/edge/litert/models/ops_compatibility). "
            f"Received: quantize={quantize!r}"
        )
    first = message.strip().splitlines()[0] if message.strip() else repr(error)
    return RuntimeError(
        f"TFLite conversion failed: {first[:500]}. Received: quantize={quantize!r}"
    )


def convert(
    model,
    output_path,
    quantize="float32",
    representative_data=None,
    num_calibration_samples=200,
    int8_io=False,
    label_names=None,
    batch_size=1,
    float_ops=INT8_FLOAT_OPS,
    float_heads=True,
    int8_weights=True,
):
    """Converts a Keras model or a kmlc SavedModel to a `.tflite` file.

    Args:
        model: keras.Model or str. A model from images to logits (mixed
            precision is fine: it is rebuilt in float32 first), or the
            directory of a SavedModel written by `kmlc.export`.
        output_path: str. The `.tflite` file; written atomically, with
            `<output_path>.labels.txt` beside it.
        quantize: str. `"float32"`, `"float16"` (float16 weights),
            `"dynamic"` (int8 weights, float activations) or `"int8"` (full
            integer: weights and activations; needs `representative_data`).
            Defaults to `"float32"`.
        representative_data: iterable of image batches `[B, H, W, 3]` (RGB,
            0..255) or of `(images, labels)` pairs, for `"int8"`.
        num_calibration_samples: int. Images used for int8 calibration.
            Defaults to 200.
        int8_io: bool. With `"int8"`, make the input and outputs int8 too
            (`Predictor` quantizes and dequantizes). Defaults to False
            (float input and outputs around the int8 graph).
        label_names: list of str or None. Defaults to the model's, or the
            SavedModel's `assets/labels.txt`.
        batch_size: int or None. The input's fixed batch size. Defaults to
            1 (what mobile apps run, and what `Predictor` feeds): a fixed
            shape lets the converter fold the shape arithmetic, so XNNPACK
            runs the graph in fewer pieces. None keeps a dynamic batch.
        float_ops: sequence of TFLite op names left in float32 inside an
            `"int8"` model. Defaults to `INT8_FLOAT_OPS`: the ops that
            LiteRT's XNNPACK delegate has no int8 kernel for, so that
            quantizing them splits the graph into many delegate pieces
            joined by slow reference kernels (MobileNetV3Small at 128 px,
            heads "full", one thread: 7.5 ms quantized, 1.4 ms with these
            left in float). `()` quantizes every op.
        float_heads: bool. With `"int8"`, keep the heads (`HEAD_LAYERS`:
            everything after the backbone) in float32: only the backbone is
            quantized. Quantizing the GCN and attention heads costs label
            ranking (a small conv net on Corel-5k: 3.0 mAP points lost with
            int8 heads, 0.2 with float heads) for little compute. Their
            weights are still stored as int8 (`int8_weights`). Defaults to
            True.
        int8_weights: bool. With `"int8"` or `"dynamic"`, store the float32
            constants the converter leaves (the float heads' weights, gather
            tables) as int8 and dequantize them once at load
            (`store_float_weights_as_int8`): the file shrinks to about a
            quarter of float32's, the float ops stay float. Defaults to True.

    Returns:
        str. `output_path`.
    """
    import tensorflow as tf

    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"Unknown quantize mode. Expected one of {QUANTIZE_MODES}. "
            f"Received: quantize={quantize!r}"
        )
    if int8_io and quantize != "int8":
        raise ValueError(
            "int8_io=True needs quantize='int8' (only a full-integer model has "
            f"int8 inputs and outputs). Received: quantize={quantize!r}"
        )
    output_path = os.fspath(output_path)
    if os.path.isdir(output_path):
        raise ValueError(
            "output_path is a directory; give the .tflite file to write. "
            f"Received: output_path={output_path!r}"
        )
    keras_model = model if isinstance(model, keras.Model) else None
    with tempfile.TemporaryDirectory(prefix="kmlc-lite-") as work:
        if keras_model is not None:
            keras_model = to_float32(keras_model)
            saved_model_dir = os.path.join(work, "saved_model")
            export_lib.write_saved_model(keras_model, saved_model_dir, warmup=False)
        else:
            saved_model_dir = os.fspath(model)
            if not os.path.isdir(saved_model_dir):
                raise FileNotFoundError(
                    "Expected a keras.Model or a SavedModel directory. "
                    f"Received: model={model!r}"
                )
        config = _saved_model_config(saved_model_dir)
        if label_names is None:
            label_names = _saved_model_labels(saved_model_dir)
        lite_dir = os.path.join(work, "lite")
        image_size = _lite_saved_model(saved_model_dir, lite_dir, batch_size)
        samples = None
        if quantize == "int8":
            samples = calibration_samples(
                representative_data, image_size, num_calibration_samples
            )
        converter = tf.lite.TFLiteConverter.from_saved_model(
            lite_dir, signature_keys=[SIGNATURE]
        )
        _configure(converter, quantize, samples, int8_io, float_ops, float_heads)
        try:
            float_nodes = ()
            if quantize == "int8" and float_heads:
                float_nodes = _head_tensors(lite_dir)
            flatbuffer = _run_converter(
                converter, quantize, samples, float_ops, float_nodes
            )
        except Exception as error:  # the converter raises several types
            raise _convert_error(error, keras_model, quantize) from error
    int8_weights = bool(int8_weights) and quantize in ("int8", "dynamic")
    if int8_weights:
        flatbuffer = store_float_weights_as_int8(flatbuffer)
    contract = _contract(flatbuffer, image_size, label_names, quantize, config)
    if quantize == "int8":
        contract["float_ops"] = list(float_ops or ())
        contract["float_heads"] = bool(float_heads)
    if quantize in ("int8", "dynamic"):
        contract["int8_weights"] = int8_weights
    data = embed_metadata(flatbuffer, label_names, contract)
    kmlc_io.write_bytes(output_path, data)
    kmlc_io.write_bytes(
        output_path + ".labels.txt",
        "".join(f"{label}\n" for label in label_names).encode("utf-8"),
    )
    logger.info("Wrote %s (%s, %.1f KiB)", output_path, quantize, len(data) / 1024)
    return output_path


def _saved_model_config(saved_model_dir):
    path = os.path.join(saved_model_dir, "assets", export_lib.CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _saved_model_labels(saved_model_dir):
    path = os.path.join(saved_model_dir, "assets", export_lib.LABELS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            "The SavedModel has no assets/labels.txt; pass label_names. "
            f"Received: {saved_model_dir}"
        )
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def _contract(flatbuffer, image_size, label_names, quantize, config):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=flatbuffer).get_signature_runner(SIGNATURE)
    inputs = runner.get_input_details()
    outputs = runner.get_output_details()

    def describe(detail):
        scale, zero_point = detail["quantization"]
        return {
            "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(dim) for dim in detail["shape_signature"]],
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
        }

    return {
        "format": "kmlc-tflite",
        "format_version": 1,
        "signature": SIGNATURE,
        "quantize": quantize,
        "image_size": list(image_size),
        "num_labels": len(label_names),
        "labels_file": LABELS_FILE,
        "input": {
            "name": "images",
            "color": "RGB",
            "range": [0.0, 255.0],
            "normalization": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            "resize": "bilinear, no crop, aspect ratio not kept",
            **describe(inputs["images"]),
        },
        "outputs": {
            "logits": {"meaning": "the model's logits", **describe(outputs["logits"])},
            "scores": {
                "meaning": "sigmoid of the logits",
                **describe(outputs["scores"]),
            },
        },
        "model": config,
    }


# === Weight-only int8 ===


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
    return _pack(model, size_hint=len(flatbuffer))


def _pack(model, size_hint):
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


# === Metadata ===


def embed_metadata(flatbuffer, label_names, contract):
    """The model with the labels and contract as metadata and associated files."""
    from ai_edge_litert import schema_py_generated as schema

    labels_text = "".join(f"{label}\n" for label in label_names).encode("utf-8")
    contract_json = json.dumps(contract, indent=2).encode("utf-8")
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    ours = (CONTRACT_METADATA, LABELS_METADATA, tflite_metadata.METADATA_NAME)
    model.metadata = [
        entry for entry in (model.metadata or []) if entry.name.decode() not in ours
    ]
    for name, data in (
        (CONTRACT_METADATA, contract_json),
        (LABELS_METADATA, labels_text),
        (tflite_metadata.METADATA_NAME, _task_metadata(model, contract)),
    ):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    packed = _pack(model, size_hint=len(flatbuffer) + len(contract_json) + 1024)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(LABELS_FILE, labels_text)
        zf.writestr(CONTRACT_FILE, contract_json)
    return packed + archive.getvalue()


def _task_metadata(model, contract):
    """The `TFLITE_METADATA` that MediaPipe's image classifier reads."""
    (signature,) = model.signatureDefs
    names = {int(t.tensorIndex): t.name.decode() for t in signature.outputs}
    normalization = contract["input"]["normalization"]
    low, high = contract["input"]["range"]
    mean, std = normalization["mean"][0], normalization["std"][0]
    outputs = []
    for index in model.subgraphs[signature.subgraphIndex].outputs:
        name = names[int(index)]
        meaning = contract["outputs"][name]["meaning"]
        outputs.append((name, meaning, (0.0, 1.0) if name == "scores" else None))
    return tflite_metadata.image_model_metadata(
        name=f"kmlc {contract.get('model', {}).get('name', 'model')}",
        description=(
            f"Multi-label image classifier ({contract['num_labels']} labels; "
            f"{contract['quantize']}): one score per label, labels in "
            f"{LABELS_FILE}."
        ),
        input_name="images",
        mean=normalization["mean"],
        std=normalization["std"],
        value_range=((low - mean) / std, (high - mean) / std),
        outputs=outputs,
        labels_file=LABELS_FILE,
    )


def metadata_buffers(tflite_path):
    """The model metadata entries of a `.tflite` file: `{name: bytes}`."""
    from ai_edge_litert import schema_py_generated as schema

    with open(tflite_path, "rb") as f:
        model = schema.Model.GetRootAs(bytearray(f.read()), 0)
    return {
        model.Metadata(i).Name().decode(): model.Buffers(model.Metadata(i).Buffer())
        .DataAsNumpy()
        .tobytes()
        for i in range(model.MetadataLength())
    }


def read_metadata(tflite_path):
    """`(contract dict, label_names)` embedded by `convert`."""
    entries = metadata_buffers(tflite_path)
    found = {
        name: data
        for name, data in entries.items()
        if name in (CONTRACT_METADATA, LABELS_METADATA)
    }
    if set(found) != {CONTRACT_METADATA, LABELS_METADATA}:
        raise ValueError(
            f"{tflite_path} has no kmlc metadata (was it written by "
            f"kmlc.lite.convert?). Received: metadata {sorted(found)}"
        )
    labels = found[LABELS_METADATA].decode("utf-8").splitlines()
    return json.loads(found[CONTRACT_METADATA]), labels


# === Inference ===


class Predictor:
    """Runs a kmlc `.tflite` model through its `serving_images` signature.

    Uses the LiteRT interpreter (`ai-edge-litert`). Int8 inputs and outputs
    are quantized and dequantized here, so `predict` takes float images and
    returns float scores whatever the quantization.

    Args:
        tflite_path: str. A model written by `kmlc.lite.convert`.
        num_threads: int or None. Interpreter threads. Defaults to None
            (LiteRT's default).

    Attributes:
        label_names: list of str, from the model's metadata.
        image_size: `(H, W)`.
        contract: dict. The embedded input contract.
        delegate: str. `"xnnpack"` (LiteRT's default CPU delegate) or
            `"none"`: XNNPACK fails to prepare some int8 graphs, and then
            the builtin kernels run the model (slower).

    Example:
    >>> predictor = Predictor("model.tflite")
    >>> scores = predictor.predict(images)  # [B, D]
    """

    def __init__(self, tflite_path, num_threads=None):
        tflite_path = os.fspath(tflite_path)
        if not os.path.isfile(tflite_path):
            raise FileNotFoundError(f"No such TFLite model: {tflite_path}")
        self.path = tflite_path
        self.contract, self.label_names = read_metadata(tflite_path)
        self.image_size = tuple(self.contract["image_size"])
        self.num_threads = num_threads
        self.delegate = "xnnpack"
        self._load()

    def _load(self, op_resolver_type=None):
        from ai_edge_litert.interpreter import Interpreter

        kwargs = {"num_threads": self.num_threads}
        if op_resolver_type is not None:
            kwargs["experimental_op_resolver_type"] = op_resolver_type
        self._interpreter = Interpreter(model_path=self.path, **kwargs)
        self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        self._input = self._runner.get_input_details()["images"]
        self._outputs = self._runner.get_output_details()

    def _invoke(self, image):
        try:
            return self._runner(images=image)
        except RuntimeError as error:
            if self.delegate != "xnnpack" or "XNNPACK" not in str(error):
                raise
        # LiteRT's XNNPACK delegate fails to prepare some int8 graphs
        # ("failed to create XNNPACK runtime"); the builtin kernels run them.
        from ai_edge_litert.interpreter import OpResolverType

        logger.warning(
            "XNNPACK could not run %s; using LiteRT's builtin kernels", self.path
        )
        self.delegate = "none"
        self._load(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        return self._runner(images=image)

    def _run(self, images):
        images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != (*self.image_size, 3):
            raise ValueError(
                f"Expected images [B, {self.image_size[0]}, {self.image_size[1]}, "
                f"3] (RGB, 0..255). Received: shape {images.shape}"
            )
        dtype = np.dtype(self._input["dtype"])
        if dtype != np.float32:
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            images = np.clip(np.round(images / scale + zero_point), info.min, info.max)
        images = images.astype(dtype)
        # One image a call, at the model's own batch of 1: resizing the input
        # of an int8 model makes LiteRT's XNNPACK delegate fail to prepare
        # ("failed to create XNNPACK runtime"), and batch 1 is how mobile
        # apps run it.
        rows = [self._invoke(image[None]) for image in images]
        result = {}
        for name, detail in self._outputs.items():
            value = np.concatenate([row[name] for row in rows]) if rows else None
            if value is None:
                value = np.zeros((0, *detail["shape"][1:]), np.float32)
            elif np.dtype(detail["dtype"]) != np.float32:
                scale, zero_point = detail["quantization"]
                value = (value.astype(np.float32) - zero_point) * scale
            result[name] = value.astype(np.float32)
        return result

    def logits(self, images):
        """Logits `[B, D]` for float images `[B, H, W, 3]`."""
        return self._run(images)["logits"]

    def predict(self, images):
        """Scores `[B, D]` (sigmoid of the logits) for images `[B, H, W, 3]`.

        The sigmoid is taken here, in float32, of the (dequantized) logits
        output: an int8 `scores` output has 256 levels, which collapse low
        scores together and so lose the ranking.
        """
        return sigmoid(self.logits(images)).astype(np.float32)


def latency_ms(fn, image, runs=20, warmup=3):
    """Median wall time of `fn(image)` in milliseconds over `runs` calls."""
    for _ in range(warmup):
        fn(image)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(image)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def evaluate(tflite_path, dataset, keras_model=None, num_threads=None):
    """mAP, file size and CPU latency of a `.tflite` model on a dataset.

    Args:
        tflite_path: str. A model written by `convert`.
        dataset: iterable of `(images [B, H, W, 3], labels [B, D])` batches,
            such as `kmlc.data.make_dataset(..., training=False)`.
        keras_model: keras.Model or None. If given, its mAP on the same
            images is reported beside (`keras_mAP`).
        num_threads: int or None. LiteRT interpreter threads.

    Returns:
        dict: `mAP` (0..1, `kmlc.metrics.mean_average_precision` of the
        logits), `file_size_bytes`, `latency_ms_batch1` (median of 20 runs
        on one image), `num_images`, `delegate` (see `Predictor`), and
        with a Keras model `keras_mAP` and `mAP_drop_points` (Keras minus
        TFLite, times 100).
    """
    from kmlc.metrics import mean_average_precision

    predictor = Predictor(tflite_path, num_threads=num_threads)
    lite_logits, keras_logits, labels = [], [], []
    first = None
    for images, batch_labels in dataset:
        images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
        if first is None and len(images):
            first = images[:1]
        lite_logits.append(predictor.logits(images))
        labels.append(np.asarray(keras.ops.convert_to_numpy(batch_labels)))
        if keras_model is not None:
            keras_logits.append(
                keras.ops.convert_to_numpy(keras_model(images, training=False))
            )
    if first is None:
        raise ValueError(
            "The dataset is empty: nothing to evaluate. Received: 0 images"
        )
    labels = np.concatenate(labels)
    result = {
        "mAP": mean_average_precision(labels, np.concatenate(lite_logits)),
        "file_size_bytes": os.path.getsize(tflite_path),
        "latency_ms_batch1": latency_ms(predictor.logits, first),
        "num_images": int(labels.shape[0]),
        "delegate": predictor.delegate,
    }
    if keras_model is not None:
        keras_map = mean_average_precision(labels, np.concatenate(keras_logits))
        result["keras_mAP"] = keras_map
        result["mAP_drop_points"] = 100.0 * (keras_map - result["mAP"])
    return result
