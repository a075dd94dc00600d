"""Training augmentation with stateless random ops, one seed per image.

Each image gets its own seed (from `tf.data.Dataset.random`), so that the
augmentation of an image does not depend on which thread handled it: with
the same seed and `deterministic=True`, two pipelines give the same
batches.
"""

import tensorflow as tf

# Inception-style random resized crop, as in torchvision and keras-cv.
CROP_AREA = (0.08, 1.0)
CROP_ASPECT_RATIO = (3 / 4, 4 / 3)


def resize(image, image_size):
    """uint8 or float `[H, W, 3]` -> float32 `[h, w, 3]`, bilinear, 0..255."""
    image = tf.image.resize(tf.cast(image, tf.float32), image_size, method="bilinear")
    return tf.ensure_shape(image, [*image_size, 3])


def random_resized_crop(
    image, image_size, seed, area=CROP_AREA, aspect_ratio=CROP_ASPECT_RATIO
):
    """A random crop of `area` of the image, resized to `image_size`.

    Args:
        image: `[H, W, 3]`.
        image_size: (height, width).
        seed: int tensor `[2]`.
        area: (min, max) fraction of the image's area the crop covers.
        aspect_ratio: (min, max) width / height of the crop.

    Returns:
        float32 `[height, width, 3]` in the input's range.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4], tf.float32),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio,
        area_range=area,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return resize(tf.slice(image, begin, size), image_size)


def augment(image, image_size, seed):
    """Random resized crop and horizontal flip: `[H, W, 3]` -> float32."""
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    image = random_resized_crop(image, image_size, crop_seed)
    return tf.image.stateless_random_flip_left_right(image, flip_seed)
