"""Tests for kmlc.synthetic: the scene rules, image sizes, the manifest and
reproducibility."""

import json

import numpy as np
import pytest
from PIL import Image

from kmlc import data as data_lib
from kmlc import synthetic

GROUNDS = {"sea", "grass", "road"}


def scenes(count=300, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return [synthetic.render_scene(rng, size) for _ in range(count)]


def test_labels_follow_the_scene_rules():
    seen = set()
    for _image, labels in scenes():
        present = set(labels)
        seen |= present
        assert labels == sorted(labels)
        assert present <= set(synthetic.LABELS)
        # Exactly one ground: the scene type.
        assert len(present & GROUNDS) == 1, labels
        if "boat" in present or "fish" in present:
            assert "sea" in present, labels
        if "car" in present:
            assert "road" in present, labels
        # Objects of another scene never appear.
        if "sea" in present:
            assert not present & {"car", "tree", "flower", "house", "grass", "road"}
        if "grass" in present:
            assert not present & {"boat", "fish", "car"}
        # Only city scenes (a street canyon) may lack the sky.
        if "sky" not in present:
            assert "road" in present, labels
    # 300 scenes show every label.
    assert seen == set(synthetic.LABELS)


def test_the_sky_label_matches_the_top_row_colour():
    # The sky is drawn blue above the horizon; without it the top row shows
    # the ground (or a roof): check the label against the pixels.
    for image, labels in scenes(200):
        row = np.asarray(image, np.int32)[0]
        blueness = np.median(row[:, 2] - row[:, 0])
        if "sky" in labels:
            assert blueness > 60, (labels, blueness)
        else:
            assert blueness < 60, (labels, blueness)


def test_label_frequencies_follow_the_scene_probabilities():
    labels = [set(found) for _, found in scenes(1500, size=32)]
    sea = [found for found in labels if "sea" in found]
    city = [found for found in labels if "road" in found]
    # Three scene types, drawn uniformly.
    assert abs(len(sea) / len(labels) - 1 / 3) < 0.05
    # P(boat | sea) = 0.6, P(car | city) = 0.7, P(sky | city) = 0.67.
    assert abs(np.mean(["boat" in found for found in sea]) - 0.6) < 0.07
    assert abs(np.mean(["car" in found for found in city]) - 0.7) < 0.07
    assert abs(np.mean(["sky" in found for found in city]) - 0.67) < 0.07


@pytest.mark.parametrize("size", [32, 48, 64])
def test_images_have_the_requested_size(size):
    for image, _ in scenes(10, size=size):
        assert image.mode == "RGB"
        assert image.size == (size, size)


def test_write_dataset_reads_back_with_read_manifest(tmp_path):
    manifest, images_dir, vocabulary = synthetic.write_dataset(
        tmp_path, 25, size=40, seed=3
    )
    image_set = data_lib.read_manifest(manifest, images_dir, vocabulary)
    assert list(image_set.vocabulary) == list(synthetic.LABELS)
    assert list(image_set.keys) == [f"{i:05d}.png" for i in range(25)]
    # The labels are those that render_scene draws with the same seed.
    expected = scenes(25, size=40, seed=3)
    for row, (_, labels) in enumerate(expected):
        found = [synthetic.LABELS[i] for i in np.flatnonzero(image_set.labels[row])]
        assert sorted(found) == labels
    # And the files are those images.
    for name, (image, _) in zip(image_set.keys[:5], expected[:5], strict=True):
        with Image.open(tmp_path / "images" / name) as stored:
            assert stored.size == (40, 40)
            np.testing.assert_array_equal(np.asarray(stored), np.asarray(image))


def test_the_same_seed_writes_identical_files(tmp_path):
    synthetic.write_dataset(tmp_path / "a", 12, size=32, seed=7)
    synthetic.write_dataset(tmp_path / "b", 12, size=32, seed=7)
    synthetic.write_dataset(tmp_path / "c", 12, size=32, seed=8)
    files = sorted(
        path.relative_to(tmp_path / "a")
        for path in (tmp_path / "a").rglob("*")
        if path.is_file()
    )
    assert len(files) == 12 + 2
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "b" / name
        ).read_bytes()
    other = json.loads((tmp_path / "c" / "manifest.json").read_text())
    same = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert other != same
