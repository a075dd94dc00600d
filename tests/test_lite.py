"""Tests for `kmlc.lite`: TFLite conversion, metadata, Predictor, evaluate."""

import collections
import json
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import kmlc
from kmlc import export
from kmlc import lite
from kmlc.metrics import mean_average_precision
from tests.test_export import LABELS
from tests.test_export import SIZE
from tests.test_export import tiny_model

# Tolerances on logits, relative to the largest |logit| of the batch.
TOLERANCE = {"float32": 1e-5, "float16": 1e-2}


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def saved_model_dir(model, tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("sm") / "model")
    export.write_saved_model(model, directory, warmup=False)
    return directory


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("f4")


@pytest.fixture(scope="module")
def converted(saved_model_dir, images, tmp_path_factory):
    directory = tmp_path_factory.mktemp("lite")
    paths = {}
    for mode in lite.QUANTIZE_MODES:
        paths[mode] = lite.convert(
            saved_model_dir,
            str(directory / f"{mode}.tflite"),
            quantize=mode,
            representative_data=[images, images[::-1]],
        )
    return paths


def keras_logits(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


@pytest.mark.parametrize("mode", lite.QUANTIZE_MODES)
def test_each_mode_converts_and_runs(converted, model, images, mode):
    predictor = lite.Predictor(converted[mode])
    scores = predictor.predict(images)
    assert scores.shape == (4, len(LABELS))
    assert np.all((scores >= 0) & (scores <= 1))
    assert predictor.label_names == LABELS
    assert predictor.image_size == (SIZE, SIZE)
    assert predictor.contract["quantize"] == mode
    assert predictor.contract["input"]["range"] == [0.0, 255.0]
    assert predictor.contract["input"]["color"] == "RGB"
    # Batch 1 after batch 4: the runner resizes its input.
    assert predictor.predict(images[:1]).shape == (1, len(LABELS))
    if mode in TOLERANCE:
        expected = keras_logits(model, images)
        scale = np.abs(expected).max()
        np.testing.assert_allclose(
            predictor.logits(images), expected, atol=TOLERANCE[mode] * scale
        )


def test_sizes_shrink_with_quantization(converted):
    size = {mode: os.path.getsize(path) for mode, path in converted.items()}
    assert size["float16"] < size["float32"]
    assert size["dynamic"] < size["float16"]


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


def test_signature_has_named_inputs_and_outputs(converted):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=converted["float32"])
    assert interpreter.get_signature_list() == {
        "serving_images": {"inputs": ["images"], "outputs": ["logits", "scores"]}
    }


def test_keras_model_argument(model, images, tmp_path):
    path = lite.convert(model, tmp_path / "m.tflite")
    expected = keras_logits(model, images)
    np.testing.assert_allclose(
        lite.Predictor(path).logits(images), expected, atol=1e-5 * abs(expected).max()
    )


def test_int8_io(saved_model_dir, model, images, tmp_path):
    path = lite.convert(
        saved_model_dir,
        tmp_path / "io.tflite",
        quantize="int8",
        representative_data=[images],
        int8_io=True,
    )
    predictor = lite.Predictor(path)
    assert predictor.contract["input"]["dtype"] == "int8"
    assert predictor.contract["outputs"]["logits"]["dtype"] == "int8"
    # Int8 I/O is only a quantize/dequantize around the same int8 graph.
    float_io = lite.Predictor(
        lite.convert(
            saved_model_dir,
            tmp_path / "float_io.tflite",
            quantize="int8",
            representative_data=[images],
        )
    )
    scale = predictor.contract["outputs"]["logits"]["quantization"]["scale"]
    np.testing.assert_allclose(
        predictor.logits(images), float_io.logits(images), atol=2 * scale
    )


def test_mixed_precision_model_converts(tmp_path, images):
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model(heads="full")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert lite.is_mixed_precision(model)
    path = lite.convert(model, tmp_path / "mixed.tflite")
    assert keras.mixed_precision.global_policy().name == previous
    assert lite.is_mixed_precision(model)  # the user's model is untouched
    float32_model = lite.to_float32(model)
    assert not lite.is_mixed_precision(float32_model)
    expected = keras_logits(float32_model, images)
    got = lite.Predictor(path).logits(images)
    np.testing.assert_allclose(got, expected, atol=1e-5 * abs(expected).max())
    # ... and close to the float16 model itself.
    mixed = keras_logits(model, images)
    np.testing.assert_allclose(got, mixed, atol=1e-2 * abs(mixed).max())


# === Real data: int8 ranks labels like Keras ===


def corel_subset(corel5k_dir, size, first, count, labels):
    samples = json.loads((corel5k_dir / "train.json").read_text())["samples"]
    samples = samples[first : first + count]
    images = np.stack(
        [
            np.asarray(
                Image.open(corel5k_dir / "images" / s["image_name"])
                .convert("RGB")
                .resize((size, size), Image.BILINEAR),
                dtype="float32",
            )
            for s in samples
        ]
    )
    y = np.array([[name in s["image_labels"] for name in labels] for s in samples])
    return images, y.astype("float32")


@pytest.fixture(scope="module")
def trained(corel5k_dir):
    """A small conv net, heads "full", trained on 300 Corel-5k images."""
    samples = json.loads((corel5k_dir / "train.json").read_text())["samples"]
    counts = collections.Counter(label for s in samples for label in s["image_labels"])
    labels = [label for label, _ in counts.most_common(20)]
    size = 64
    x_train, y_train = corel_subset(corel5k_dir, size, 0, 300, labels)
    x_val, y_val = corel_subset(corel5k_dir, size, 300, 200, labels)
    keras.utils.set_random_seed(0)
    layers = [keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 127.5, -1)]
    for filters in (16, 32, 64, 96):
        layers += [
            keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    model = kmlc.build_model(
        len(labels),
        kmlc.LabelGraph.from_labels(y_train),
        backbone=keras.Sequential(layers, name="convnet"),
        image_size=size,
        heads="full",
        node_dim=16,
        label_names=labels,
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=[])
    model.fit(x_train, y_train, epochs=10, batch_size=32, verbose=0)
    return model, x_train, (x_val, y_val)


def test_int8_ranks_labels_like_keras(trained, tmp_path):
    model, x_train, (x_val, y_val) = trained
    batches = [(x_val[i : i + 50], y_val[i : i + 50]) for i in range(0, 200, 50)]
    keras_map = mean_average_precision(y_val, keras_logits(model, x_val))
    prevalence = y_val.mean()
    assert keras_map > prevalence + 0.03, "the model learned nothing to rank with"
    results = {}
    for mode, int8_io in (("float32", False), ("int8", False), ("int8", True)):
        path = lite.convert(
            model,
            tmp_path / f"{mode}{int8_io}.tflite",
            quantize=mode,
            representative_data=(x_train[i : i + 25] for i in range(0, 100, 25)),
            int8_io=int8_io,
        )
        results[mode, int8_io] = lite.evaluate(path, batches, keras_model=model)
    for result in results.values():
        assert result["keras_mAP"] == pytest.approx(keras_map, abs=1e-6)
        assert result["num_images"] == 200
    assert results["float32", False]["mAP"] == pytest.approx(keras_map, abs=1e-3)
    for key in (("int8", False), ("int8", True)):
        assert abs(results[key]["mAP"] - keras_map) < 0.02, results[key]
    size = {key: result["file_size_bytes"] for key, result in results.items()}
    # The heads compute in float (float_heads) but store int8 weights: a
    # third of float32 here, where the small metadata and the biases weigh
    # more than in a real model (measured 0.33).
    assert size["int8", False] < 0.36 * size["float32", False]


# === evaluate ===


def test_evaluate_reports_map_size_and_latency(converted, model, images):
    labels = np.eye(len(LABELS), dtype="float32")[[0, 1, 2, 3]]
    labels[:, 4] = [1, 0, 1, 0]
    dataset = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    result = lite.evaluate(converted["float32"], dataset, keras_model=model)
    expected = mean_average_precision(labels, keras_logits(model, images))
    assert result["mAP"] == pytest.approx(expected, abs=1e-6)
    assert result["keras_mAP"] == pytest.approx(expected, abs=1e-6)
    assert result["file_size_bytes"] == os.path.getsize(converted["float32"])
    assert result["latency_ms_batch1"] > 0
    assert result["num_images"] == 4
    assert "keras_mAP" not in lite.evaluate(converted["float32"], dataset)


def test_evaluate_empty_dataset(converted):
    with pytest.raises(ValueError, match="dataset is empty"):
        lite.evaluate(converted["float32"], [])


# === Errors ===


def test_int8_without_representative_data(saved_model_dir, tmp_path):
    with pytest.raises(
        ValueError, match=r"needs representative_data.*\[batch, 32, 32, 3\]"
    ):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", quantize="int8")


def test_int8_with_empty_representative_data(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"empty.*\[batch, 32, 32, 3\]"):
        lite.convert(
            saved_model_dir,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=[],
        )
    assert not os.path.exists(tmp_path / "m.tflite")


def test_int8_with_wrong_shape(saved_model_dir, tmp_path):
    wrong = [np.zeros((2, 16, 16, 3), "float32")]
    with pytest.raises(
        ValueError,
        match=r"\[batch, 32, 32, 3\].*Received: a batch of shape \(2, 16, 16, 3\)",
    ):
        lite.convert(
            saved_model_dir,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=wrong,
        )


def test_calibration_takes_pairs_and_caps_samples(images):
    labels = np.zeros((4, len(LABELS)), "float32")
    samples = lite.calibration_samples([(images, labels)] * 3, (SIZE, SIZE), 6)
    assert len(samples) == 6
    assert all(sample.shape == (1, SIZE, SIZE, 3) for sample in samples)
    np.testing.assert_array_equal(samples[4][0], images[0])


def test_bad_quantize_mode(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="Received: quantize='int4'"):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", quantize="int4")


def test_int8_io_needs_int8(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="int8_io=True needs quantize='int8'"):
        lite.convert(saved_model_dir, tmp_path / "m.tflite", int8_io=True)


def test_output_path_is_a_directory(saved_model_dir, tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        lite.convert(saved_model_dir, tmp_path)


def test_missing_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="SavedModel directory"):
        lite.convert(str(tmp_path / "nope"), tmp_path / "m.tflite")


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        lite._write_atomic(str(target), "not bytes: fails inside the write")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]


def test_failed_conversion_keeps_the_old_file(saved_model_dir, tmp_path, monkeypatch):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lite, "embed_metadata", no_space)
    with pytest.raises(OSError, match="No space left"):
        lite.convert(saved_model_dir, target)
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.tflite"]


def test_unsupported_op_names_layer_and_op(tmp_path):
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(8, 3, strides=2),
            keras.layers.Lambda(lambda x: tf.math.bessel_i0e(x), name="odd_op"),
            keras.layers.Conv2D(16, 3, strides=2),
        ],
        name="odd_backbone",
    )
    model = kmlc.build_model(
        len(LABELS), backbone=backbone, image_size=SIZE, heads="baseline"
    )
    with pytest.raises(
        ValueError, match=r"layer 'kmlc/odd_backbone/odd_op' uses op 'BesselI0e'"
    ):
        lite.convert(model, tmp_path / "m.tflite")
    assert not os.path.exists(tmp_path / "m.tflite")


def test_unsupported_ops_parser():
    message = (
        "Could not translate MLIR to FlatBuffer.<unknown>:0: error: "
        'loc(callsite(fused["Erfinv:", "kmlc_1/head_2/Erfinv@__inference_serving_1"] '
        'at fused["StatefulPartitionedCall:", "StatefulPartitionedCall_1"])): '
        "'tf.Erfinv' op is neither a custom op nor a flex op\n"
        'loc(fused["Erfinv:", "kmlc_1/head_2/Erfinv@__inference_serving_1"]): '
        "'tf.Erfinv' op is neither a custom op nor a flex op\n"
    )
    assert lite.unsupported_ops(message) == [("kmlc/head", "Erfinv")]
    assert lite.unsupported_ops("some other failure") == []


def test_other_converter_errors_are_summarised(saved_model_dir, tmp_path, monkeypatch):
    class FailingConverter:
        def convert(self):
            raise RuntimeError("first line of a converter failure\nlong MLIR dump")

    monkeypatch.setattr(
        tf.lite.TFLiteConverter,
        "from_saved_model",
        staticmethod(lambda *args, **kwargs: FailingConverter()),
    )
    with pytest.raises(
        RuntimeError, match=r"TFLite conversion failed: first line .*float32"
    ):
        lite.convert(saved_model_dir, tmp_path / "m.tflite")


def test_predictor_errors(converted, tmp_path):
    predictor = lite.Predictor(converted["float32"])
    with pytest.raises(
        ValueError, match=r"\[B, 32, 32, 3\].*Received: shape \(2, 8, 8, 3\)"
    ):
        predictor.predict(np.zeros((2, 8, 8, 3), "float32"))
    with pytest.raises(FileNotFoundError, match="No such TFLite model"):
        lite.Predictor(tmp_path / "missing.tflite")
    # A .tflite written without kmlc's metadata.
    plain = tf.lite.TFLiteConverter.from_concrete_functions(
        [
            tf.function(lambda x: x * 2.0).get_concrete_function(
                tf.TensorSpec([1, 2], tf.float32)
            )
        ]
    ).convert()
    (tmp_path / "plain.tflite").write_bytes(plain)
    with pytest.raises(ValueError, match="no kmlc metadata"):
        lite.Predictor(tmp_path / "plain.tflite")


def batch_matmul_input_types(path):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    interpreter = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return {
        np.dtype(tensors[index]["dtype"]).name
        for op in interpreter._get_ops_details()
        if op["op_name"] == "BATCH_MATMUL"
        for index in op["inputs"]
    }


def head_tensor_types(path):
    """The float32 / int8 dtypes of the label GCN's tensors."""
    from ai_edge_litert.interpreter import Interpreter

    dtypes = {
        np.dtype(t["dtype"]).name
        for t in Interpreter(model_path=path).get_tensor_details()
        if "/label_gcn" in t["name"]
    }
    return dtypes & {"float32", "int8"}


def test_int8_keeps_float_ops_and_heads_in_float(
    converted, saved_model_dir, images, tmp_path
):
    # Default: the heads and BATCH_MATMUL stay float32 in the int8 model.
    contract = lite.Predictor(converted["int8"]).contract
    assert contract["float_ops"] == list(lite.INT8_FLOAT_OPS)
    assert contract["float_heads"] is True
    assert batch_matmul_input_types(converted["int8"]) == {"float32"}
    assert head_tensor_types(converted["int8"]) == {"float32"}
    int8_heads = lite.convert(
        saved_model_dir,
        tmp_path / "heads.tflite",
        quantize="int8",
        representative_data=[images],
        float_heads=False,
    )
    assert "int8" in head_tensor_types(int8_heads)
    assert batch_matmul_input_types(int8_heads) == {"float32"}
    every = lite.convert(
        saved_model_dir,
        tmp_path / "all.tflite",
        quantize="int8",
        representative_data=[images],
        float_ops=(),
        float_heads=False,
    )
    assert batch_matmul_input_types(every) == {"int8"}


# === Weight-only int8 ===


def dense_and_gather_model(kernel, bias, table, directory):
    """A float32 TFLite model: `x @ kernel + bias` and `table[indices]`."""
    module = tf.Module()

    @tf.function(
        input_signature=[
            tf.TensorSpec([2, kernel.shape[0]], tf.float32),
            tf.TensorSpec([3], tf.int32),
        ]
    )
    def model(x, indices):
        return {
            "dense": tf.matmul(x, tf.constant(kernel)) + tf.constant(bias),
            "gathered": tf.gather(tf.constant(table), indices),
        }

    module.model = model
    tf.saved_model.save(module, str(directory), signatures={"model": model})
    return tf.lite.TFLiteConverter.from_saved_model(str(directory)).convert()


def run_tflite(flatbuffer, **inputs):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    return interpreter.get_signature_runner()(**inputs), interpreter


def test_float_weights_stored_as_int8(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 1, (64, 48)).astype("f4")
    kernel[:, 5] *= 100  # one output channel with a much larger range
    bias = rng.normal(0, 1, 48).astype("f4")
    table = rng.normal(0, 1, (50, 40)).astype("f4")
    x = rng.normal(0, 1, (2, 64)).astype("f4")
    indices = np.array([0, 7, 49], dtype="int32")
    float_model = dense_and_gather_model(kernel, bias, table, tmp_path)

    stored = lite.store_float_weights_as_int8(float_model, min_elements=100)

    # The independent answer: numpy with the weights rounded to 255 levels
    # per channel (TFLite's FULLY_CONNECTED keeps the kernel as [out, in], so
    # channels are output columns; the gather table's are its rows).
    def rounded(values, axis):
        scale = np.abs(values).max(axis=axis, keepdims=True) / 127
        return np.round(values / scale) * scale

    outputs, interpreter = run_tflite(stored, x=x, indices=indices)
    np.testing.assert_allclose(
        outputs["dense"], x @ rounded(kernel, axis=0) + bias, rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        outputs["gathered"], rounded(table, axis=1)[indices], rtol=1e-6, atol=1e-6
    )
    float_outputs, _ = run_tflite(float_model, x=x, indices=indices)
    assert not np.array_equal(outputs["dense"], float_outputs["dense"])
    # Per-channel scales: the large column does not coarsen the others.
    column_error = np.abs(outputs["dense"] - float_outputs["dense"]).max(axis=0)
    assert column_error[5] > 20 * np.delete(column_error, 5).max()

    ops = [op["op_name"] for op in interpreter._get_ops_details()]
    assert ops.count("DEQUANTIZE") == 2
    int8_tensors = {
        tuple(t["shape"]): t
        for t in interpreter.get_tensor_details()
        if np.dtype(t["dtype"]) == np.int8
    }
    assert set(int8_tensors) == {(48, 64), (50, 40)}
    assert len(int8_tensors[48, 64]["quantization_parameters"]["scales"]) == 48
    # The bias (48 < 100 entries) stays float32; 4 bytes a weight become 1.
    saved = len(float_model) - len(stored)
    weights = kernel.size + table.size
    assert 0.7 * 3 * weights < saved < 3 * weights


def test_float_weights_below_the_size_limit_are_kept(tmp_path):
    rng = np.random.default_rng(1)
    float_model = dense_and_gather_model(
        rng.normal(size=(8, 4)).astype("f4"),
        np.zeros(4, "f4"),
        rng.normal(size=(5, 3)).astype("f4"),
        tmp_path,
    )
    assert lite.store_float_weights_as_int8(float_model) == float_model


def test_int8_and_dynamic_store_the_remaining_float_weights(
    saved_model_dir, images, tmp_path
):
    paths = {}
    for mode, int8_weights in (("int8", True), ("int8", False), ("dynamic", True)):
        paths[mode, int8_weights] = lite.convert(
            saved_model_dir,
            tmp_path / f"{mode}{int8_weights}.tflite",
            quantize=mode,
            representative_data=[images],
            int8_weights=int8_weights,
        )
    contracts = {key: lite.Predictor(p).contract for key, p in paths.items()}
    size = {key: os.path.getsize(path) for key, path in paths.items()}
    assert size["int8", True] < 0.9 * size["int8", False]
    assert contracts["int8", True]["int8_weights"] is True
    assert contracts["int8", False]["int8_weights"] is False
    assert contracts["dynamic", True]["int8_weights"] is True
    # Both int8 models compute the same labels: only the weights' storage differs.
    with_int8, with_float = (
        lite.Predictor(paths["int8", flag]).logits(images) for flag in (True, False)
    )
    scale = np.abs(with_float).max()
    np.testing.assert_allclose(with_int8, with_float, atol=0.05 * scale)


# === TFLITE_METADATA, read by MediaPipe ===


def test_mediapipe_reads_the_metadata_and_classifies_like_the_predictor(converted):
    import mediapipe as mp
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import image_classifier

    path = converted["float32"]
    buffer = lite.metadata_buffers(path)["TFLITE_METADATA"]
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
    expected = lite.Predictor(path).predict(pixels[None].astype("float32"))[0]
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
