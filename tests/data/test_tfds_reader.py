"""Tests for kmlc/data/tfds_reader.py on a TFDS data set built locally.

`voc/2007` and `coco/2014` need a download; the `kmlc_tiny_voc` builder of
tfds_fixtures.py has voc/2007's features and is prepared into a temporary
folder from the written test images.
"""

import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets")

from kmlc.data.tfds_reader import read_tfds  # noqa: E402
from tests.data.data_fixtures import VOCABULARY  # noqa: E402


def test_reads_keys_labels_and_original_bytes(tfds_dir, written):
    image_set = read_tfds("kmlc_tiny_voc", "train", data_dir=tfds_dir)
    assert image_set.vocabulary.names == VOCABULARY
    assert sorted(image_set.keys) == sorted(written.keys)
    for key, row in zip(image_set.keys, image_set.labels, strict=True):
        np.testing.assert_array_equal(row, written.multi_hot[key])
    records = list(image_set.dataset().as_numpy_iterator())
    assert len(records) == len(written.keys)
    for data, multi_hot, key in records:
        key = key.decode()
        # TFDS keeps an image file's own encoding: the bytes are the file's.
        assert data == (written.images / key).read_bytes()
        np.testing.assert_array_equal(multi_hot, written.multi_hot[key])


def test_image_level_labels_feature(tfds_dir, written):
    image_set = read_tfds(
        "kmlc_tiny_voc", "train", data_dir=tfds_dir, label_feature="labels"
    )
    for key, row in zip(image_set.keys, image_set.labels, strict=True):
        np.testing.assert_array_equal(row, written.multi_hot[key])


def test_missing_label_feature_is_named(tfds_dir):
    with pytest.raises(ValueError, match=r"has no 'objects/kind' feature"):
        read_tfds(
            "kmlc_tiny_voc", "train", data_dir=tfds_dir, label_feature="objects/kind"
        )
    with pytest.raises(
        ValueError, match=r"'objects/bbox' feature .* is not a ClassLabel"
    ):
        read_tfds(
            "kmlc_tiny_voc", "train", data_dir=tfds_dir, label_feature="objects/bbox"
        )


def test_without_tensorflow_datasets_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match=r'pip install "kmlc\[datasets\]"'):
        read_tfds("voc/2007", "train")
