"""Tests for kmlc/data/augmentation.py."""

import numpy as np
import tensorflow as tf

from kmlc.data.augmentation import augment
from kmlc.data.augmentation import random_resized_crop
from kmlc.data.augmentation import resize
from tests.data.data_fixtures import smooth_image


def _image():
    return tf.constant(np.array(smooth_image(0, 30, 40)))


def test_full_area_crop_is_a_plain_resize():
    image = _image()
    crop = random_resized_crop(
        image, (15, 20), seed=[1, 2], area=(1.0, 1.0), aspect_ratio=(4 / 3, 4 / 3)
    )
    np.testing.assert_array_equal(crop.numpy(), resize(image, (15, 20)).numpy())
    expected = tf.image.resize(tf.cast(image, tf.float32), (15, 20)).numpy()
    np.testing.assert_array_equal(crop.numpy(), expected)


def _coordinates(height=60, width=80):
    """An image whose channels are each pixel's row, column and 0."""
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return tf.constant(np.stack([rows, columns, 0 * rows], -1), tf.float32)


def test_crops_cover_the_asked_area_and_aspect_ratio():
    image = _coordinates()
    for seed in range(20):
        crop = random_resized_crop(
            image, (32, 32), [seed, 7], area=(0.2, 0.5), aspect_ratio=(0.75, 1.33)
        ).numpy()
        # Bilinear sampling stays within the window, half a pixel from its edges.
        height = crop[..., 0].max() - crop[..., 0].min() + 1
        width = crop[..., 1].max() - crop[..., 1].min() + 1
        assert 0.2 * 0.9 <= height * width / (60 * 80) <= 0.5 * 1.1
        assert 0.75 * 0.9 <= width / height <= 1.33 * 1.1


def test_augment_is_a_function_of_its_seed():
    image = _image()
    first = augment(image, (16, 16), tf.constant([3, 4], tf.int64)).numpy()
    again = augment(image, (16, 16), tf.constant([3, 4], tf.int64)).numpy()
    other = augment(image, (16, 16), tf.constant([5, 6], tf.int64)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.shape == (16, 16, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 255.0


def test_augment_flips_about_half_the_images():
    image = _coordinates()
    flipped = 0
    for seed in range(60):
        out = augment(image, (16, 16), tf.constant([seed, 3], tf.int64)).numpy()
        flipped += out[0, 0, 1] > out[0, -1, 1]  # columns run right to left
    assert 15 <= flipped <= 45
