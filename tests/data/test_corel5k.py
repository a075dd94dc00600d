"""A small real Corel-5k subset through `read_manifest` and `make_dataset`."""

import numpy as np
import tensorflow as tf

from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from tests.data.data_fixtures import pil_rgb

SUBSET = 64


def test_corel5k_subset(corel5k_dir, corel5k_labels):
    y, names = corel5k_labels
    image_set = read_manifest(
        corel5k_dir / "train.json",
        corel5k_dir / "images",
        corel5k_dir / "vocabulary.txt",
    )
    assert len(image_set) == len(y) and list(image_set.vocabulary) == names
    np.testing.assert_array_equal(image_set.labels, y)
    subset = image_set.subset(np.arange(SUBSET))

    training = make_dataset(subset, 64, batch_size=16, training=True, seed=0)
    batches = list(training.as_numpy_iterator())
    assert [images.shape for images, _ in batches] == [(16, 64, 64, 3)] * 4
    rows = np.concatenate([labels for _, labels in batches]).astype(np.uint8)
    assert sorted(map(tuple, rows)) == sorted(map(tuple, y[:SUBSET]))
    assert training.skipped.count == 0

    # Evaluation: PIL's decoding, resized the same way, in the manifest order.
    images, labels = next(iter(make_dataset(subset, (96, 64), batch_size=8)))
    np.testing.assert_array_equal(labels.numpy(), y[:8])
    for image, key in zip(images.numpy(), subset.keys[:8], strict=True):
        reference = pil_rgb(str(corel5k_dir / "images" / key)).astype(np.float32)
        expected = tf.image.resize(reference, (96, 64)).numpy()
        np.testing.assert_allclose(image, expected, atol=1e-3)
