"""Cluster analysis: scenes come back as clusters; outputs match the model."""

import csv
import json

import keras
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import kmlc
from kmlc import data
from kmlc import synthetic
from kmlc.cli import main
from kmlc.clustering import cluster_images
from kmlc.clustering import cluster_vectors


@pytest.fixture(scope="module")
def scenes_and_model(tmp_path_factory):
    """300 synthetic scenes and a SmallCNN trained on them for a few epochs."""
    folder = tmp_path_factory.mktemp("scenes")
    manifest, images, vocabulary = synthetic.write_dataset(folder, 300, size=32, seed=3)
    image_set = data.read_manifest(manifest, images, vocabulary)
    keras.utils.set_random_seed(0)
    graph = kmlc.LabelGraph.from_labels(image_set.labels)
    model = kmlc.build_model(
        graph.num_labels,
        graph,
        backbone="smallcnn",
        image_size=32,
        heads="gcn",
        node_dim=16,
        label_names=list(image_set.vocabulary),
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(
        data.make_dataset(image_set, 32, 32, training=True, seed=0), epochs=6, verbose=0
    )
    path = folder / "model.keras"
    model.save(path)
    return image_set, model, path, (manifest, images, vocabulary)


def scene_of(labels):
    """The scene type, read off the ground label each scene always has."""
    names = ("sea", "grass", "road")
    return [next(n for n in names if n in row) for row in labels]


def test_clusters_recover_the_scene_types(scenes_and_model):
    image_set, model, _, _ = scenes_and_model
    clusters = cluster_images(model, image_set, num_clusters=3)
    index = {key: i for i, key in enumerate(image_set.keys)}
    rows = [index[key] for key in clusters.keys]
    names = list(image_set.vocabulary)
    truth = scene_of(
        [[names[j] for j in np.flatnonzero(image_set.multi_hot()[i])] for i in rows]
    )
    assert adjusted_rand_score(truth, clusters.assignments) > 0.6
    # Each cluster is described by its own ground label first or second.
    grounds = {"sea", "grass", "road"}
    tops = [
        {item["label"] for item in entry["top_labels"][:3]} & grounds
        for entry in clusters.describe()
    ]
    assert sorted(len(top) for top in tops) == [1, 1, 1]


def test_keys_follow_the_images_through_the_pipeline(scenes_and_model):
    image_set, model, _, _ = scenes_and_model
    subset = image_set.subset([5, 1, 7])
    dataset = data.make_dataset(subset, 32, 2, with_keys=True)
    keys = [k.decode() for _, _, batch in dataset for k in batch.numpy()]
    assert keys == list(subset.keys)
    labels = np.concatenate([y for _, y, _ in dataset])
    np.testing.assert_array_equal(labels, subset.multi_hot())


def test_embed_names_a_bad_embedding_and_an_empty_dataset(scenes_and_model):
    from kmlc.clustering import embed

    image_set, model, _, _ = scenes_and_model
    with pytest.raises(ValueError, match="Received: embedding='pixels'"):
        embed(model, [], embedding="pixels")
    empty = data.make_dataset(image_set, 32, 8, with_keys=True).take(0)
    with pytest.raises(ValueError, match="no images to cluster"):
        embed(model, empty)


def test_cluster_vectors_checks_the_count():
    with pytest.raises(ValueError, match="between 2 and the number of images"):
        cluster_vectors(np.zeros((3, 2)), 5)
    assignments, distances, centres = cluster_vectors(
        np.array([[0, 0], [0, 0.1], [5, 5], [5, 5.1]], "float32"), 2
    )
    assert assignments[0] == assignments[1] != assignments[2] == assignments[3]
    np.testing.assert_allclose(distances, 0.05, atol=1e-6)


def test_cli_writes_assignments_summary_and_plot(scenes_and_model, tmp_path, capsys):
    image_set, model, path, (manifest, images, vocabulary) = scenes_and_model
    out = tmp_path / "clusters"
    code = main(
        [
            "cluster",
            "--model",
            str(path),
            "--manifest",
            str(manifest),
            "--images",
            str(images),
            "--vocabulary",
            str(vocabulary),
            "--clusters",
            "3",
            "--embedding",
            "features",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with open(out / "clusters.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["image"] for r in rows) == sorted(image_set.keys)
    summary = json.loads((out / "clusters.json").read_text())
    assert summary["embedding"] == "features"
    sizes = [entry["size"] for entry in summary["clusters"]]
    assert sum(sizes) == len(image_set)
    counts = np.bincount([int(r["cluster"]) for r in rows], minlength=3)
    assert list(counts) == sizes
    assert (out / "cluster_profiles.png").stat().st_size > 1000
    assert "cluster   0" in capsys.readouterr().out
