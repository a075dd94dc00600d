"""Tests for `kmlc.export.lite_quantize`: the modes, calibration, float heads."""

import logging
import re

import keras
import numpy as np
import pytest

from kmlc.export import lite
from kmlc.export import lite_quantize
from kmlc.export.lite_runtime import Predictor
from tests import model_fixtures as fx

LABELS = fx.LABEL_NAMES
SIZE = fx.IMAGE_SIZE


@pytest.fixture(scope="module")
def int8_path(saved_model_dir, images, tmp_path_factory):
    return lite.convert(
        saved_model_dir,
        tmp_path_factory.mktemp("lite") / "int8.tflite",
        quantize="int8",
        representative_data=[images, images[::-1]],
    )


# === The registry ===


def test_quantize_modes():
    assert list(lite.QUANTIZE_MODES) == ["float32", "float16", "dynamic", "int8"]
    assert lite_quantize.modes_where("full_integer") == ["int8"]
    assert lite_quantize.modes_where("int8_weights") == ["dynamic", "int8"]
    assert lite.quantize_mode("int8") is lite.QUANTIZE_MODES["int8"]
    with pytest.raises(
        ValueError,
        match=r"Expected one of \('float32', 'float16', 'dynamic', 'int8'\)\. "
        r"Received: quantize='int4'",
    ):
        lite.quantize_mode("int4")


def test_the_cli_offers_the_registry():
    from kmlc.cli import build_parser

    parser = build_parser()
    (export,) = [
        action.choices["export"]
        for action in parser._actions
        if getattr(action, "choices", None) and "export" in action.choices
    ]
    (quantize,) = [a for a in export._actions if a.dest == "quantize"]
    assert tuple(quantize.choices) == tuple(lite.QUANTIZE_MODES)


# === Calibration ===


def test_calibration_takes_pairs_and_caps_samples(images):
    labels = np.zeros((4, len(LABELS)), "float32")
    samples = lite_quantize.calibration_samples([(images, labels)] * 3, (SIZE, SIZE), 6)
    assert len(samples) == 6
    assert all(sample.shape == (1, SIZE, SIZE, 3) for sample in samples)
    np.testing.assert_array_equal(samples[4][0], images[0])


# === What stays float ===


@pytest.mark.parametrize(
    "heads, expected",
    [
        ("baseline", ["classifier"]),
        ("gcn", ["feature_activation", "label_gcn", "gcn_scores"]),
        (("cls", "attention"), ["classifier", "relation_attention"]),
        (
            "full",
            [
                "feature_activation",
                "label_gcn",
                "knowledge_fusion",
                "gcn_scores",
                "attention_prior",
                "relation_attention",
            ],
        ),
    ],
)
def test_every_head_layer_computes_tensors_of_the_tflite_model(
    heads, expected, tmp_path
):
    # The model lists its heads (not the trunk, the final sum, the output),
    # and each computes tensors of the converted model, which float_heads
    # finds by name.
    model = fx.tiny_model(heads, seed=0)
    assert model.head_layer_names() == expected
    directory = str(tmp_path / "saved_model")
    lite.saved_model.write_saved_model(model, directory, warmup=False)
    lite._lite_saved_model(directory, str(tmp_path / "lite"))
    names = lite_quantize.tensor_names(str(tmp_path / "lite"))
    found = lite_quantize.head_tensors(names, expected)
    for layer in expected:
        assert any(f"/{layer}_1/" in name for name in found), layer
    assert not any("tiny_backbone" in name for name in found)


def test_a_head_layer_without_tensors_is_an_error():
    names = ["kmlc_1/label_gcn_1/MatMul", "kmlc_1/tiny_backbone_1/conv2d_1/Conv2D"]
    assert lite_quantize.head_tensors(names, ["label_gcn"]) == [names[0]]
    # Layer names are matched whole, with Keras' `_<n>` suffix only.
    with pytest.raises(
        ValueError,
        match=r"no op of the converted model belongs to the head layer\(s\) "
        r"\['label'\]\..*Received: head layers \['label_gcn', 'label'\]",
    ):
        lite_quantize.head_tensors(names, ["label_gcn", "label"])


def test_a_renamed_head_fails_the_int8_conversion(model, images, tmp_path, monkeypatch):
    # As if model.py had renamed a layer without the graph following.
    renamed = [*model.head_layer_names(), "label_gcn_renamed"]
    monkeypatch.setattr(model, "head_layer_names", lambda: renamed)
    with pytest.raises(ValueError, match=r"head layer\(s\) \['label_gcn_renamed'\]"):
        lite.convert(
            model,
            tmp_path / "m.tflite",
            quantize="int8",
            representative_data=[images],
        )
    assert not (tmp_path / "m.tflite").exists()


def test_a_model_without_heads_is_quantized_whole(images, tmp_path, caplog):
    inputs = keras.Input((SIZE, SIZE, 3))
    features = keras.layers.Conv2D(4, 3, strides=4)(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    plain = keras.Model(inputs, outputs, name="plain")
    with caplog.at_level(logging.WARNING, logger="kmlc.export.lite"):
        path = lite.convert(
            plain, tmp_path / "m.tflite", quantize="int8", representative_data=[images]
        )
    assert "names no head layers" in caplog.text
    assert Predictor(path).contract["float_heads"] is False


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


def layer_op_types(path, layer):
    """The float32 / int8 dtypes the ops of a layer compute with.

    The ops whose outputs are named after the layer, but QUANTIZE and
    DEQUANTIZE: those convert at the border of a float layer (their output
    is named after their input), and DEQUANTIZE reads int8-stored weights.
    """
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_litert.interpreter import OpResolverType

    interpreter = Interpreter(
        model_path=path,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    pattern = re.compile(rf"/{layer}(_\d+)?/")
    dtypes = set()
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        names = [tensors[i]["name"] for i in op["outputs"]]
        if any(pattern.search(name) for name in names):
            dtypes |= {
                np.dtype(tensors[i]["dtype"]).name
                for i in [*op["inputs"], *op["outputs"]]
                if i in tensors
            }
    return dtypes & {"float32", "int8"}


def test_int8_keeps_float_ops_and_heads_in_float(
    int8_path, model, saved_model_dir, images, tmp_path
):
    # Default: the heads and BATCH_MATMUL stay float32 in the int8 model.
    contract = Predictor(int8_path).contract
    assert contract["float_ops"] == list(lite.INT8_FLOAT_OPS)
    assert contract["float_heads"] is True
    assert batch_matmul_input_types(int8_path) == {"float32"}
    for layer in model.head_layer_names():
        assert layer_op_types(int8_path, layer) == {"float32"}, layer
    # ... while the backbone computes in int8.
    assert layer_op_types(int8_path, "tiny_backbone") == {"int8"}
    int8_heads = lite.convert(
        saved_model_dir,
        tmp_path / "heads.tflite",
        quantize="int8",
        representative_data=[images],
        float_heads=False,
    )
    assert "int8" in layer_op_types(int8_heads, "label_gcn")
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
