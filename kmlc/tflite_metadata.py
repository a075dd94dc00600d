"""The TFLite model metadata flatbuffer (`TFLITE_METADATA`) of an image model.

This is the metadata that MediaPipe's image classifier task reads: the
input is an RGB image with its normalisation, and each output's label file
is named. The writers that make it (tflite-support's, MediaPipe's
`metadata_writers`) cannot run beside TensorFlow 2.21, so kmlc builds the
few tables it needs itself, following `metadata_schema.fbs` (TensorFlow
Lite support / MediaPipe, file identifier `M001`). A test reads the result
back with MediaPipe's generated schema and runs MediaPipe's image
classifier on it.
"""

import flatbuffers

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
