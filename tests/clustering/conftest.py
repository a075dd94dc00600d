"""Synthetic scenes and small models for the cluster-analysis tests."""

import json

import keras
import pytest

import kmlc
from kmlc import data
from kmlc import synthetic
from tests.once_per_run import build_once


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """`(manifest, images, vocabulary, image_set)`: 180 synthetic scenes, 32
    px, and one more manifest entry whose file is not an image."""
    folder = tmp_path_factory.mktemp("scenes")
    manifest, images, vocabulary = synthetic.write_dataset(folder, 180, size=32, seed=3)
    (folder / "images" / "broken.png").write_bytes(b"not an image at all")
    with open(manifest) as f:
        content = json.load(f)
    content["samples"].append({"image_name": "broken.png", "image_labels": ["sky"]})
    with open(manifest, "w") as f:
        json.dump(content, f)
    image_set = data.read_manifest(manifest, images, vocabulary)
    return manifest, images, vocabulary, image_set


def build_scenes_model(image_set, heads):
    graph = kmlc.LabelGraph.from_labels(
        image_set.multi_hot(), label_names=list(image_set.vocabulary)
    )
    return kmlc.build_model(
        graph.num_labels,
        graph,
        backbone="smallcnn",
        image_size=32,
        heads=heads,
        node_dim=16,
        top_k=3,
    )


@pytest.fixture(scope="session")
def scenes_model(scenes, tmp_path_factory):
    """A SmallCNN with every head, trained a little on the scenes (once for
    all workers: `build_once`); `(model, path)`."""
    _, _, _, image_set = scenes

    def train(folder):
        keras.utils.set_random_seed(0)
        model = build_scenes_model(image_set, "full")
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        model.fit(
            data.make_dataset(image_set, 32, 32, training=True, seed=0),
            epochs=6,
            verbose=0,
        )
        model.save(folder / "scenes.keras")

    path = build_once(tmp_path_factory, "scenes_model", train) / "scenes.keras"
    return keras.saving.load_model(path), path


@pytest.fixture(scope="session")
def baseline_model_path(scenes, tmp_path_factory):
    """An untrained model with the plain classifier head only."""
    _, _, _, image_set = scenes
    path = tmp_path_factory.mktemp("baseline") / "baseline.keras"
    build_scenes_model(image_set, "baseline").save(path)
    return path
