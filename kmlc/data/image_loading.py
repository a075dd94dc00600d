"""Reading and decoding images in `tf.data` so that a bad one cannot stop it.

TensorFlow's decode errors carry no file name, and an error inside a
`map` ends the whole dataset. `load_images` therefore decodes each image
inside its own one-element dataset with `ignore_errors()`, followed by a
stand-in element marked `ok=False`: `take(1)` yields the decoded image when
decoding worked and the stand-in, which still carries the image's name,
when it did not. Every failure is thus caught and named, whatever its
cause (missing file, truncated or corrupt data, unknown format). The price,
measured on 2 busy cores: about 0.25 ms of CPU per image, next to about
0.7 ms (Corel-5k's 192x128 JPEGs) or 1.5 ms (500x375 JPEGs) to read,
decode, crop and resize to 224 px. `skip_unusable` then filters the bad
elements out and, on that bad path only, calls Python to find the reason
and log the name.
"""

import tensorflow as tf

from kmlc.data.image_decoding import declared_pixels
from kmlc.data.image_decoding import decode_image
from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS

AUTOTUNE = tf.data.AUTOTUNE


def load_images(
    dataset,
    image_is_path,
    min_side=8,
    deterministic=True,
    hashes=False,
    max_pixels=DEFAULT_MAX_IMAGE_PIXELS,
):
    """Reads (if paths) and decodes the `"image"` of each element.

    Args:
        dataset: `tf.data.Dataset` of dicts with at least `"image"` (a path
            or encoded bytes) and `"key"`.
        image_is_path: bool. Whether `"image"` is a file path.
        min_side: int. Images with a shorter side are marked not ok.
            Defaults to `8`.
        deterministic: bool. Keep the input order. Defaults to `True`.
        hashes: bool. Add `"hash"`, an int64 fingerprint of the encoded
            bytes (0 when unreadable). Defaults to `False`.
        max_pixels: int or None. Images whose header declares more pixels
            (width x height) are marked not ok without being decoded.
            Defaults to 40 million.

    Returns:
        A dataset of the same dicts plus `"pixels"` (uint8 `[H, W, 3]`,
        empty when unusable), `"ok"` (bool), `"name"` (the path, or the key
        for bytes) and `"hash"` when asked; `"image"` is kept.
    """

    def attempt(element):
        image = element["image"]
        data = tf.io.read_file(image) if image_is_path else image
        if max_pixels is not None:
            small_enough = tf.debugging.assert_less_equal(
                declared_pixels(data),
                tf.constant(int(max_pixels), tf.int64),
                message="image over the pixel limit",
            )
            with tf.control_dependencies([small_enough]):
                data = tf.identity(data)
        pixels = decode_image(data)
        shape = tf.shape(pixels)
        result = dict(
            element, pixels=pixels, ok=tf.minimum(shape[0], shape[1]) >= min_side
        )
        if hashes:
            result["hash"] = tf.strings.to_hash_bucket_fast(data, 2**63 - 1)
        return result

    def guarded(element):
        failed = dict(element, pixels=tf.zeros([0, 0, 3], tf.uint8), ok=False)
        if hashes:
            failed["hash"] = tf.constant(0, tf.int64)
        tried = tf.data.Dataset.from_tensors(element).map(attempt).ignore_errors()
        return tried.concatenate(tf.data.Dataset.from_tensors(failed)).take(1)

    def named(element):
        name = element["image"] if image_is_path else element["key"]
        return dict(element, name=name)

    return dataset.map(named).interleave(
        guarded,
        cycle_length=AUTOTUNE,
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )


def skip_unusable(dataset, skipped, image_is_path):
    """Drops the elements `load_images` marked not ok, recording each.

    Args:
        dataset: the output of `load_images`.
        skipped: `SkippedImages`. Counts and logs, with the reason.
        image_is_path: bool.
    """

    def keep(element):
        def report():
            kept = tf.py_function(
                lambda name, image: skipped.record_element(name, image, image_is_path),
                [element["name"], element["image"]],
                Tout=tf.bool,
            )
            return tf.reshape(kept, [])

        return tf.cond(element["ok"], lambda: tf.constant(True), report)

    return dataset.filter(keep)
