"""Issue 11, item 5: a version whose variables were still being copied is
served once the copy completes, without a restart."""

import os
import shutil
import time

from kmlc.serving import ModelStore
from kmlc.serving.server.model_store import MAX_SKIPPED_POLLS
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import copy_version

DATA_FILE = os.path.join("variables", "variables.data-00000-of-00001")


def half_copied(source, target):
    """`source` copied to `target` with its variables' data cut in half (as
    a copy in progress leaves it); returns the data file's full bytes."""
    shutil.copytree(source, target)
    data = (target / DATA_FILE).read_bytes()
    with open(target / DATA_FILE, "r+b") as file:
        file.truncate(len(data) // 2)
    return data


def test_a_version_copied_in_two_steps_is_served_once_complete(exported, tmp_path):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    store = ModelStore(base, MODEL_NAME, poll_interval=0.2).start()
    try:
        # saved_model.pb and variables.index are already whole: only the
        # data file changes when the copy completes.
        data = half_copied(exported[1], base / "2")
        deadline = time.monotonic() + 30
        while 2 not in {s.version for s in store.statuses()}:
            assert time.monotonic() < deadline, "version 2 was never tried"
            time.sleep(0.1)
        assert store.version == 1
        assert store.statuses(2)[0].error_code == "UNKNOWN"
        (base / "2" / DATA_FILE).write_bytes(data)  # the copy completes
        deadline = time.monotonic() + 30
        while store.version != 2:
            assert time.monotonic() < deadline, store.statuses(2)
            time.sleep(0.1)
        assert store.statuses(2)[0].state == "AVAILABLE"
    finally:
        store.stop()


def test_a_version_that_keeps_failing_is_retried_with_backoff(exported, tmp_path):
    base = tmp_path / MODEL_NAME
    copy_version(exported[0], base, 1)
    store = ModelStore(base, MODEL_NAME, poll_interval=60).start()  # by hand
    try:
        broken = base / "2"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a protobuf")
        attempts = []
        load = store._load
        store._load = lambda version, path: (
            attempts.append(version) or load(version, path)
        )
        for poll in range(40):
            # Something keeps writing into it: every scan sees new files.
            (broken / f"part-{poll}").write_bytes(b"x")
            assert store.poll() is False
        # Tried at scans 0, 1, 3, 7, 15, 31: after the n-th failure in a
        # row, 2**(n-1) - 1 scans are skipped.
        assert len(attempts) == 6 and store._failed[2].attempts == 6
        assert store._failed[2].skip_polls <= MAX_SKIPPED_POLLS
        assert store.version == 1
    finally:
        store.stop()
