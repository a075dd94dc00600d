"""`Servable` and `ModelStore` details: error mapping, warm-up, signatures."""

import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from kmlc.serving import ModelStore
from kmlc.serving import RequestError
from kmlc.serving import Servable
from kmlc.serving.server.servable import clean_tf_message
from kmlc.serving.server.servable import read_signature_defs
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version


@pytest.fixture(scope="module")
def servable(exported):
    return Servable(exported[0], 1)


@pytest.mark.parametrize(
    "error, code",
    [
        (
            tf.errors.ResourceExhaustedError(None, None, "OOM when allocating"),
            "RESOURCE_EXHAUSTED",
        ),
        (tf.errors.UnknownError(None, None, "kernel blew up"), "INTERNAL"),
        (tf.errors.InvalidArgumentError(None, None, "bad value"), "INVALID_ARGUMENT"),
    ],
)
def test_tensorflow_errors_map_to_status_codes(servable, monkeypatch, error, code):
    def failing(**inputs):
        raise error

    monkeypatch.setitem(servable._functions, "serving_images", failing)
    images = np.zeros((1, 32, 32, 3), np.float32)
    with pytest.raises(RequestError) as info:
        servable.run("serving_images", {"images": images})
    assert info.value.code == code
    assert error.message in info.value.message
    assert "'serving_images'" in info.value.message


def test_strings_that_are_not_bytes_are_invalid(servable):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = [b"a"], [b"a", b"b"]
    with pytest.raises(RequestError, match="cannot be read as DT_STRING") as info:
        servable.run("serving_default", {"images": ragged})
    assert info.value.code == "INVALID_ARGUMENT"


def test_clean_tf_message_drops_graph_decorations():
    error = tf.errors.InvalidArgumentError(
        None,
        None,
        "{{function_node __inference_x_1}} Unknown image file format.\n\t "
        "[[{{node decode}}]] [Op:__inference_x_1]",
    )
    assert clean_tf_message(error) == "Unknown image file format."


def test_request_error_refuses_unknown_codes():
    with pytest.raises(ValueError, match="Received: code='BAD_THING'"):
        RequestError("BAD_THING", "x")
    assert RequestError("NOT_FOUND", "x").http_status == 404
    assert RequestError("RESOURCE_EXHAUSTED", "x", http_status=413).http_status == 413


def test_signatures_are_read_from_pbtxt_too(exported, tmp_path):
    saved_model = saved_model_pb2.SavedModel()
    with open(f"{exported[0]}/saved_model.pb", "rb") as file:
        saved_model.ParseFromString(file.read())
    (tmp_path / "saved_model.pbtxt").write_text(
        text_format.MessageToString(saved_model)
    )
    assert sorted(read_signature_defs(tmp_path)) == [
        "serving_default",
        "serving_images",
    ]
    with pytest.raises(
        FileNotFoundError, match="No saved_model.pb or saved_model.pbtxt"
    ):
        read_signature_defs(tmp_path / "nowhere")


def write_warmup(version_dir, record):
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(record)


def test_warm_up_replays_only_predict_requests(exported, tmp_path):
    copy_version(exported[0], tmp_path, 1)
    log = prediction_log_pb2.PredictionLog()
    log.classify_log.request.model_spec.name = MODEL_NAME
    write_warmup(tmp_path / "1", log.SerializeToString())
    with pytest.raises(
        ValueError, match="replays predict requests only. Received: classify_log"
    ):
        Servable(tmp_path / "1", 1).warm_up()


def test_a_corrupt_warm_up_file_is_an_error(exported, tmp_path):
    copy_version(exported[0], tmp_path, 1)
    path = tmp_path / "1" / "assets.extra" / "tf_serving_warmup_requests"
    path.write_bytes(b"\x01\x02 not a TFRecord file at all")
    with pytest.raises(ValueError, match="Cannot read the warm-up file"):
        Servable(tmp_path / "1", 1).warm_up()


def test_the_export_warm_up_replays_one_request(servable):
    assert servable.warm_up() == 1


def test_losing_the_base_path_keeps_serving_from_memory(exported, tmp_path, caplog):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    store = ModelStore(base, MODEL_NAME, poll_interval=60).start()
    try:
        shutil.rmtree(base / "1")
        with caplog.at_level(logging.WARNING, logger="kmlc.serving.server.model_store"):
            assert store.poll() is False
        assert "still serving it from memory" in caplog.text
        shutil.rmtree(base)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kmlc.serving.server.model_store"):
            assert store.poll() is False
        assert "Cannot list" in caplog.text
        assert store.servable().version == 1
    finally:
        store.stop()
