"""kmlc's metadata in a `.tflite` file: what MediaPipe reads, and kmlc's own.

`embed_metadata` adds to a TFLite model:

- `TFLITE_METADATA`: the standard model metadata flatbuffer
  (`metadata_schema.fbs`, file identifier `M001`) that MediaPipe's image
  classifier task reads: the input is an RGB image with its normalisation,
  and `labels.txt` is each output's label file;
- the entries `kmlc_contract` (JSON: input size, dtype, RGB, range 0..255,
  normalisation, quantization, outputs, label file) and `kmlc_labels` (the
  labels, one a line), which `read_metadata` and so
  `kmlc.export.lite_runtime.Predictor` read;
- associated files, appended to the flatbuffer as a zip archive (as
  tflite-support's populator does): `labels.txt` and `kmlc_contract.json`.

The writers that make `TFLITE_METADATA` (tflite-support's, MediaPipe's
`metadata_writers`) cannot run beside TensorFlow 2.21 (tflite-support needs
protobuf < 4; MediaPipe 1.2's writer imports a compiled module its wheel
does not ship), so `image_model_metadata` builds the few tables it needs
itself. A test reads the result back with MediaPipe's generated schema and
runs MediaPipe's image classifier on it.
"""

import io
import json
import zipfile

import flatbuffers
import numpy as np

from kmlc.export import lite_weights
from kmlc.export.contract import CONTRACT_FILE
from kmlc.export.contract import CONTRACT_METADATA
from kmlc.export.contract import LABELS_FILE
from kmlc.export.contract import LABELS_METADATA
from kmlc.export.contract import labels_text

FILE_IDENTIFIER = b"M001"
METADATA_NAME = "TFLITE_METADATA"
# The schema version whose features this writer uses (all from 1.0.0).
MIN_PARSER_VERSION = "1.0.0"

# Enum and union values of metadata_schema.fbs.
_RGB = 1  # ColorSpaceType
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_FEATURE_PROPERTIES = 1  # ContentProperties
_IMAGE_PROPERTIES = 2  # ContentProperties
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions


def image_model_metadata(
    name,
    description,
    input_name,
    mean,
    std,
    value_range,
    outputs,
    labels_file,
):
    """The `TFLITE_METADATA` buffer of an image model with labelled outputs.

    Args:
        name: str. The model's name.
        description: str.
        input_name: str. The image input's name.
        mean: sequence of float. Per-channel normalisation mean (MediaPipe
            feeds `(pixel - mean) / std` for a float input).
        std: sequence of float.
        value_range: `(min, max)` of the input after normalisation.
        outputs: sequence of `(name, description, (min, max))`, one per
            output tensor in the model's output order.
        labels_file: str. The associated file of label names, one a line,
            in output index order.

    Returns:
        bytes. A flatbuffer with file identifier `M001`.
    """
    builder = flatbuffers.Builder(1024)

    def string(text):
        return builder.CreateString(text)

    def floats(values):
        builder.StartVector(4, len(values), 4)
        for value in reversed(list(values)):
            builder.PrependFloat32(float(value))
        return builder.EndVector()

    def tables(offsets):
        builder.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            builder.PrependUOffsetTRelative(offset)
        return builder.EndVector()

    def table(num_slots, offsets=(), bytes_=()):
        """A table from `(slot, offset)` and `(slot, byte value)` fields."""
        builder.StartObject(num_slots)
        for slot, offset in offsets:
            builder.PrependUOffsetTRelativeSlot(slot, offset, 0)
        for slot, value in bytes_:
            builder.PrependUint8Slot(slot, value, 0)
        return builder.EndObject()

    def stats(low, high):
        return table(2, offsets=[(0, floats([high])), (1, floats([low]))])

    def tensor(name, description, content, process_units=None, range_=None, files=()):
        fields = [(0, string(name)), (1, string(description)), (3, content)]
        if process_units is not None:
            fields.append((4, process_units))
        if range_ is not None:
            fields.append((5, stats(*range_)))
        if files:
            fields.append((6, tables(list(files))))
        return table(7, offsets=fields)

    # The input: an RGB image, normalised.
    image_properties = table(2, bytes_=[(0, _RGB)])
    image_content = table(
        3, offsets=[(1, image_properties)], bytes_=[(0, _IMAGE_PROPERTIES)]
    )
    normalization = table(2, offsets=[(0, floats(mean)), (1, floats(std))])
    process_unit = table(
        2, offsets=[(1, normalization)], bytes_=[(0, _NORMALIZATION_OPTIONS)]
    )
    image = tensor(
        input_name,
        "Input image, RGB.",
        image_content,
        process_units=tables([process_unit]),
        range_=value_range,
    )

    # The outputs: one value per label, labels in the associated file.
    output_tensors = []
    for output_name, output_description, output_range in outputs:
        labels = table(
            5,
            offsets=[(0, string(labels_file)), (1, string("Label names."))],
            bytes_=[(2, _TENSOR_AXIS_LABELS)],
        )
        feature_content = table(
            3,
            offsets=[(1, table(0))],
            bytes_=[(0, _FEATURE_PROPERTIES)],
        )
        output_tensors.append(
            tensor(
                output_name,
                output_description,
                feature_content,
                range_=output_range,
                files=[labels],
            )
        )

    subgraph = table(10, offsets=[(2, tables([image])), (3, tables(output_tensors))])
    model = table(
        8,
        offsets=[
            (0, string(name)),
            (1, string(description)),
            (3, tables([subgraph])),
            (7, string(MIN_PARSER_VERSION)),
        ],
    )
    builder.Finish(model, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


# === kmlc's entries ===


def embed_metadata(flatbuffer, label_names, contract):
    """The model with the labels and contract as metadata and associated files."""
    from ai_edge_litert import schema_py_generated as schema

    labels = labels_text(label_names).encode("utf-8")
    contract_json = json.dumps(contract, indent=2).encode("utf-8")
    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    ours = (CONTRACT_METADATA, LABELS_METADATA, METADATA_NAME)
    model.metadata = [
        entry for entry in (model.metadata or []) if entry.name.decode() not in ours
    ]
    for name, data in (
        (CONTRACT_METADATA, contract_json),
        (LABELS_METADATA, labels),
        (METADATA_NAME, _task_metadata(model, contract)),
    ):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(data, dtype=np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    packed = lite_weights.pack(
        model, size_hint=len(flatbuffer) + len(contract_json) + 1024
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(LABELS_FILE, labels)
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
    return image_model_metadata(
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
    """`(contract dict, label_names)` embedded by `kmlc.export.lite.convert`."""
    entries = metadata_buffers(tflite_path)
    found = {
        name: data
        for name, data in entries.items()
        if name in (CONTRACT_METADATA, LABELS_METADATA)
    }
    if set(found) != {CONTRACT_METADATA, LABELS_METADATA}:
        raise ValueError(
            f"{tflite_path} has no kmlc metadata (was it written by "
            f"kmlc.export.lite.convert?). Received: metadata {sorted(found)}"
        )
    labels = found[LABELS_METADATA].decode("utf-8").splitlines()
    return json.loads(found[CONTRACT_METADATA]), labels
