"""How a TFLite model is quantized: the modes, calibration, what stays float.

`QUANTIZE_MODES` is the registry of `kmlc.export.lite.convert`'s
`quantize` values (and of `kmlc export --quantize`): each `QuantizeMode`
sets up the TF Lite converter. A full-integer (`"int8"`) model is
calibrated on images (`calibration_samples`) and keeps some of its graph in
float: the ops XNNPACK has no int8 kernel for (`INT8_FLOAT_OPS`) and the
model's heads (`head_tensors`), through the quantization debugger's deny
list (`run_converter`).
"""

import dataclasses
import re

import numpy as np

from kmlc.export.saved_model import SERVING_IMAGES as SIGNATURE

# Ops kept in float32 in int8 models: ai-edge-litert 2.3's XNNPACK delegate
# has no int8 kernel for them (HARD_SWISH: MobileNetV3; SOFTMAX and
# BATCH_MATMUL: the GCN and attention heads).
INT8_FLOAT_OPS = ("HARD_SWISH", "SOFTMAX", "BATCH_MATMUL")


# === Quantize modes ===


@dataclasses.dataclass(frozen=True)
class QuantizeMode:
    """One value of `kmlc.export.lite.convert(..., quantize=...)`.

    Attributes:
        name: str.
        description: str. What gets quantized, in a few words.
        full_integer: bool. Weights and activations in int8: needs
            calibration images, and takes `int8_io`, `float_ops` and
            `float_heads`.
        int8_weights: bool. Leaves float32 constants that `int8_weights`
            can store as int8.
        configure: callable `(converter, samples, int8_io, keep_float)`
            setting up a `tf.lite.TFLiteConverter`.
    """

    name: str
    description: str
    full_integer: bool
    int8_weights: bool
    configure: object


def _configure_float32(converter, samples, int8_io, keep_float):
    """The converter's defaults: nothing is quantized."""


def _configure_float16(converter, samples, int8_io, keep_float):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _configure_dynamic(converter, samples, int8_io, keep_float):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _configure_int8(converter, samples, int8_io, keep_float):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if keep_float:
        # The float kernels of the ops left out of quantization.
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


QUANTIZE_MODES = {
    mode.name: mode
    for mode in (
        QuantizeMode(
            name="float32",
            description="no quantization",
            full_integer=False,
            int8_weights=False,
            configure=_configure_float32,
        ),
        QuantizeMode(
            name="float16",
            description="float16 weights",
            full_integer=False,
            int8_weights=False,
            configure=_configure_float16,
        ),
        QuantizeMode(
            name="dynamic",
            description="int8 weights, float activations",
            full_integer=False,
            int8_weights=True,
            configure=_configure_dynamic,
        ),
        QuantizeMode(
            name="int8",
            description="int8 weights and activations, calibrated on images",
            full_integer=True,
            int8_weights=True,
            configure=_configure_int8,
        ),
    )
}


def quantize_mode(name):
    """The `QuantizeMode` called `name`; errors list the known ones."""
    if name not in QUANTIZE_MODES:
        raise ValueError(
            f"Unknown quantize mode. Expected one of {tuple(QUANTIZE_MODES)}. "
            f"Received: quantize={name!r}"
        )
    return QUANTIZE_MODES[name]


def modes_where(attribute):
    """The names of the quantize modes whose `attribute` is true."""
    return [name for name, mode in QUANTIZE_MODES.items() if getattr(mode, attribute)]


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
    import keras

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


def calibration_dataset(image_set, image_size, batch_size=32):
    """Batches of an `ImageSet` for `representative_data` (no augmentation)."""
    from kmlc import data

    return data.make_dataset(image_set, image_size, batch_size, training=False)


def tensor_names(lite_dir):
    """The tensor names of the float32 conversion of `lite_dir`."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    converter = tf.lite.TFLiteConverter.from_saved_model(
        lite_dir, signature_keys=[SIGNATURE]
    )
    interpreter = Interpreter(model_content=converter.convert())
    return [detail["name"] for detail in interpreter.get_tensor_details()]


def head_tensors(tensor_names, head_layers):
    """The TFLite tensors computed by the layers `head_layers` names.

    A TFLite tensor is named after the name scopes of the op that computes
    it (`kmlc_1/label_gcn_1/MatMul`). Every head layer must compute at
    least one tensor: one that matches none was renamed or fused away, and
    would silently be quantized.
    """
    patterns = {
        name: re.compile(r"/%s(_\d+)?/" % re.escape(name)) for name in head_layers
    }
    found = {
        name: [t for t in tensor_names if pattern.search(t + "/")]
        for name, pattern in patterns.items()
    }
    missing = [name for name, tensors in found.items() if not tensors]
    if missing:
        raise ValueError(
            f"float_heads keeps the model's head layers in float, but no op of "
            f"the converted model belongs to the head layer(s) {missing}. Pass "
            "float_heads=False to quantize the heads. Received: head layers "
            f"{list(head_layers)}"
        )
    return sorted({tensor for tensors in found.values() for tensor in tensors})


def run_converter(converter, mode, samples, float_ops, float_nodes=()):
    """The converted flatbuffer, with `float_ops` and `float_nodes` left float."""
    import tensorflow as tf

    if not mode.full_integer or not (float_ops or float_nodes):
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
