"""Tests for kmlc/data/pipeline.py: decoding, skipping, determinism."""

import logging

import numpy as np
import pytest

from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from kmlc.data.tfrecords import pack
from kmlc.data.tfrecords import read_tfrecords
from tests.data.data_fixtures import HEIGHT
from tests.data.data_fixtures import WIDTH
from tests.data.data_fixtures import match_batches


@pytest.fixture(scope="module")
def image_set(written):
    return read_manifest(written.manifest, written.images, written.vocabulary)


@pytest.fixture(scope="module")
def bad_set(bad_data):
    return read_manifest(bad_data.manifest, bad_data.images, bad_data.vocabulary)


def _arrays(dataset):
    batches = list(dataset.as_numpy_iterator())
    return [images for images, _ in batches], [labels for _, labels in batches]


def test_evaluation_batches_are_the_decoded_images_and_labels(image_set, written):
    dataset = make_dataset(image_set, (HEIGHT, WIDTH), batch_size=5)
    shapes = [(images.shape, labels.shape) for images, labels in dataset]
    assert shapes == [((5, HEIGHT, WIDTH, 3), (5, 6))] * 2 + [
        ((2, HEIGHT, WIDTH, 3), (2, 6))
    ]
    assert dataset.element_spec[0].dtype.name == "float32"
    assert dataset.element_spec[1].dtype.name == "float32"
    found = match_batches(dataset, written)
    assert sorted(found) == sorted(written.keys)
    for key, labels in found.items():
        np.testing.assert_array_equal(labels, written.multi_hot[key])
    assert dataset.skipped.count == 0


def test_evaluation_resizes_and_keeps_the_order(image_set, written):
    images, labels = _arrays(make_dataset(image_set, 16, batch_size=12))
    assert images[0].shape == (12, 16, 16, 3)
    assert 0.0 <= images[0].min() and images[0].max() <= 255.0
    np.testing.assert_array_equal(
        labels[0], np.stack([written.multi_hot[key] for key in written.keys])
    )


def test_training_batches_are_augmented_in_range(image_set):
    dataset = make_dataset(
        image_set, 20, batch_size=4, training=True, seed=1, drop_remainder=True
    )
    images, labels = _arrays(dataset)
    assert [batch.shape for batch in images] == [(4, 20, 20, 3)] * 3
    assert all(0.0 <= batch.min() and batch.max() <= 255.0 for batch in images)
    # Every image once, shuffled: the label rows are a permutation.
    rows = sorted(map(tuple, np.concatenate(labels).astype(int)))
    assert rows == sorted(map(tuple, image_set.labels.astype(int)))
    plain = _arrays(make_dataset(image_set, 20, batch_size=4))[0]
    assert not all(np.array_equal(a, b) for a, b in zip(images, plain, strict=True))


@pytest.mark.parametrize("randaugment", [False, True])
def test_deterministic_mode_repeats_batches_for_a_seed(image_set, randaugment):
    def run(seed):
        dataset = make_dataset(
            image_set,
            16,
            batch_size=6,
            training=True,
            randaugment=randaugment,
            deterministic=True,
            seed=seed,
            repeat=True,
        )
        return _arrays(dataset.take(4))  # two epochs

    first, second = run(3), run(3)
    for a, b in zip(first[0] + first[1], second[0] + second[1], strict=True):
        np.testing.assert_array_equal(a, b)
    # The second epoch is reshuffled and augmented anew.
    epoch1, epoch2 = np.concatenate(first[0][:2]), np.concatenate(first[0][2:])
    assert not np.array_equal(
        np.concatenate(first[1][:2]), np.concatenate(first[1][2:])
    )
    assert not np.array_equal(np.sort(epoch1, axis=0), np.sort(epoch2, axis=0))
    if not randaugment:
        other = run(4)
        assert not np.array_equal(first[0][0], other[0][0])


def test_bad_images_are_skipped_named_and_counted(bad_set, bad_data, caplog):
    caplog.set_level(logging.WARNING, logger="kmlc.data")
    dataset = make_dataset(bad_set, 16, batch_size=2, training=True, seed=0)
    _, labels = _arrays(dataset)
    rows = sorted(map(tuple, np.concatenate(labels).astype(int)))
    assert rows == sorted(tuple(bad_data.multi_hot[name]) for name in bad_data.good)
    skipped = dataset.skipped
    expected = {str(bad_data.images / name) for name in bad_data.bad}
    assert set(skipped.names) == expected and skipped.count == len(expected)
    messages = [r.getMessage() for r in caplog.records if r.name == "kmlc.data"]
    for name in expected:
        [line] = [m for m in messages if name in m]
        assert line.startswith(f"skipped unreadable image {name}: ")
    assert skipped.reasons[str(bad_data.images / "missing.jpg")] == "no such file"
    assert skipped.reasons[str(bad_data.images / "empty.jpg")] == "empty file (0 bytes)"
    assert "truncated JPEG" in skipped.reasons[str(bad_data.images / "truncated.jpg")]
    assert "1x1 px" in skipped.reasons[str(bad_data.images / "tiny.png")]
    assert "not a JPEG" in skipped.reasons[str(bad_data.images / "text.jpg")]


def test_good_images_come_through_unchanged(bad_set, bad_data):
    dataset = make_dataset(bad_set, (HEIGHT, WIDTH), batch_size=8)
    images, _ = _arrays(dataset)
    assert len(images) == 1 and len(images[0]) == len(bad_data.good)
    for image, name in zip(images[0], bad_data.good, strict=True):
        np.testing.assert_array_equal(image, bad_data.pixels[name])


def test_bad_images_in_records_are_named_by_key(bad_set, bad_data, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="kmlc.data")
    pack(bad_set, tmp_path)
    dataset = make_dataset(read_tfrecords(tmp_path), 16, batch_size=4)
    assert sum(len(labels) for _, labels in dataset) == len(bad_data.good)
    # missing.jpg was not packed; the others are stored and skipped.
    present = {name for name in bad_data.bad if name != "missing.jpg"}
    assert set(dataset.skipped.names) == present


def test_repeated_epochs_log_once_and_count_each(bad_set, caplog):
    caplog.set_level(logging.WARNING, logger="kmlc.data")
    dataset = make_dataset(bad_set, 8, batch_size=8, repeat=True)
    list(dataset.take(3))
    assert dataset.skipped.count >= 2 * len(dataset.skipped)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(dataset.skipped) == 5


@pytest.mark.parametrize("cache", [True, "file"])
def test_cache_gives_the_same_batches_and_meets_bad_images_once(
    bad_set, tmp_path, cache
):
    cache = True if cache is True else str(tmp_path / "cache")
    dataset = make_dataset(bad_set, 12, batch_size=8, cache=cache)
    first, second = _arrays(dataset)[0], _arrays(dataset)[0]
    np.testing.assert_array_equal(first[0], second[0])
    assert dataset.skipped.count == 5


def test_drop_remainder_and_repeat(image_set):
    dropped = make_dataset(image_set, 8, batch_size=5, drop_remainder=True)
    assert [len(images) for images, _ in dropped] == [5, 5]
    repeated = make_dataset(image_set, 8, batch_size=5, repeat=True, training=True)
    assert sum(len(images) for images, _ in repeated.take(6)) == 30


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"deterministic": True, "training": True},
            r"deterministic=True needs a seed.*Received: seed=None",
        ),
        ({"image_size": (8, 0)}, r"image_size must be .*Received: image_size=\(8, 0\)"),
        ({"image_size": (8, 8, 3)}, r"image_size must be"),
        ({"batch_size": 0}, r"batch_size must be at least 1. Received: 0"),
    ],
)
def test_bad_arguments(image_set, kwargs, message):
    arguments = {"image_size": 8, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_dataset(image_set, **arguments)
