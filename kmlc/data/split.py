"""`split`: a deterministic train/validation split by a hash of each key."""

import hashlib

import numpy as np


def validation_mask(keys, validation_fraction, seed=0):
    """Which keys go to validation: bool `[N]`.

    Key `k` goes to validation when the first 8 bytes of
    `blake2b(f"{seed}:{k}")`, read as a fraction of 2**64, fall below
    `validation_fraction`. The rule looks at one key at a time, so a stream
    (or any format holding the same keys) splits the same way, and adding
    images never moves the others.

    Args:
        keys: iterable of str.
        validation_fraction: float in (0, 1).
        seed: int or str. Defaults to `0`.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "validation_fraction must be between 0 and 1 (exclusive). "
            f"Received: validation_fraction={validation_fraction}"
        )
    limit = int(validation_fraction * 2**64)
    return np.fromiter(
        (_key_hash(key, seed) < limit for key in keys), dtype=bool, count=-1
    )


def _key_hash(key, seed):
    digest = hashlib.blake2b(f"{seed}:{key}".encode("utf-8"), digest_size=8)
    return int.from_bytes(digest.digest(), "big")


def split(image_set, validation_fraction, seed=0):
    """Splits an `ImageSet` into training and validation sets by key hash.

    Args:
        image_set: `ImageSet`.
        validation_fraction: float in (0, 1). The expected fraction of
            images in the validation set (exact only on average).
        seed: int or str. Another seed gives another split. Defaults to `0`.

    Returns:
        `(train, validation)`: two disjoint `ImageSet`s covering the set.
        Images with the same key go to the same side.
    """
    mask = validation_mask(image_set.keys, validation_fraction, seed)
    return image_set.subset(~mask), image_set.subset(mask)
