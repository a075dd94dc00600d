"""`make_dataset`: one `tf.data` pipeline for every `ImageSet`."""

import os

import keras
import tensorflow as tf

from kmlc.data.augmentation import augment as augment_image
from kmlc.data.augmentation import resize
from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
from kmlc.data.image_loading import AUTOTUNE
from kmlc.data.image_loading import load_images
from kmlc.data.image_loading import skip_unusable
from kmlc.data.skipped_images import SkippedImages

# Shuffle buffer for decoded images or encoded bytes (paths: the whole set).
DEFAULT_SHUFFLE_BUFFER = 1024


def make_dataset(
    image_set,
    image_size,
    batch_size,
    training=False,
    augment=True,
    randaugment=False,
    shuffle_buffer=None,
    cache=False,
    deterministic=False,
    seed=None,
    drop_remainder=False,
    repeat=False,
    min_side=8,
    with_keys=False,
    max_pixels=DEFAULT_MAX_IMAGE_PIXELS,
):
    """Batches of images and labels from an `ImageSet`, for training or not.

    Reads and decodes JPEG, PNG, BMP and GIF (grayscale and RGBA become RGB,
    a GIF gives its first frame), skips the images it cannot use (missing,
    unreadable, smaller than `min_side`, over `max_pixels`), logging each
    by name on the `"kmlc.data"` logger and counting them in
    `dataset.skipped`, resizes
    (or, when training, augments) to `image_size`, batches and prefetches.
    Images stay in 0..255: the model does its backbone's preprocessing.

    Args:
        image_set: `ImageSet`. From any reader, or a split of one.
        image_size: int or (height, width). The output size.
        batch_size: int.
        training: bool. Shuffle, and augment when `augment`. Defaults to
            `False`.
        augment: bool. With `training`: a random resized crop (8-100% of
            the area, aspect ratio 3/4-4/3) and a horizontal flip; without
            it, a plain resize. Defaults to `True`.
        randaugment: bool. With `training`, add `keras.layers.RandAugment`
            (2 ops, factor 0.5) after the crop. Defaults to `False`.
        shuffle_buffer: int, optional. `None`: the whole set when shuffling
            file paths, 1,024 when shuffling decoded images (`cache`) or
            encoded bytes (TFRecords, TFDS). Defaults to `None`.
        cache: bool or str. Cache the decoded images (before augmentation)
            in memory (`True`) or in files with this prefix, after the first
            epoch; bad images are then met and logged once. Holds about
            `N * H * W * 3` bytes. Defaults to `False`.
        deterministic: bool. With `training`: the same order and the same
            augmentations for the same `seed` (needs one); slower with
            `randaugment`, which then runs on one thread. Without
            `training` the set's order is always kept (less the skipped
            images). Defaults to `False`.
        seed: int, optional. Seeds shuffling and augmentation. `None`: a
            fresh random seed. Defaults to `None`.
        drop_remainder: bool. Drop a last, smaller batch. Defaults to
            `False`.
        repeat: bool. Repeat forever (reshuffled each epoch). Defaults to
            `False`.
        min_side: int. Images with a shorter side are skipped. Defaults to
            `8`.
        max_pixels: int or None. Images whose header declares more pixels
            (width x height) are skipped before they are decoded. `None`:
            no limit. Defaults to 40 million.
        with_keys: bool. Also yield each image's key (`[B]` strings), to
            match results to images whatever the source's order. Defaults
            to `False`.

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 `[B, H, W, 3]`
        RGB in 0..255 and float32 `[B, D]` (and string keys `[B]` with
        `with_keys`). Its attribute `skipped` is the
        `SkippedImages` record of what it skipped so far.
    """
    image_size = _image_size(image_size)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
    if deterministic and training and seed is None:
        raise ValueError(
            "deterministic=True needs a seed, to give the same batches each "
            "time. Received: seed=None"
        )
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    # Evaluation keeps the set's order: it costs little there.
    deterministic = bool(deterministic or not training)
    skipped = SkippedImages(min_side=min_side, max_pixels=max_pixels)
    image_is_path = image_set.image_is_path
    dataset = image_set.dataset(shuffle_files=training, seed=seed).map(
        lambda image, labels, key: {"image": image, "labels": labels, "key": key}
    )

    def load(dataset):
        dataset = load_images(
            dataset, image_is_path, min_side, deterministic, max_pixels=max_pixels
        )
        dataset = skip_unusable(dataset, skipped, image_is_path)
        return dataset.map(
            lambda x: {"pixels": x["pixels"], "labels": x["labels"], "key": x["key"]}
        )

    def shuffle_and_repeat(dataset, buffer):
        if training:
            buffer = max(1, buffer if shuffle_buffer is None else int(shuffle_buffer))
            dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        return dataset.repeat() if repeat else dataset

    if cache:
        dataset = load(dataset).cache("" if cache is True else os.fspath(cache))
        dataset = shuffle_and_repeat(dataset, DEFAULT_SHUFFLE_BUFFER)
    else:
        lightweight = image_is_path
        buffer = len(image_set) if lightweight else DEFAULT_SHUFFLE_BUFFER
        dataset = load(shuffle_and_repeat(dataset, buffer))

    if training and augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip(dataset, seeds.batch(2)).map(
            lambda x, element_seed: (
                augment_image(x["pixels"], image_size, element_seed),
                x["labels"],
                x["key"],
            ),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        dataset = dataset.map(
            lambda x: (resize(x["pixels"], image_size), x["labels"], x["key"]),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    if training and randaugment:
        layer = keras.layers.RandAugment(value_range=(0, 255), seed=seed)
        # Its random state is shared: calls in parallel would draw in any
        # order, so deterministic mode runs it on one thread.
        dataset = dataset.map(
            lambda image, labels, key: (layer(image, training=True), labels, key),
            num_parallel_calls=None if deterministic else AUTOTUNE,
        )
    dataset = dataset.batch(
        int(batch_size),
        drop_remainder=drop_remainder,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )

    def finish(images, labels, keys):
        images = tf.ensure_shape(images, [None, *image_size, 3])
        labels = tf.cast(labels, tf.float32)
        return (images, labels, keys) if with_keys else (images, labels)

    dataset = dataset.map(finish).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    dataset = dataset.with_options(options)
    dataset.skipped = skipped
    return dataset


def _image_size(image_size):
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    image_size = tuple(int(side) for side in image_size)
    if len(image_size) != 2 or min(image_size) < 1:
        raise ValueError(
            f"image_size must be an int or (height, width) of positive ints. "
            f"Received: image_size={image_size}"
        )
    return image_size
