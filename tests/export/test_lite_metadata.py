"""Tests for `kmlc.export.lite_metadata`: kmlc's entries and MediaPipe's."""

import json
import zipfile

import numpy as np
import pytest

from kmlc.export import lite
from kmlc.export import lite_metadata
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx

LABELS = fx.LABEL_NAMES
SIZE = fx.IMAGE_SIZE


@pytest.fixture(scope="module")
def converted(saved_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("lite") / "float32.tflite"
    return {"float32": lite.convert(saved_model_dir, path)}


def test_labels_travel_with_the_model(converted):
    path = converted["float32"]
    with open(path + ".labels.txt", encoding="utf-8") as f:
        assert f.read().splitlines() == LABELS
    # Associated files: the model is also a zip holding the label file.
    with zipfile.ZipFile(path) as archive:
        assert archive.read("labels.txt").decode().splitlines() == LABELS
        contract = json.loads(archive.read("kmlc_contract.json"))
    assert contract["image_size"] == [SIZE, SIZE]
    assert contract["input"]["normalization"] == {
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
    }
    assert contract["input"]["shape"] == [1, SIZE, SIZE, 3]
    assert contract["outputs"]["scores"]["shape"] == [1, len(LABELS)]
    assert contract["model"]["heads"] == ["cls", "gcn", "fusion", "attention"]
    # Metadata entries, read with the plain flatbuffer schema.
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as f:
        flat = schema.Model.GetRootAs(bytearray(f.read()), 0)
    names = {flat.Metadata(i).Name().decode() for i in range(flat.MetadataLength())}
    assert {"kmlc_contract", "kmlc_labels"} <= names


def test_read_metadata(converted):
    contract, labels = lite_metadata.read_metadata(converted["float32"])
    assert labels == LABELS
    assert contract["format"] == "kmlc-tflite"
    assert contract["signature"] == "serving_images"
    assert contract["num_labels"] == len(LABELS)


# === TFLITE_METADATA, read by MediaPipe ===


def test_mediapipe_reads_the_metadata_and_classifies_like_the_predictor(converted):
    import mediapipe as mp
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import image_classifier

    path = converted["float32"]
    buffer = lite_metadata.metadata_buffers(path)["TFLITE_METADATA"]
    assert md.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    metadata = md.ModelMetadataT.InitFromPackedBuf(bytearray(buffer), 0)
    (subgraph,) = metadata.subgraphMetadata
    (image,) = subgraph.inputTensorMetadata
    assert image.content.contentPropertiesType == md.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == md.ColorSpaceType.RGB
    normalization = image.processUnits[0].options
    assert list(normalization.mean) == [0.0] * 3
    assert list(normalization.std) == [1.0] * 3
    assert [t.name.decode() for t in subgraph.outputTensorMetadata] == [
        "logits",
        "scores",
    ]
    for tensor in subgraph.outputTensorMetadata:
        (labels,) = tensor.associatedFiles
        assert labels.name == b"labels.txt"
        assert labels.type == md.AssociatedFileType.TENSOR_AXIS_LABELS

    # MediaPipe's image classifier task runs the model and names the labels.
    pixels = np.random.default_rng(5).integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    expected = Predictor(path).predict(pixels[None].astype("float32"))[0]
    options = image_classifier.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=path), max_results=len(LABELS)
    )
    classifier = image_classifier.ImageClassifier.create_from_options(options)
    try:
        result = classifier.classify(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
        )
    finally:
        classifier.close()
    heads = {head.head_name: head.categories for head in result.classifications}
    assert set(heads) == {"logits", "scores"}
    got = {c.category_name: c.score for c in heads["scores"]}
    assert set(got) == set(LABELS)
    np.testing.assert_allclose(
        [got[label] for label in LABELS], expected, rtol=1e-4, atol=1e-5
    )
