"""TFLite / LiteRT conversion: a Keras model or SavedModel to a `.tflite` file.

Conversion starts from the SavedModel's `serving_images` signature (a Keras
model is first exported to a temporary SavedModel with
`kmlc.export.saved_model`). The `.tflite` model has one signature,
`serving_images`: input `images` float32 `[B, H, W, 3]` (RGB, 0..255; int8
with `int8_io=True`), outputs `logits` and `scores` (sigmoid of the logits)
`[B, D]`; B is fixed at 1 unless `convert(..., batch_size=None)`. The label
names string output of the SavedModel is left out: the labels travel as
metadata instead (`kmlc.export.lite_metadata`), and `<output>.labels.txt`
is written beside the model; so do the model's per-label `thresholds` (the
contract's, `kmlc.export.contract`), which
`kmlc.export.lite_runtime.Predictor.decisions` applies. `Predictor` runs it.

Quantization (`QUANTIZE_MODES`, from `kmlc.export.lite_quantize`): `"int8"`
quantizes the backbone fully (weights and activations) and keeps the heads
(the layers the model names in `head_layer_names()`) and the ops XNNPACK
has no int8 kernel for computing in float32; the float32 constants that
leaves (the heads' weights) are then stored as int8 and dequantized once at
load (`kmlc.export.lite_weights`), so the file is about a quarter of the
float32 one while the label ranking stays close to float's. Converter errors that
name ops TFLite lacks are turned into the layer and op (`unsupported_ops`).
"""

import contextlib
import logging
import os
import re
import tempfile

import keras
import numpy as np

from kmlc import io as kmlc_io
from kmlc.export import contract
from kmlc.export import lite_quantize
from kmlc.export import saved_model
from kmlc.export.lite_metadata import embed_metadata
from kmlc.export.lite_quantize import INT8_FLOAT_OPS
from kmlc.export.lite_quantize import QUANTIZE_MODES
from kmlc.export.lite_quantize import calibration_dataset
from kmlc.export.lite_quantize import calibration_samples
from kmlc.export.lite_quantize import quantize_mode
from kmlc.export.lite_weights import store_float_weights_as_int8
from kmlc.precision import all_layers
from kmlc.precision import to_float32

__all__ = [
    "INT8_FLOAT_OPS",
    "QUANTIZE_MODES",
    "calibration_dataset",
    "calibration_samples",
    "convert",
    "quantize_mode",
    "unsupported_ops",
]

logger = logging.getLogger(__name__)

SIGNATURE = saved_model.SERVING_IMAGES


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


@contextlib.contextmanager
def _converter_errors(model, quantize):
    """Turns the converter's errors into `_convert_error`'s."""
    try:
        yield
    except Exception as error:  # the converter raises several types
        raise _convert_error(error, model, quantize) from error


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
            directory of a SavedModel written by
            `kmlc.export.export_saved_model`.
        output_path: str. The `.tflite` file; written atomically, with
            `<output_path>.labels.txt` beside it.
        quantize: str. A `QUANTIZE_MODES` name: `"float32"`, `"float16"`
            (float16 weights), `"dynamic"` (int8 weights, float activations)
            or `"int8"` (full integer: weights and activations; needs
            `representative_data`). Defaults to `"float32"`.
        representative_data: iterable of image batches `[B, H, W, 3]` (RGB,
            0..255) or of `(images, labels)` pairs, for `"int8"`.
        num_calibration_samples: int. Images used for int8 calibration.
            Defaults to 200.
        int8_io: bool. With `"int8"`, make the input and outputs int8 too
            (`kmlc.export.lite_runtime.Predictor` quantizes and dequantizes).
            Defaults to False
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
        float_heads: bool. With `"int8"`, keep the heads (the layers the
            model names in `head_layer_names()`, kept in the SavedModel's
            `kmlc_config.json`) in float32: only the backbone is quantized.
            Quantizing the GCN and attention heads costs label ranking (a
            small conv net on Corel-5k: 3.0 mAP points lost with int8
            heads, 0.2 with float heads) for little compute. Their weights
            are still stored as int8 (`int8_weights`). A head layer that no
            op of the converted model belongs to is an error. Defaults to
            True.
        int8_weights: bool. With `"int8"` or `"dynamic"`, store the float32
            constants the converter leaves (the float heads' weights, gather
            tables) as int8 and dequantize them once at load
            (`kmlc.export.lite_weights`): the file shrinks to about a
            quarter of float32's, the float ops stay float. Defaults to True.

    Returns:
        str. `output_path`.
    """
    import tensorflow as tf

    mode = quantize_mode(quantize)
    if int8_io and not mode.full_integer:
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
            saved_model.write_saved_model(keras_model, saved_model_dir, warmup=False)
        else:
            saved_model_dir = os.fspath(model)
            if not os.path.isdir(saved_model_dir):
                raise FileNotFoundError(
                    "Expected a keras.Model or a SavedModel directory. "
                    f"Received: model={model!r}"
                )
        config = saved_model.read_config(saved_model_dir)
        if label_names is None:
            label_names = saved_model.read_labels(saved_model_dir)
        lite_dir = os.path.join(work, "lite")
        image_size = _lite_saved_model(saved_model_dir, lite_dir, batch_size)
        samples = None
        if mode.full_integer:
            samples = calibration_samples(
                representative_data, image_size, num_calibration_samples
            )
        float_nodes = ()
        if mode.full_integer and float_heads:
            float_nodes = _float_heads(lite_dir, config, keras_model, quantize)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            lite_dir, signature_keys=[SIGNATURE]
        )
        mode.configure(converter, samples, int8_io, bool(float_ops or float_heads))
        with _converter_errors(keras_model, quantize):
            flatbuffer = lite_quantize.run_converter(
                converter, mode, samples, float_ops, float_nodes
            )
    int8_weights = bool(int8_weights) and mode.int8_weights
    if int8_weights:
        flatbuffer = store_float_weights_as_int8(flatbuffer)
    lite_contract = _contract(flatbuffer, image_size, label_names, quantize, config)
    if mode.full_integer:
        lite_contract["float_ops"] = list(float_ops or ())
        lite_contract["float_heads"] = bool(float_nodes)
    if mode.int8_weights:
        lite_contract["int8_weights"] = int8_weights
    data = embed_metadata(flatbuffer, label_names, lite_contract)
    kmlc_io.write_bytes(output_path, data)
    contract.write_labels(contract.labels_path(output_path), label_names)
    logger.info("Wrote %s (%s, %.1f KiB)", output_path, quantize, len(data) / 1024)
    return output_path


def _float_heads(lite_dir, config, keras_model, quantize):
    """The tensors `float_heads` keeps in float: those of the model's heads."""
    head_layers = config.get("head_layers")
    if not head_layers:
        logger.warning(
            "float_heads: the model names no head layers (it is not a "
            "kmlc.MultiLabelClassifier, or its SavedModel predates "
            "'head_layers' in %s), so the whole model is quantized",
            contract.CONFIG_FILE,
        )
        return ()
    with _converter_errors(keras_model, quantize):
        names = lite_quantize.tensor_names(lite_dir)
    return lite_quantize.head_tensors(names, head_layers)


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
        "labels_file": contract.LABELS_FILE,
        "input": {
            "name": "images",
            **contract.INPUT,
            "normalization": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            **describe(inputs["images"]),
        },
        "outputs": {
            "logits": {"meaning": "the model's logits", **describe(outputs["logits"])},
            "scores": {
                "meaning": contract.SCORES_MEANING,
                **describe(outputs["scores"]),
            },
        },
        "thresholds": config.get("thresholds") or [0.5] * len(label_names),
        "decision": "label d is predicted when scores[d] >= thresholds[d]",
        "model": config,
    }
