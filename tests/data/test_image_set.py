"""Tests for kmlc/data/image_set.py: labels, subsets, sparse labels."""

import numpy as np
import pytest
import scipy.sparse

from kmlc.data import image_set as image_set_module
from kmlc.data.image_set import FileSource
from kmlc.data.image_set import ImageSet
from kmlc.data.image_set import multi_hot_matrix
from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from kmlc.data.split import split
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords
from tests.data.data_fixtures import match_batches


def test_multi_hot_matrix():
    matrix = multi_hot_matrix([[2, 0], [], [1, 1]], 3)
    assert matrix.dtype == np.uint8
    np.testing.assert_array_equal(matrix, [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert multi_hot_matrix([], 3).shape == (0, 3)


def test_huge_label_matrices_are_sparse_and_work_everywhere(
    written, tmp_path, monkeypatch
):
    monkeypatch.setattr(image_set_module, "DENSE_LABELS_LIMIT", 10)
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    assert scipy.sparse.issparse(image_set.labels)
    expected = np.stack([written.multi_hot[key] for key in written.keys])
    np.testing.assert_array_equal(image_set.multi_hot(), expected)
    train, validation = split(image_set, 0.5, seed=0)
    assert scipy.sparse.issparse(train.labels)
    found = match_batches(make_dataset(image_set, (24, 32), batch_size=5), written)
    for key, labels in found.items():
        np.testing.assert_array_equal(labels, written.multi_hot[key])
    pack(image_set, tmp_path)
    packed = read_tfrecords(tmp_path)
    assert scipy.sparse.issparse(packed.labels)
    np.testing.assert_array_equal(packed.multi_hot(), expected)


def test_shape_and_selection_errors():
    vocabulary = LabelVocabulary(["a", "b"])
    with pytest.raises(ValueError, match=r"labels must have shape \[N, D\] = \[3, 2\]"):
        ImageSet(vocabulary, ["x", "y", "z"], np.zeros((3, 3), np.uint8), FileSource())
    image_set = ImageSet(
        vocabulary, ["x", "y"], np.eye(2, dtype=np.uint8), FileSource()
    )
    with pytest.raises(ValueError, match=r"boolean selection needs shape \[2\]"):
        image_set.subset(np.array([True]))
    assert list(image_set.subset([1]).keys) == ["y"]
    assert list(image_set.subset(np.array([False, True])).keys) == ["y"]
    assert image_set.name("x") == "x" and FileSource("/r").name("x") == "/r/x"
