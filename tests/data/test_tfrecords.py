"""Tests for kmlc/data/tfrecords.py: pack, then read back."""

import json
import os

import numpy as np
import pytest

from kmlc.data.manifest_reader import read_manifest
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords


@pytest.fixture(scope="module")
def packed(written, tmp_path_factory):
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    out_dir = tmp_path_factory.mktemp("packed")
    return pack(image_set, out_dir, shard_size=5)


def test_pack_writes_shards_vocabulary_and_sidecar(packed, written):
    names = sorted(os.listdir(packed.out_dir))
    assert names == [
        "images-00000-of-00003.tfrecord",
        "images-00001-of-00003.tfrecord",
        "images-00002-of-00003.tfrecord",
        "labels.npz",
        "vocabulary.txt",
    ]
    assert packed.num_images == 12 and packed.skipped == {}
    assert (written.vocabulary.read_text()) == (
        open(os.path.join(packed.out_dir, "vocabulary.txt")).read()
    )
    # The sidecar is plain NumPy: keys and CSR labels, no TensorFlow needed.
    with np.load(os.path.join(packed.out_dir, "labels.npz")) as stored:
        blob = stored["keys_blob"].tobytes()
        offsets = stored["keys_offsets"]
        keys = [
            blob[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:], strict=True)
        ]
        splits, columns = stored["row_splits"], stored["columns"]
        rows = [
            sorted(columns[a:b]) for a, b in zip(splits[:-1], splits[1:], strict=True)
        ]
    assert keys == written.keys
    assert rows == [list(np.flatnonzero(written.multi_hot[key])) for key in keys]


def test_read_back_gives_the_original_bytes_and_labels(packed, written):
    image_set = read_tfrecords(packed.out_dir)
    assert list(image_set.keys) == written.keys
    np.testing.assert_array_equal(
        image_set.labels, np.stack([written.multi_hot[key] for key in written.keys])
    )
    assert not image_set.image_is_path
    seen = {}
    for data, multi_hot, key in image_set.dataset().as_numpy_iterator():
        key = key.decode()
        seen[key] = True
        assert data == (written.images / key).read_bytes()
        np.testing.assert_array_equal(multi_hot, written.multi_hot[key])
    assert sorted(seen) == sorted(written.keys)


def test_subset_of_a_stream_reads_only_its_keys(packed):
    image_set = read_tfrecords(packed.out_dir)
    subset = image_set.subset(np.arange(12) % 3 == 0)
    keys = sorted(key.decode() for _, _, key in subset.dataset().as_numpy_iterator())
    assert keys == sorted(image_set.keys[::3])
    assert list(image_set.subset([]).dataset()) == []


def test_missing_files_are_skipped_and_reported(tmp_path, written):
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {
                "samples": [
                    {"image_name": "img00.jpg", "image_labels": ["sky"]},
                    {"image_name": "gone.jpg", "image_labels": ["sun"]},
                ]
            }
        )
    )
    image_set = read_manifest(manifest, written.images, written.vocabulary)
    result = pack(image_set, tmp_path / "out", num_shards=2)
    assert result.num_images == 1
    assert list(result.skipped) == [str(written.images / "gone.jpg")]
    assert list(read_tfrecords(tmp_path / "out").keys) == ["img00.jpg"]


def test_refuses_to_overwrite_unless_asked(packed, written, tmp_path):
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    out = tmp_path / "again"
    pack(image_set, out, num_shards=3)
    with pytest.raises(ValueError, match="already holds a packed data set.*overwrite"):
        pack(image_set, out, num_shards=2)
    pack(image_set, out, num_shards=2, overwrite=True)
    assert sorted(p for p in os.listdir(out) if p.endswith(".tfrecord")) == [
        "images-00000-of-00002.tfrecord",
        "images-00001-of-00002.tfrecord",
    ]
    assert len(read_tfrecords(out)) == 12


def test_read_errors_name_the_directory(tmp_path, packed):
    with pytest.raises(FileNotFoundError, match="TFRecords directory does not exist"):
        read_tfrecords(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"No images-NNNNN-of-NNNNN.tfrecord .*empty"
    ):
        read_tfrecords(empty)
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("images-00000-of-00003.tfrecord", "images-00002-of-00003.tfrecord"):
        (partial / name).write_bytes(b"")
    with pytest.raises(ValueError, match="do not form one complete set"):
        read_tfrecords(partial)
    no_labels = tmp_path / "no-labels"
    no_labels.mkdir()
    (no_labels / "images-00000-of-00001.tfrecord").write_bytes(b"")
    (no_labels / "vocabulary.txt").write_text("sky\n")
    with pytest.raises(FileNotFoundError, match=r"labels.npz .* is missing"):
        read_tfrecords(no_labels)


def test_bad_shard_counts(written, tmp_path):
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    with pytest.raises(ValueError, match="num_shards must be at least 1"):
        pack(image_set, tmp_path / "a", num_shards=0)
    with pytest.raises(ValueError, match="shard_size must be at least 1"):
        pack(image_set, tmp_path / "b", shard_size=0)


def _record_data_offsets(shard_bytes):
    """Where each record's payload starts in a TFRecord file (its framing:
    uint64 length, uint32 length CRC, payload, uint32 payload CRC)."""
    offsets, at = [], 0
    while at < len(shard_bytes):
        length = int.from_bytes(shard_bytes[at : at + 8], "little")
        offsets.append(at + 12)
        at += 12 + length + 4
    return offsets


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_corrupt_shard_is_skipped_from_the_bad_record_and_named(
    packed, tmp_path, damage
):
    import shutil

    import tensorflow as tf

    from kmlc.data import check

    out = tmp_path / "packed"
    shutil.copytree(packed.out_dir, out)
    shard = out / "images-00001-of-00003.tfrecord"
    keys_in_shard = [
        tf.train.Example.FromString(record.numpy())
        .features.feature["image/key"]
        .bytes_list.value[0]
        .decode()
        for record in tf.data.TFRecordDataset(str(shard))
    ]
    assert len(keys_in_shard) == 4
    data = bytearray(shard.read_bytes())
    third = _record_data_offsets(data)[2]
    if damage == "flipped byte":
        data[third + 10] ^= 0xFF
    else:
        data = data[: third + 10]
    shard.write_bytes(bytes(data))
    lost = set(keys_in_shard[2:])

    image_set = read_tfrecords(out)
    read = {key.decode() for _, _, key in image_set.dataset().as_numpy_iterator()}
    assert read == set(image_set.keys) - lost

    problems = check(image_set)
    (corrupt,) = [p for p in problems if p.kind == "corrupt-shard"]
    assert corrupt.name == str(shard)
    assert corrupt.detail.startswith("unreadable after record 2 (")
    assert {p.key for p in problems if p.kind == "missing"} == lost
    # Nothing else changed: the intact copy's problems (no-labels) remain.
    intact = check(read_tfrecords(packed.out_dir))
    new = [p for p in problems if p not in intact]
    assert len(new) == 1 + len(lost)
