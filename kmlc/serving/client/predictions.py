"""What both clients share: reading images for a request, ranking scores."""

import os

import numpy as np


def read_images(images):
    """Encoded image bytes from bytes and file paths.

    Args:
        images: a list of `bytes` (encoded JPEG/PNG) or file paths (`str` or
            `os.PathLike`); a single one is taken as a list of one.

    Returns:
        A list of `bytes`, one per image.
    """
    if isinstance(images, (bytes, bytearray, memoryview, str, os.PathLike)):
        images = [images]
    if isinstance(images, np.ndarray):
        raise TypeError(
            "read_images takes encoded images or paths; pass a float array "
            f"[B, H, W, 3] as the array itself. Received: array of shape "
            f"{images.shape}"
        )
    encoded = []
    for index, image in enumerate(images):
        if isinstance(image, (bytes, bytearray, memoryview)):
            encoded.append(bytes(image))
        elif isinstance(image, (str, os.PathLike)):
            if not os.path.isfile(image):
                raise FileNotFoundError(f"Image {index}: no such file: {image}")
            with open(image, "rb") as file:
                encoded.append(file.read())
        else:
            raise TypeError(
                f"Image {index} must be encoded bytes or a file path. "
                f"Received: {type(image).__name__}"
            )
    if not encoded:
        raise ValueError("No images to send. Received: an empty list")
    return encoded


def float_batch(images):
    """Checks a float image batch `[B, H, W, 3]` and returns it as float32."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise ValueError(
            "An image array must be a non-empty batch [B, H, W, 3] (RGB, "
            f"0-255). Received: shape={array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"An image array must be numeric. Received: {array.dtype}")
    return array.astype(np.float32, copy=False)


def check_ranking(top_k, threshold):
    """Validates `top_k` and `threshold` before a request is sent."""
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k):
        raise TypeError(f"top_k must be an int or None. Received: top_k={top_k!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1. Received: top_k={top_k}")
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(
            f"threshold must be a score in [0, 1]. Received: threshold={threshold}"
        )


def rank_labels(scores, label_names, top_k=None, threshold=None):
    """One image's `(label, score)` pairs, highest score first.

    Args:
        scores: array `[D]`. Per-label scores (sigmoid outputs).
        label_names: sequence of `D` str.
        top_k: int or None. Keep at most this many. Defaults to all.
        threshold: float or None. Keep scores `>= threshold`. Defaults to
            keeping all.

    Returns:
        A list of `(str, float)`, sorted by score, descending; ties keep the
        label order.
    """
    check_ranking(top_k, threshold)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(label_names) != scores.shape[0]:
        raise ValueError(
            f"Got {scores.shape[0]} scores but {len(label_names)} label names."
        )
    order = np.argsort(-scores, kind="stable")
    ranked = [(str(label_names[i]), float(scores[i])) for i in order]
    if threshold is not None:
        ranked = [pair for pair in ranked if pair[1] >= threshold]
    if top_k is not None:
        ranked = ranked[: int(top_k)]
    return ranked


def decode_strings(array):
    """A bytes array (TF strings) as an array of `str` (object dtype)."""
    array = np.asarray(array, dtype=object)
    flat = [
        value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
        for value in array.reshape(-1)
    ]
    return np.array(flat, dtype=object).reshape(array.shape)
