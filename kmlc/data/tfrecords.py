"""Sharded TFRecords: `pack` an `ImageSet`, `read_tfrecords` it back.

The path for millions of images. A packed directory holds:

- `images-00000-of-0000N.tfrecord`...: one `tf.train.Example` per image
  with `image/encoded` (the original file's bytes, not re-encoded),
  `image/labels` (int64 label indices) and `image/key` (bytes);
- `vocabulary.txt`: one label a line;
- `labels.npz`: every image's key and labels (CSR), in the shards' order,
  so that the label graph can be counted and the set split without
  reading a single image.
"""

import dataclasses
import glob
import logging
import math
import os
import re

import numpy as np
import tensorflow as tf
import tqdm

from kmlc import io as kmlc_io
from kmlc.data.image_set import ImageSet
from kmlc.data.image_set import matrix_from_indices
from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.problem import Problem

SHARD_NAME = "images-{index:05d}-of-{count:05d}.tfrecord"
SHARD_PATTERN = re.compile(r"images-(\d{5})-of-(\d{5})\.tfrecord")
VOCABULARY_FILE = "vocabulary.txt"
LABELS_FILE = "labels.npz"
DEFAULT_SHARD_SIZE = 1024

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/labels": tf.io.VarLenFeature(tf.int64),
    "image/key": tf.io.FixedLenFeature([], tf.string),
}


@dataclasses.dataclass(frozen=True)
class PackResult:
    """What `pack` wrote.

    Args:
        out_dir: str. The directory.
        shards: tuple of str. The shard files.
        num_images: int. Images written.
        skipped: dict. Name -> reason for each image that could not be read
            (missing files); these are not in the shards.
    """

    out_dir: str
    shards: tuple
    num_images: int
    skipped: dict


def pack(
    image_set,
    out_dir,
    num_shards=None,
    shard_size=DEFAULT_SHARD_SIZE,
    overwrite=False,
    progress=False,
):
    """Writes an `ImageSet` as sharded TFRecords plus its label sidecar.

    Images are stored as their files' bytes (bad images too: training skips
    them, `check` reports them); files that cannot be read (missing) are
    skipped and logged. The order is the set's order, in contiguous shards.

    Args:
        image_set: `ImageSet`. From any reader.
        out_dir: str. Created if needed.
        num_shards: int, optional. `None`: `ceil(N / shard_size)`.
        shard_size: int. Images per shard when `num_shards` is `None`.
            Defaults to `1024` (about 100 MB of 100 kB JPEGs).
        overwrite: bool. Replace a packed set already in `out_dir`;
            otherwise that is an error. Defaults to `False`.
        progress: bool. Show a tqdm progress bar on stderr. Defaults to
            `False`.

    Returns:
        A `PackResult`.
    """
    out_dir = os.fspath(out_dir)
    total = len(image_set)
    if num_shards is None:
        if int(shard_size) < 1:
            raise ValueError(
                f"shard_size must be at least 1. Received: shard_size={shard_size}"
            )
        num_shards = max(1, math.ceil(total / int(shard_size)))
    num_shards = int(num_shards)
    if num_shards < 1:
        raise ValueError(
            f"num_shards must be at least 1. Received: num_shards={num_shards}"
        )
    _prepare_out_dir(out_dir, overwrite)
    logger = logging.getLogger("kmlc.data")
    shards = [
        os.path.join(out_dir, SHARD_NAME.format(index=index, count=num_shards))
        for index in range(num_shards)
    ]
    keys, row_lengths, columns, skipped = [], [], [], {}
    writers = [tf.io.TFRecordWriter(path) for path in shards]
    try:
        records = image_set.dataset().as_numpy_iterator()
        records = tqdm.tqdm(
            records, total=total, desc="pack", unit="img", disable=not progress
        )
        for position, (image, multi_hot, key) in enumerate(records):
            key = key.decode("utf-8")
            data = image
            if image_set.image_is_path:
                try:
                    with open(image, "rb") as file:
                        data = file.read()
                except OSError as error:
                    name = os.fsdecode(image)
                    skipped[name] = error.strerror or str(error)
                    logger.warning("skipped unreadable image %s: %s", name, error)
                    continue
            indices = np.flatnonzero(multi_hot)
            shard = min(position * num_shards // max(total, 1), num_shards - 1)
            writers[shard].write(_example(data, indices, key).SerializeToString())
            keys.append(key)
            row_lengths.append(len(indices))
            columns.append(indices)
    finally:
        for writer in writers:
            writer.close()
    image_set.vocabulary.save(os.path.join(out_dir, VOCABULARY_FILE))
    _save_labels(
        os.path.join(out_dir, LABELS_FILE),
        keys,
        row_lengths,
        columns,
        len(image_set.vocabulary),
    )
    logger.info("packed %d images into %d shards in %s", len(keys), num_shards, out_dir)
    return PackResult(out_dir, tuple(shards), len(keys), skipped)


def read_tfrecords(directory):
    """Reads a directory written by `pack`.

    Args:
        directory: str.

    Returns:
        An `ImageSet` whose keys and labels come from the sidecar and whose
        dataset reads the shards in parallel (interleaved, so not in the
        sidecar's order).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"The TFRecords directory does not exist. Received: directory={directory!r}"
        )
    shards = _find_shards(directory)
    vocabulary = LabelVocabulary.load(os.path.join(directory, VOCABULARY_FILE))
    labels_path = os.path.join(directory, LABELS_FILE)
    if not os.path.isfile(labels_path):
        raise FileNotFoundError(
            f"{LABELS_FILE} (the keys and labels written by pack) is missing "
            f"from {directory}. Received: directory={directory!r}"
        )
    with np.load(labels_path, allow_pickle=False) as stored:
        num_labels = int(stored["num_labels"])
        if num_labels != len(vocabulary):
            raise ValueError(
                f"{labels_path} has {num_labels} labels but {VOCABULARY_FILE} "
                f"has {len(vocabulary)}. Received: directory={directory!r}"
            )
        blob = stored["keys_blob"].tobytes()
        offsets = stored["keys_offsets"]
        keys = [
            blob[start:end].decode("utf-8")
            for start, end in zip(offsets[:-1], offsets[1:], strict=True)
        ]
        labels = matrix_from_indices(
            stored["row_splits"], stored["columns"], num_labels
        )
    return ImageSet(
        vocabulary=vocabulary,
        keys=keys,
        labels=labels,
        source=TFRecordSource(shards, num_records=len(keys)),
    )


class TFRecordSource:
    """Images in TFRecord shards written by `pack`.

    Args:
        files: sequence of str. The shards.
        num_records: int. Records in all shards.
    """

    image_is_path = False
    streams = True

    def __init__(self, files, num_records):
        self.files = tuple(files)
        self.num_records = num_records

    def __repr__(self):
        return f"TFRecordSource({len(self.files)} shards)"

    def name(self, key):
        return key

    def records(self, image_set, shuffle_files=False, seed=None):
        files = tf.data.Dataset.from_tensor_slices(list(self.files))
        if shuffle_files:
            files = files.shuffle(len(self.files), seed=seed)
        num_labels = len(image_set.vocabulary)

        def parse(serialized):
            example = tf.io.parse_single_example(serialized, _FEATURES)
            indices = tf.sparse.to_dense(example["image/labels"])
            multi_hot = tf.reduce_max(
                tf.one_hot(tf.cast(indices, tf.int32), num_labels, dtype=tf.uint8),
                axis=0,
            )
            return example["image/encoded"], multi_hot, example["image/key"]

        return files.interleave(
            _shard_records,
            cycle_length=min(len(self.files), 16),
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
        ).map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    def verify(self):
        """Reads every shard to its end; a `"corrupt-shard"` problem for each
        shard that cannot be (a bad checksum or length, a truncated file).
        """
        problems = []
        for path in self.files:
            count = 0
            try:
                for _ in tf.data.TFRecordDataset(path):
                    count += 1
            except tf.errors.OpError as error:
                problems.append(
                    Problem(
                        "corrupt-shard",
                        path,
                        f"unreadable after record {count} ({error.message}); "
                        "training skips the rest of this shard",
                    )
                )
        return problems


def _shard_records(path):
    """The records of one shard, up to the first unreadable one.

    A corrupt or truncated shard ends early instead of failing the whole
    pipeline (TensorFlow logs a warning); `kmlc data check` names it.
    """
    return tf.data.TFRecordDataset(path).ignore_errors(log_warning=True)


def _example(data, indices, key):
    feature = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/encoded": feature(bytes_list=tf.train.BytesList(value=[data])),
                "image/labels": feature(
                    int64_list=tf.train.Int64List(value=[int(i) for i in indices])
                ),
                "image/key": feature(
                    bytes_list=tf.train.BytesList(value=[key.encode("utf-8")])
                ),
            }
        )
    )


def _prepare_out_dir(out_dir, overwrite):
    os.makedirs(out_dir, exist_ok=True)
    existing = [
        path
        for path in glob.glob(os.path.join(out_dir, "images-*-of-*.tfrecord"))
        + [os.path.join(out_dir, LABELS_FILE)]
        if os.path.exists(path)
    ]
    if existing and not overwrite:
        raise ValueError(
            f"{out_dir} already holds a packed data set; pass overwrite=True "
            f"(--overwrite) to replace it. Received: out_dir={out_dir!r}"
        )
    for path in existing:
        os.remove(path)


def _save_labels(path, keys, row_lengths, columns, num_labels):
    encoded = [key.encode("utf-8") for key in keys]
    offsets = np.concatenate([[0], np.cumsum([len(key) for key in encoded])])
    row_splits = np.concatenate([[0], np.cumsum(row_lengths, dtype=np.int64)])
    columns = np.concatenate(columns) if columns else np.zeros((0,), np.int64)
    with kmlc_io.atomic_path(path, suffix=".npz") as temporary:
        np.savez_compressed(
            temporary,
            keys_blob=np.frombuffer(b"".join(encoded), np.uint8),
            keys_offsets=offsets.astype(np.int64),
            row_splits=row_splits.astype(np.int64),
            columns=columns.astype(np.int32),
            num_labels=np.int64(num_labels),
        )


def _find_shards(directory):
    found = {}
    counts = set()
    for path in glob.glob(os.path.join(directory, "images-*-of-*.tfrecord")):
        match = SHARD_PATTERN.fullmatch(os.path.basename(path))
        if match:
            found[int(match.group(1))] = path
            counts.add(int(match.group(2)))
    if not found:
        raise FileNotFoundError(
            f"No images-NNNNN-of-NNNNN.tfrecord shards in {directory}. "
            f"Received: directory={directory!r}"
        )
    if len(counts) != 1 or sorted(found) != list(range(counts.pop())):
        raise ValueError(
            f"The shards in {directory} do not form one complete set "
            f"images-00000-of-N ... images-(N-1)-of-N. Received: "
            f"{sorted(os.path.basename(path) for path in found.values())}"
        )
    return [found[index] for index in sorted(found)]
