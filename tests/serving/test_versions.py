"""New versions are picked up; broken ones are reported and not served."""

import logging
import os
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from kmlc.export import export_saved_model
from kmlc.serving import Client
from kmlc.serving import DevServer
from kmlc.serving import ModelStore
from kmlc.serving.server.model_store import list_versions
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version
from tests.serving.conftest import expected_scores


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_version_exported_while_serving_is_served(
    models, exported, pixels, png_images, tmp_path
):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    with DevServer(base, grpc_port=0, rest_port=None, poll_interval=0.2) as server:
        with Client(server.grpc_target, MODEL_NAME) as client:
            first = client.predict_raw(png_images)["scores"]
            np.testing.assert_allclose(
                first, expected_scores(models[0], pixels), atol=1e-5
            )
            written = export_saved_model(models[1], tmp_path, MODEL_NAME)
            assert written == str(base / "2")
            assert wait_for(lambda: client.status()[0]["version"] == 2)
            assert client.status() == [
                {"version": 2, "state": "AVAILABLE", "error_code": "OK",
                 "error_message": ""},
                {"version": 1, "state": "END", "error_code": "OK",
                 "error_message": ""},
            ]  # fmt: skip
            assert client.metadata()["version"] == 2
            second = client.predict_raw(png_images)["scores"]
    want = expected_scores(models[1], pixels)
    np.testing.assert_allclose(second, want, atol=1e-5)
    assert np.abs(second - first).max() > 1e-3  # really the other model


def test_a_broken_version_is_reported_and_the_old_one_kept(
    models, exported, pixels, png_images, tmp_path, caplog
):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    broken = base / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf")
    # A long poll interval: the test polls by hand.
    with DevServer(base, grpc_port=0, rest_port=None, poll_interval=60) as server:
        assert server.version == 1  # 3 failed at start, 1 loaded
        with Client(server.grpc_target, MODEL_NAME) as client:
            status = {entry["version"]: entry for entry in client.status()}
            assert status[1]["state"] == "AVAILABLE"
            assert status[3]["state"] == "END"
            assert status[3]["error_code"] == "UNKNOWN"
            assert "DecodeError" in status[3]["error_message"] or (
                "parse" in status[3]["error_message"].lower()
            )
            assert "Could not load model 'tiny' version 3" in caplog.text
            caplog.clear()
            with caplog.at_level(
                logging.ERROR, logger="kmlc.serving.server.model_store"
            ):
                assert server.store.poll() is False  # same files: not retried
            assert not caplog.records
            np.testing.assert_allclose(
                client.predict_raw(png_images)["scores"],
                expected_scores(models[0], pixels),
                atol=1e-5,
            )
            # Fixing the files makes the next scan retry and serve it.
            shutil.rmtree(broken)
            copy_version(exported[1], base, 3)
            assert server.store.poll() is True
            assert client.status()[0] == {
                "version": 3, "state": "AVAILABLE", "error_code": "OK",
                "error_message": "",
            }  # fmt: skip
            np.testing.assert_allclose(
                client.predict_raw(png_images)["scores"],
                expected_scores(models[1], pixels),
                atol=1e-5,
            )


def test_a_failing_warm_up_keeps_the_old_version(exported, tmp_path, caplog):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    store = ModelStore(base, MODEL_NAME, poll_interval=60).start()
    try:
        copy_version(exported[1], base, 2)
        warmup = base / "2" / "assets.extra" / "tf_serving_warmup_requests"
        log = prediction_log_pb2.PredictionLog()
        log.predict_log.request.model_spec.signature_name = "serving_images"
        log.predict_log.request.inputs["images"].CopyFrom(
            tf.make_tensor_proto(np.zeros((1, 8, 8, 3), np.float32))
        )
        with tf.io.TFRecordWriter(str(warmup)) as writer:
            writer.write(log.SerializeToString())
        with caplog.at_level(logging.ERROR, logger="kmlc.serving.server.model_store"):
            assert store.poll() is False
        assert store.version == 1
        assert "Could not load model 'tiny' version 2" in caplog.text
        message = store.statuses(2)[0].error_message
        assert "Warm-up request 0" in message and "[1, 8, 8, 3]" in message
    finally:
        store.stop()


def test_removing_the_served_version_falls_back_to_the_highest_left(exported, tmp_path):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    copy_version(exported[1], base, 2)
    store = ModelStore(base, MODEL_NAME, poll_interval=60).start()
    try:
        assert store.version == 2
        shutil.rmtree(base / "2")
        assert store.poll() is True
        assert store.version == 1
    finally:
        store.stop()


def test_in_progress_and_foreign_directories_are_skipped(exported, tmp_path):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    for name in (".tmp-9-abc", "tmp-8", "latest", "5"):
        (base / name).mkdir()
        if name != "5":  # "5" has no saved_model.pb yet: still being written
            shutil.copy(base / "1" / "saved_model.pb", base / name)
    (base / "7").write_text("a file, not a directory")
    assert list_versions(base) == {1: os.path.join(base, "1")}


def test_no_versions_or_no_directory_fail_at_start(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        DevServer(tmp_path / "missing", grpc_port=0).start()
    (tmp_path / "empty" / ".tmp-1-x").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"No versions of model 'empty'"):
        DevServer(tmp_path / "empty", grpc_port=0).start()


def test_no_loadable_version_fails_at_start_with_the_reasons(tmp_path):
    (tmp_path / "m" / "4").mkdir(parents=True)
    (tmp_path / "m" / "4" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"No version of model 'm' .* version 4: "):
        DevServer(tmp_path / "m", grpc_port=0).start()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"grpc_port": 70000}, r"grpc_port must be in \[0, 65535\]"),
        ({"max_request_bytes": 0}, "max_request_bytes must be positive"),
        ({"poll_interval": 0}, "poll_interval must be positive"),
    ],
)
def test_bad_server_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        DevServer(tmp_path, **kwargs)


def test_a_port_in_use_is_an_error(server, tmp_path, exported):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    with pytest.raises(OSError, match="Cannot bind the gRPC port"):
        DevServer(base, grpc_port=server.grpc_port, rest_port=None).start()
    with pytest.raises(OSError, match="Cannot bind the REST port"):
        DevServer(base, grpc_port=0, rest_port=server.rest_port).start()
