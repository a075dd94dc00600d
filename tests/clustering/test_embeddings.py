"""Embeddings: what the model's layers compute, streamed, with bad input."""

import keras
import numpy as np
import pytest

from kmlc.clustering import embeddings
from kmlc.metrics import sigmoid


def unit(rows):
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_embeddings_are_the_layers_outputs(scenes, scenes_model, tmp_path):
    _, _, _, image_set = scenes
    model, _ = scenes_model
    subset = image_set.subset(range(20))
    names = ["scores", "label-aware", "features", "gcn-nodes"]
    embedded = embeddings.embed_collection(model, subset, tmp_path, names, batch_size=8)
    assert list(embedded.keys) == list(subset.keys)
    vectors = {name: np.load(embedded.paths[name]) for name in names}

    from kmlc import data

    images = np.concatenate([x for x, _ in data.make_dataset(subset, 32, 20)])
    fusion = model.get_layer("knowledge_fusion")
    inputs = keras.Model(model.inputs, fusion.input)(images)  # A, P
    fused, _ = fusion(*inputs)
    pooled = keras.Model(model.inputs, model.get_layer("pooling").output)(images)
    scores = sigmoid(np.asarray(model(images)))
    nodes = np.asarray(inputs[1])
    np.testing.assert_allclose(vectors["scores"], scores, atol=1e-5)
    np.testing.assert_allclose(
        vectors["label-aware"], unit(np.asarray(fused).mean(axis=(1, 2))), atol=1e-4
    )
    np.testing.assert_allclose(vectors["features"], unit(np.asarray(pooled)), atol=1e-4)
    weighted = (scores[:, :, None] * nodes).sum(axis=1) / scores.sum(axis=1)[:, None]
    np.testing.assert_allclose(vectors["gcn-nodes"], unit(weighted), atol=1e-4)
    # Training moved the fused feature away from the plain one.
    assert np.abs(vectors["label-aware"] - vectors["features"]).max() > 1e-3
    np.testing.assert_array_equal(np.load(embedded.paths["labels"]), subset.multi_hot())
    assert embedded.node_features.shape == (len(model.label_names), 16)


def test_unreadable_images_are_skipped_and_named(scenes, scenes_model, tmp_path):
    _, _, _, image_set = scenes
    model, _ = scenes_model
    broken = list(image_set.keys).index("broken.png")
    subset = image_set.subset([0, broken, 1])
    embedded = embeddings.embed_collection(model, subset, tmp_path, ["features"])
    assert list(embedded.keys) == [image_set.keys[0], image_set.keys[1]]
    assert len(np.load(embedded.paths["features"])) == 2
    assert [name.endswith("broken.png") for name in embedded.skipped] == [True]
    with pytest.raises(ValueError, match=r"None of the 1 images could be read.*broken"):
        embeddings.embed_collection(model, image_set.subset([broken]), tmp_path)


def test_an_empty_collection_is_refused(scenes, scenes_model, tmp_path):
    _, _, _, image_set = scenes
    with pytest.raises(ValueError, match=r"collection is empty.*ImageSet\(0 images"):
        embeddings.embed_collection(scenes_model[0], image_set.subset([]), tmp_path)


def test_a_model_without_the_fusion_head_cannot_give_label_aware(baseline_model_path):
    from kmlc.saving import load_model

    model = load_model(baseline_model_path, compile=False)
    with pytest.raises(
        ValueError,
        match=r"needs a model with the 'fusion' head; this model has heads "
        r"\('cls',\).*Received: embedding='label-aware'",
    ):
        embeddings.check_embedding(model, "label-aware")
    assert embeddings.available_embeddings(model) == ["scores", "features"]
    with pytest.raises(ValueError, match="Received: embedding='pixels'"):
        embeddings.check_embedding(model, "pixels")
