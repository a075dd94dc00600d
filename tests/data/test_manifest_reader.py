"""Tests for kmlc/data/manifest_reader.py."""

import json

import numpy as np
import pytest

from kmlc.data.label_vocabulary import UnknownLabelError
from kmlc.data.manifest_reader import read_manifest
from tests.data.data_fixtures import VOCABULARY


def _write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_reads_keys_labels_and_paths(written):
    image_set = read_manifest(written.manifest, written.images, written.vocabulary)
    assert list(image_set.keys) == written.keys
    assert image_set.vocabulary.names == VOCABULARY
    expected = np.stack([written.multi_hot[key] for key in written.keys])
    np.testing.assert_array_equal(image_set.labels, expected)
    assert image_set.labels.dtype == np.uint8
    assert image_set.image_is_path
    records = list(image_set.dataset().as_numpy_iterator())
    assert [path.decode() for path, _, _ in records] == [
        str(written.images / key) for key in written.keys
    ]
    np.testing.assert_array_equal(np.stack([row for _, row, _ in records]), expected)
    assert [key.decode() for _, _, key in records] == written.keys
    assert image_set.problems == ()


def test_vocabulary_defaults_to_the_manifests_label_list(tmp_path, written):
    manifest = _write(
        tmp_path / "m.json",
        {
            "labels": ["sun", "sky"],
            "samples": [{"image_name": "a.jpg", "image_labels": ["sky"]}],
        },
    )
    image_set = read_manifest(manifest, written.images)
    assert image_set.vocabulary.names == ("sun", "sky")
    assert image_set.labels.tolist() == [[0, 1]]
    manifest = _write(
        tmp_path / "m2.json",
        {"samples": [{"image_name": "a.jpg", "image_labels": ["sky", "city"]}]},
    )
    assert read_manifest(manifest, written.images).vocabulary.names == ("city", "sky")


def test_missing_images_directory_is_named(written, tmp_path):
    missing = tmp_path / "no-such-images"
    with pytest.raises(
        FileNotFoundError, match="images directory does not exist"
    ) as raised:
        read_manifest(written.manifest, missing, written.vocabulary)
    assert str(missing) in str(raised.value)


def test_missing_manifest_is_named(written, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Manifest file not found.*nope\.json"):
        read_manifest(tmp_path / "nope.json", written.images, written.vocabulary)


def test_unknown_label_names_label_manifest_and_sample(tmp_path, written):
    manifest = _write(
        tmp_path / "m.json",
        {
            "samples": [
                {"image_name": "a.jpg", "image_labels": ["sky"]},
                {"image_name": "b.jpg", "image_labels": ["sun", "unicorn"]},
            ]
        },
    )
    with pytest.raises(UnknownLabelError) as raised:
        read_manifest(manifest, written.images, written.vocabulary)
    message = str(raised.value)
    assert "'unicorn'" in message
    assert f"{manifest}, sample 1, image_name 'b.jpg'" in message
    assert str(written.vocabulary) in message


def test_unknown_labels_can_be_reported_instead(tmp_path, written):
    manifest = _write(
        tmp_path / "m.json",
        {"samples": [{"image_name": "b.jpg", "image_labels": ["sun", "unicorn"]}]},
    )
    image_set = read_manifest(
        manifest, written.images, written.vocabulary, unknown_labels="report"
    )
    np.testing.assert_array_equal(image_set.labels[0], [0, 1, 0, 0, 0, 0])
    [problem] = image_set.problems
    assert problem.kind == "unknown-label"
    assert problem.name == str(written.images / "b.jpg")
    assert "'unicorn'" in problem.detail and "sample 0" in problem.detail
    with pytest.raises(ValueError, match="unknown_labels must be one of"):
        read_manifest(manifest, written.images, written.vocabulary, unknown_labels="x")


@pytest.mark.parametrize(
    "content, message",
    [
        ({"images": []}, r'has no "samples" list.*Received: \[\'images\'\]'),
        ([1, 2], r'has no "samples" list.*Received: list'),
        ("{not json", r"is not valid JSON: .* line 1, column 2"),
        (
            {"samples": [{"image_labels": ["sky"]}]},
            r'Sample 0 of .* has no "image_name"',
        ),
        ({"samples": ["a.jpg"]}, r"Sample 0 of .* is not an object"),
        (
            {"samples": [{"image_name": "a.jpg", "image_labels": "sky"}]},
            r"Sample 0 of .*\('a.jpg'\): \"image_labels\" must be a list",
        ),
        (
            {"samples": [{"image_name": "a.jpg"}]},
            r"Sample 0 of .*\('a.jpg'\): \"image_labels\" must be a list",
        ),
    ],
)
def test_bad_manifests_are_named(tmp_path, written, content, message):
    manifest = _write(tmp_path / "bad.json", content)
    with pytest.raises(ValueError, match=message) as raised:
        read_manifest(manifest, written.images, written.vocabulary)
    assert str(manifest) in str(raised.value)
