"""Training the heads on cached feature maps: the heads model, the cache and
a cached run (`model.cache_features`)."""

import csv
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kmlc
from kmlc import feature_cache
from kmlc import synthetic
from kmlc.config import load_config
from kmlc.data.sources import read_image_set
from tests import model_fixtures as fx


def _features(model, x):
    return np.asarray(model.backbone(model.preprocessing(x), training=False))


@pytest.mark.parametrize("heads", ["baseline", "gcn", "full"])
def test_heads_model_on_feature_maps_equals_the_model_on_images(heads):
    model = fx.tiny_model(heads)
    x = fx.images(4, seed=3)
    heads_model = model.heads_model()
    np.testing.assert_allclose(
        heads_model.predict(_features(model, x), verbose=0),
        model.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_training_the_heads_model_trains_the_model():
    keras.utils.set_random_seed(0)
    model = fx.tiny_model("full")
    model.backbone.trainable = False
    heads_model = model.heads_model()
    heads_model.compile(optimizer=keras.optimizers.Adam(1e-2), aux_loss_weight=0.5)
    x, y = fx.images(8, seed=1), fx.label_matrix(8)
    features = _features(model, x)
    before = model.predict(x, verbose=0)
    backbone_before = [np.array(w) for w in model.backbone.weights]
    for _ in range(3):
        heads_model.train_on_batch(features, y)
    after = model.predict(x, verbose=0)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(
        heads_model.predict(features, verbose=0), after, rtol=1e-5, atol=1e-5
    )
    for old, new in zip(backbone_before, model.backbone.weights, strict=True):
        np.testing.assert_array_equal(old, np.asarray(new))


def _image_batches(x, y, batch_size):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_cache_holds_each_view_in_order(tmp_path):
    model = fx.tiny_model("baseline")
    images = keras.Input((fx.IMAGE_SIZE, fx.IMAGE_SIZE, 3))
    extractor = keras.Model(images, model.backbone(model.preprocessing(images)))
    x, y = fx.images(5, seed=2), fx.label_matrix(5)
    meta = {"backbone": "tiny", "images": 5}
    cache = feature_cache.FeatureCache.build(
        tmp_path / "c", extractor, _image_batches(x, y, 2), 5, meta, views=2
    )
    assert len(cache) == 10 and cache.features.dtype == np.float16
    plain = np.asarray(extractor(x))
    mirrored = np.asarray(extractor(x[:, :, ::-1]))
    np.testing.assert_allclose(cache.features[0::2], plain, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(cache.features[1::2], mirrored, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(cache.labels, np.repeat(y, 2, axis=0))
    assert not (tmp_path / "c.tmp").exists()
    # Reopened only for the same inputs.
    assert feature_cache.FeatureCache.open(tmp_path / "c", meta) is not None
    assert (
        feature_cache.FeatureCache.open(tmp_path / "c", {**meta, "images": 6}) is None
    )
    # Batches: every row once, features with their labels.
    batches = list(cache.dataset(4, training=True, seed=0).as_numpy_iterator())
    features = np.concatenate([f for f, _ in batches])
    labels = np.concatenate([lab for _, lab in batches])
    order = [
        int(np.argmin(np.abs(cache.features - f).sum(axis=(1, 2, 3)))) for f in features
    ]
    assert sorted(order) == list(range(10))
    np.testing.assert_array_equal(labels, cache.labels[order])


def test_a_shorter_dataset_keeps_the_rows_written(tmp_path):
    """Skipped (unreadable) images leave fewer rows than images listed."""
    model = fx.tiny_model("baseline")
    images = keras.Input((fx.IMAGE_SIZE, fx.IMAGE_SIZE, 3))
    extractor = keras.Model(images, model.backbone(model.preprocessing(images)))
    x, y = fx.images(3), fx.label_matrix(3)
    cache = feature_cache.FeatureCache.build(
        tmp_path / "c", extractor, _image_batches(x, y, 2), 5, {}, views=1
    )
    assert cache.features.shape[0] == 3 and len(cache.labels) == 3


def test_a_cached_run_saves_the_whole_model_and_scores_it_on_images(tmp_path):
    scenes = tmp_path / "scenes"
    synthetic.write_dataset(scenes, 64, size=32, seed=0)
    config = fx.scenes_config(
        scenes,
        tmp_path / "run",
        data={"augment": True},
        model={
            "preset": "full",
            "top_k": 4,
            "freeze_backbone": True,
            "cache_features": True,
            "cache_views": 2,
        },
        epochs=3,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = kmlc.train(config)
        kmlc.load_model(tmp_path / "run" / "best.keras")
    # The whole model's optimizer never ran (the heads model trained): its
    # reloads have nothing to restore and say nothing about it.
    assert not [w for w in caught if "optimizer" in str(w.message)]
    train_set, validation_set = read_image_set(config.data)
    cache = tmp_path / "run" / "feature_cache"
    assert len(feature_cache.FeatureCache(cache / "train")) == 2 * len(train_set)
    assert len(feature_cache.FeatureCache(cache / "validation")) == len(validation_set)
    model = kmlc.load_model(result.model_path)
    assert model.input_shape == (None, 32, 32, 3)
    # The final report scores model.keras on the validation images; the
    # epochs scored the heads on cached feature maps: the best epoch's
    # val_mAP and the final mAP are the same model's, two ways.
    with open(tmp_path / "run" / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    best = max(float(row["val_mAP"]) for row in rows)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(best, abs=2e-3)


def test_cache_config_errors(tmp_path):
    data = [
        f"data.manifest={tmp_path}/m.json",
        f"data.images={tmp_path}",
        f"data.vocabulary={tmp_path}/v.txt",
    ]
    with pytest.raises(ValueError, match="model.freeze_backbone: true"):
        load_config(None, data + ["model.cache_features=true"])
    with pytest.raises(ValueError, match="multiworker"):
        load_config(
            None,
            data
            + [
                "model.cache_features=true",
                "model.freeze_backbone=true",
                "strategy=multiworker",
            ],
        )
    with pytest.raises(ValueError, match="model.cache_views"):
        load_config(None, data + ["model.cache_views=3"])
    with pytest.raises(ValueError, match="model.graph_control"):
        load_config(None, data + ["model.graph_control=random"])
