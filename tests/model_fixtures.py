"""Small models and label graphs shared by the tests (model, export, serving)."""

import keras
import numpy as np

import kmlc
from kmlc.config import DataConfig
from kmlc.config import ModelConfig
from kmlc.config import OptimizerConfig
from kmlc.config import TrainConfig

NUM_LABELS = 6
IMAGE_SIZE = 32
LABEL_NAMES = ["sky", "sea", "sun", "tree", "grass", "sand"]


def tiny_backbone(image_size=IMAGE_SIZE, channels=16):
    """A two-convolution feature extractor: `[B, S, S, 3]` -> `[B, S/8, S/8, C]`."""
    return keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Conv2D(
                channels, 3, strides=2, padding="same", activation="relu"
            ),
        ],
        name="tiny_backbone",
    )


def label_matrix(num_images=60, num_labels=NUM_LABELS, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((num_images, num_labels)) < 0.3).astype("float32")
    y[:, 1] = np.maximum(y[:, 1], y[:, 0])  # label 1 follows label 0
    return y


def tiny_graph(num_labels=NUM_LABELS):
    return kmlc.LabelGraph.from_labels(
        label_matrix(num_labels=num_labels), strategy="threshold", tau=0.3
    )


def tiny_model(heads="full", num_labels=NUM_LABELS, seed=None, **kwargs):
    """A `kmlc.MultiLabelClassifier` on `tiny_backbone`, 32x32 images.

    `seed` seeds Keras first, for the same weights on every call; other
    keyword arguments go to `kmlc.build_model` (e.g. `label_names`).
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    kwargs.setdefault("node_dim", 8)
    kwargs.setdefault("top_k", 3)
    return kmlc.build_model(
        num_labels,
        tiny_graph(num_labels),
        backbone=tiny_backbone(),
        image_size=IMAGE_SIZE,
        heads=heads,
        **kwargs,
    )


def images(batch=4, size=IMAGE_SIZE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")


def scenes_config(scenes_dir, output_dir, model=None, data=None, **kwargs):
    """A tiny, quick run on the synthetic scenes of `kmlc.synthetic`.

    `model` and `data` are fields that replace the defaults of those
    sections; other keyword arguments are `TrainConfig` fields.
    """
    return TrainConfig(
        data=DataConfig(
            format="manifest",
            manifest=str(scenes_dir / "manifest.json"),
            images=str(scenes_dir / "images"),
            vocabulary=str(scenes_dir / "vocabulary.txt"),
            **{"validation_fraction": 0.25, "augment": False, **(data or {})},
        ),
        model=ModelConfig(
            **{
                "preset": "baseline",
                "backbone": "smallcnn",
                "image_size": 32,
                **(model or {}),
            }
        ),
        optimizer=OptimizerConfig(name="adamw", learning_rate=3e-3, warmup_epochs=0),
        batch_size=16,
        tensorboard=False,
        output_dir=str(output_dir),
        **kwargs,
    )
