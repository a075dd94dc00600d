"""ONNX export through Keras 3's exporter (tf2onnx on the TensorFlow backend).

The ONNX graph takes `images` float32 `[B, H, W, 3]` (RGB, 0..255) and
returns `logits` and `scores` (sigmoid of the logits) `[B, D]`. The label
names and the input contract travel as the model's `metadata_props`
(`kmlc_labels`: a JSON list; `kmlc_contract`: JSON), and
`<output>.labels.txt` is written beside the model.
"""

import json
import logging
import os

import keras

from kmlc import export as export_lib
from kmlc import io as kmlc_io
from kmlc.precision import to_float32

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
LABELS_METADATA = "kmlc_labels"
CONTRACT_METADATA = "kmlc_contract"


def _add_scores(onnx_model):
    """Names the output `logits` and adds `scores = Sigmoid(logits)`."""
    import onnx
    from onnx import helper

    graph = onnx_model.graph
    if len(graph.output) != 1:
        raise ValueError(
            "Expected one ONNX output (the logits). Received: outputs "
            f"{[output.name for output in graph.output]}"
        )
    old = graph.output[0].name
    for node in graph.node:
        node.input[:] = ["logits" if name == old else name for name in node.input]
        node.output[:] = ["logits" if name == old else name for name in node.output]
    graph.output[0].name = "logits"
    graph.node.append(
        helper.make_node("Sigmoid", ["logits"], ["scores"], name="scores")
    )
    scores = onnx.ValueInfoProto()
    scores.CopyFrom(graph.output[0])
    scores.name = "scores"
    graph.output.append(scores)


def export_onnx(model, output_path, opset=DEFAULT_OPSET):
    """Exports a model to ONNX: images -> `logits`, `scores`.

    A mixed-precision model is rebuilt in float32 first (Keras' ONNX
    exporter needs the float32 policy).

    Args:
        model: keras.Model. A built model from images `[B, H, W, 3]` (RGB,
            0..255) to logits `[B, D]`, normally a `kmlc.MultiLabelClassifier`.
        output_path: str. The `.onnx` file; written atomically, with
            `<output_path>.labels.txt` beside it.
        opset: int. The ONNX opset. Defaults to 17.

    Returns:
        str. `output_path`.

    Example:
    >>> export_onnx(model, "model.onnx")
    >>> session = onnxruntime.InferenceSession("model.onnx")
    >>> logits, scores = session.run(["logits", "scores"], {"images": images})
    """
    import onnx
    import tensorflow as tf

    output_path = os.fspath(output_path)
    if os.path.isdir(output_path):
        raise ValueError(
            "output_path is a directory; give the .onnx file to write. "
            f"Received: output_path={output_path!r}"
        )
    opset = int(opset)
    image_size = export_lib.model_image_size(model)
    model = to_float32(model)
    probe = keras.ops.zeros((1, *image_size, 3))
    num_labels = int(keras.ops.shape(model(probe, training=False))[-1])
    label_names = export_lib.model_label_names(model, num_labels)
    with kmlc_io.atomic_path(output_path) as temp:
        model.export(
            temp,
            format="onnx",
            verbose=False,
            opset_version=opset,
            input_signature=[
                tf.TensorSpec((None, *image_size, 3), tf.float32, name="images")
            ],
        )
        onnx_model = onnx.load(temp)
        _add_scores(onnx_model)
        contract = export_lib.model_config(model, image_size, label_names)
        contract.update(
            {
                "format": "kmlc-onnx",
                "opset": opset,
                "outputs": {
                    "logits": "the model's logits",
                    "scores": "sigmoid of the logits",
                },
            }
        )
        contract.pop("signatures", None)
        for key, value in (
            (LABELS_METADATA, json.dumps(label_names)),
            (CONTRACT_METADATA, json.dumps(contract)),
        ):
            entry = onnx_model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(onnx_model)
        onnx.save(onnx_model, temp)
    kmlc_io.write_text(
        output_path + ".labels.txt", "".join(f"{label}\n" for label in label_names)
    )
    logger.info("Wrote %s (opset %d)", output_path, opset)
    return output_path


def read_labels(onnx_path):
    """The label names stored in an ONNX file written by `export_onnx`."""
    import onnx

    model = onnx.load(os.fspath(onnx_path), load_external_data=False)
    for entry in model.metadata_props:
        if entry.key == LABELS_METADATA:
            return json.loads(entry.value)
    raise ValueError(
        f"{onnx_path} has no {LABELS_METADATA!r} metadata (was it written by "
        "kmlc.onnx_export.export_onnx?)"
    )
