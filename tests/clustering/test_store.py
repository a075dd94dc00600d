"""Row files: written in chunks, read back exactly, shrunk to the rows written."""

import numpy as np
import pytest

from kmlc.clustering import store


def test_rows_written_in_chunks_read_back_as_one_npy(tmp_path):
    path = tmp_path / "vectors.npy"
    rows = np.arange(70, dtype=np.float32).reshape(35, 2)
    with store.RowWriter(path, 40, 2) as writer:  # room for 40, 35 written
        for start in range(0, 35, 8):
            writer.write(rows[start : start + 8])
    np.testing.assert_array_equal(np.load(path), rows)
    np.testing.assert_array_equal(np.load(path, mmap_mode="r")[30:], rows[30:])
    assert store.num_rows(str(path)) == 35
    chunks = list(store.iter_chunks(str(path), chunk_rows=10))
    assert [start for start, _ in chunks] == [0, 10, 20, 30]
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), rows)
    picked = store.take_rows(str(path), [7, 2, 7, 0])
    np.testing.assert_array_equal(picked, rows[[7, 2, 7, 0]])
    np.testing.assert_array_equal(store.take_rows(rows, [3, 1]), rows[[3, 1]])


def test_a_writer_refuses_rows_of_the_wrong_shape_or_too_many(tmp_path):
    path = tmp_path / "vectors.npy"
    with store.RowWriter(path, 2, 3) as writer:
        with pytest.raises(ValueError, match=r"rows must be \[n, 3\].*shape=\(2, 4\)"):
            writer.write(np.zeros((2, 4)))
        writer.write(np.ones((2, 3)))
        with pytest.raises(ValueError, match="room for 2 rows. Received: 3 rows"):
            writer.write(np.ones((1, 3)))
    np.testing.assert_array_equal(np.load(path), np.ones((2, 3), np.float32))


def test_rows_past_the_end_are_named(tmp_path):
    path = tmp_path / "vectors.npy"
    np.save(path, np.zeros((4, 2), np.float32))
    with pytest.raises(IndexError, match=r"has 4 rows\. Received: rows 1 to 4"):
        store.take_rows(str(path), [1, 4])
