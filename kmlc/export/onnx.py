"""ONNX export through Keras 3's exporter (tf2onnx on the TensorFlow backend).

The ONNX graph takes `images` float32 `[B, H, W, 3]` (RGB, 0..255) and
returns `logits` and `scores` (sigmoid of the logits) `[B, D]`. The label
names and the input contract, with the per-label `thresholds` (predict label
d when `scores[d] >= thresholds[d]`), travel as the model's `metadata_props`
(`kmlc_labels`: a JSON list; `kmlc_contract`: JSON; the keys of
`kmlc.export.contract`), and `<output>.labels.txt` is written beside the
model. `onnx` and `tf2onnx` (base requirements) are imported when used.
"""

import json
import logging
import os

from kmlc import io as kmlc_io
from kmlc.export import contract
from kmlc.export.contract import CONTRACT_METADATA
from kmlc.export.contract import LABELS_METADATA
from kmlc.precision import to_float32

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17


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
    image_size = contract.model_image_size(model)
    model = to_float32(model)
    label_names = contract.model_label_names(
        model, contract.num_logits(model, image_size)
    )
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
        onnx_contract = contract.model_config(model, image_size, label_names)
        onnx_contract.update(
            {
                "format": "kmlc-onnx",
                "opset": opset,
                "outputs": {
                    "logits": "the model's logits",
                    "scores": contract.SCORES_MEANING,
                },
            }
        )
        for key, value in (
            (LABELS_METADATA, json.dumps(label_names)),
            (CONTRACT_METADATA, json.dumps(onnx_contract)),
        ):
            entry = onnx_model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(onnx_model)
        onnx.save(onnx_model, temp)
    contract.write_labels(contract.labels_path(output_path), label_names)
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
        "kmlc.export.onnx.export_onnx?)"
    )
