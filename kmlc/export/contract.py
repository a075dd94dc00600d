"""What every export format shares: file names, metadata keys, the labels.

An exported model carries its label names and a description of its input
and outputs (the contract), whatever the format:

- SavedModel: `assets/labels.txt` and `assets/kmlc_config.json`;
- TFLite: the metadata entries `kmlc_labels` (one label a line) and
  `kmlc_contract` (JSON), and the associated files `labels.txt` and
  `kmlc_contract.json`;
- ONNX: the `metadata_props` `kmlc_labels` (a JSON list) and
  `kmlc_contract` (JSON).

The contract holds the model's per-label decision `thresholds` (D floats;
0.5 each for a model without its own, `kmlc.thresholds`): label d is
predicted when `scores[d] >= thresholds[d]`. The SavedModel applies them
itself (its `decisions` output).

A `.tflite` or `.onnx` file also gets `<file>.labels.txt` beside it. The
labels file holds one label a line, in output order.
"""

import os

from kmlc import io as kmlc_io

LABELS_FILE = "labels.txt"
CONFIG_FILE = "kmlc_config.json"
CONTRACT_FILE = "kmlc_contract.json"
LABELS_SUFFIX = ".labels.txt"
LABELS_METADATA = "kmlc_labels"
CONTRACT_METADATA = "kmlc_contract"
SCORES_MEANING = "sigmoid of the logits"
DECISIONS_MEANING = "scores >= thresholds: whether each label is predicted"
# The images every format takes, before any normalisation of the model's own.
INPUT = {
    "color": "RGB",
    "range": [0.0, 255.0],
    "resize": "bilinear, no crop, aspect ratio not kept",
}


# === The labels file ===


def labels_text(label_names):
    """The labels file's text: one label a line, each line ended."""
    return "".join(f"{label}\n" for label in label_names)


def write_labels(path, label_names):
    """Writes the labels file to `path` atomically. Returns `path`."""
    return kmlc_io.write_text(path, labels_text(label_names))


def labels_path(model_path):
    """The labels file written beside a `.tflite` or `.onnx` file."""
    return os.fspath(model_path) + LABELS_SUFFIX


def read_labels(path):
    """The label names of a labels file; blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


# === What the model tells ===


def model_image_size(model):
    """`(H, W)` of a built model's image input; errors name what is wrong."""
    if not model.built:
        raise ValueError(
            "The model was never built, so its input shape is unknown: call "
            "it on a batch of images or build it with an Input first. "
            f"Received: model={model.name!r} (built=False)"
        )
    size = getattr(model, "image_size", None)
    if size is None:
        shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
        if len(shape) != 4 or shape[-1] != 3 or None in shape[1:3]:
            raise ValueError(
                "Cannot tell the image size: the model has no `image_size` "
                "and its input is not [B, H, W, 3] with known H and W. "
                f"Received: input shape {shape}"
            )
        size = shape[1:3]
    return int(size[0]), int(size[1])


def num_logits(model, image_size):
    """D: the width of the model's logits, from one black image."""
    import keras

    probe = keras.ops.zeros((1, *image_size, 3))
    return int(keras.ops.shape(model(probe, training=False))[-1])


def model_label_names(model, num_labels):
    """The model's label names, or `label_0`... when it has none."""
    from kmlc.head_training import checked_label_names

    return checked_label_names(getattr(model, "label_names", None), num_labels)


def model_thresholds(model, num_labels):
    """The model's per-label thresholds as D floats (0.5 each if it has none)."""
    from kmlc.thresholds import DEFAULT_THRESHOLD
    from kmlc.thresholds import check_thresholds

    values = getattr(model, "thresholds", None)
    if values is None:
        values = [DEFAULT_THRESHOLD] * num_labels
    values = check_thresholds(values, num_labels)
    return [float(value) for value in values]


def head_layer_names(model):
    """The names of the model's head layers, or None if it publishes none.

    A `kmlc.MultiLabelClassifier` lists them (`head_layer_names()`); other
    models have no heads kmlc knows of.
    """
    method = getattr(model, "head_layer_names", None)
    return list(method()) if callable(method) else None


def model_config(model, image_size, label_names):
    """What a client needs to use an export (`kmlc_config.json`).

    Each format adds its `outputs` (and the SavedModel its `signatures`).
    """
    from kmlc.version import __version__

    backbone = getattr(model, "backbone_name", None)
    if backbone is None and getattr(model, "backbone", None) is not None:
        backbone = f"custom:{model.backbone.name}"
    heads = getattr(model, "heads", None)
    return {
        "kmlc_version": __version__,
        "model_name": model.name,
        "backbone": backbone,
        "heads": list(heads) if heads is not None else None,
        "head_layers": head_layer_names(model),
        "image_size": list(image_size),
        "num_labels": len(label_names),
        "preprocessing": getattr(model, "preprocessing_mode", None),
        "input": dict(INPUT),
        "labels_file": LABELS_FILE,
        "thresholds": model_thresholds(model, len(label_names)),
        "decision": "label d is predicted when scores[d] >= thresholds[d]",
    }
