"""Tests for kmlc/data/split.py."""

import numpy as np
import pytest

from kmlc.data.image_set import FileSource
from kmlc.data.image_set import ImageSet
from kmlc.data.label_vocabulary import LabelVocabulary
from kmlc.data.split import split
from kmlc.data.split import validation_mask


def _image_set(num_images):
    keys = [f"dir{i % 7}/image{i:05d}.jpg" for i in range(num_images)]
    labels = (np.arange(num_images)[:, None] % np.array([[2, 3, 5]]) == 0).astype(
        np.uint8
    )
    return ImageSet(
        vocabulary=LabelVocabulary(["a", "b", "c"]),
        keys=keys,
        labels=labels,
        source=FileSource("/data"),
    )


def test_disjoint_covering_and_deterministic():
    image_set = _image_set(5000)
    train, validation = split(image_set, 0.2, seed=1)
    assert not set(train.keys) & set(validation.keys)
    assert sorted(set(train.keys) | set(validation.keys)) == sorted(image_set.keys)
    assert len(train) + len(validation) == len(image_set)
    # About the asked fraction (binomial sd is 0.0057 here).
    assert abs(len(validation) / len(image_set) - 0.2) < 0.03
    again_train, again_validation = split(image_set, 0.2, seed=1)
    assert list(again_validation.keys) == list(validation.keys)
    assert list(again_train.keys) == list(train.keys)
    # Labels travel with their keys.
    row = {
        key: tuple(r) for key, r in zip(image_set.keys, image_set.labels, strict=True)
    }
    for part in (train, validation):
        assert all(
            row[k] == tuple(r) for k, r in zip(part.keys, part.labels, strict=True)
        )


def test_another_seed_gives_another_split():
    image_set = _image_set(500)
    _, first = split(image_set, 0.3, seed=1)
    _, second = split(image_set, 0.3, seed=2)
    assert set(first.keys) != set(second.keys)


def test_a_key_goes_the_same_way_whatever_else_is_in_the_set():
    keys = _image_set(2000).keys
    full = dict(zip(keys, validation_mask(keys, 0.25, seed=9), strict=True))
    some = keys[::3][::-1]
    partial = validation_mask(some, 0.25, seed=9)
    assert [full[key] for key in some] == list(partial)


def test_fraction_must_be_between_zero_and_one():
    for fraction in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(
            ValueError, match="between 0 and 1.*Received: validation_fraction"
        ):
            split(_image_set(10), fraction)
