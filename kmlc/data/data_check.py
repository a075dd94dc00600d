"""`check`: every problem in a data set, one `Problem` per image and kind."""

import collections
import os

import numpy as np
import tensorflow as tf
import tqdm

from kmlc.data.image_decoding import diagnose_image
from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
from kmlc.data.image_loading import load_images
from kmlc.data.problem import Problem

# The problems that do not stop an image from training: an image without
# labels is a legitimate negative, a second copy of an image costs little.
# `kmlc data check` exits 0 when it finds only these (1 with --strict).
WARNING_KINDS = ("no-labels", "duplicate-content")


def check(image_set, min_side=8, progress=False, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """Scans a data set for what would hurt training, without stopping.

    Decodes every image with the same code as `make_dataset` (so what
    `check` reports is what training would skip), and reports:

    - `"missing"`, `"unreadable"`, `"too-small"`, `"too-large"` images
      (files that do not exist are found before anything is read; an
      image over `max_pixels` is never decoded);
    - `"unknown-label"`: labels outside the vocabulary, recorded by a
      reader called with `unknown_labels="report"`;
    - `"no-labels"`: images without any label;
    - `"duplicate-key"`: a key listed more than once (one problem per key);
    - `"duplicate-content"`: an image whose bytes equal an earlier
      image's (by 64-bit fingerprint; one problem per extra copy);
    - `"corrupt-shard"`: a TFRecord shard that cannot be read to its end,
      and a `"missing"` problem for each image listed in the data set's
      labels that no shard delivered.

    Args:
        image_set: `ImageSet`.
        min_side: int. Images with a shorter side are too small. Defaults
            to `8`.
        progress: bool. Show a tqdm progress bar on stderr while scanning.
            Defaults to `False`.
        max_pixels: int or None. Images whose header declares more pixels
            are too large. Defaults to 40 million.

    Returns:
        A list of `Problem`, sorted by file name then kind; empty when the
        data is clean.
    """
    problems = list(image_set.problems)
    image_is_path = image_set.image_is_path
    key_counts = collections.Counter(image_set.keys)
    for key, count in key_counts.items():
        if count > 1:
            problems.append(
                Problem(
                    "duplicate-key",
                    image_set.name(key),
                    f"key {key!r} is listed {count} times",
                    key=key,
                )
            )
    row_sums = np.asarray(image_set.labels.sum(axis=1)).ravel()
    for key in image_set.keys[row_sums == 0]:
        problems.append(Problem("no-labels", image_set.name(key), "no labels", key=key))

    scanned_set = image_set
    if image_is_path and not image_set.source.streams:
        # Missing files are named here, not by a TensorFlow read error each.
        exists = np.array(
            [os.path.isfile(image_set.name(key)) for key in image_set.keys], bool
        )
        for key in image_set.keys[~exists]:
            problems.append(
                Problem("missing", image_set.name(key), "no such file", key=key)
            )
        scanned_set = image_set.subset(exists)
    dataset = scanned_set.dataset().map(
        lambda image, labels, key: {"image": image, "labels": labels, "key": key}
    )
    scanned = load_images(
        dataset, image_is_path, min_side, hashes=True, max_pixels=max_pixels
    ).map(
        lambda x: (
            x["name"],
            x["key"],
            x["ok"],
            x["hash"],
            tf.cond(x["ok"], lambda: tf.constant(b""), lambda: x["image"]),
        )
    )
    if hasattr(image_set.source, "verify"):
        problems.extend(image_set.source.verify())
    first_with_hash = {}
    seen = set()
    records = tqdm.tqdm(
        scanned.as_numpy_iterator(),
        total=len(scanned_set),
        desc="check",
        unit="img",
        disable=not progress,
    )
    for name, key, ok, fingerprint, image in records:
        name = name.decode("utf-8", "replace")
        key = key.decode("utf-8", "replace")
        seen.add(key)
        if not ok:
            found = diagnose_image(image, image_is_path, min_side, max_pixels)
            kind, reason = found or ("unreadable", "could not be read (transient?)")
            problems.append(Problem(kind, name, reason, key=key))
            continue
        original = first_with_hash.setdefault(int(fingerprint), name)
        if original != name:
            problems.append(
                Problem("duplicate-content", name, f"same bytes as {original}", key=key)
            )
    if image_set.source.streams:
        for key in image_set.keys:
            if key not in seen:
                problems.append(
                    Problem(
                        "missing",
                        image_set.name(key),
                        "listed in the labels but not found in any shard",
                        key=key,
                    )
                )
    return sorted(problems, key=lambda problem: (problem.name, problem.kind))
