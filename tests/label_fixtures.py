"""Large random and planted multi-hot label matrices (scipy CSR), for the
label graph's views and communities at 10,000 labels."""

import numpy as np
import scipy.sparse


def random_labels(num_labels=10_000, num_images=30_000, per_image=3, seed=0):
    """`[num_images, num_labels]` CSR: `per_image` labels drawn uniformly per
    image (fewer where a draw repeats)."""
    rng = np.random.default_rng(seed)
    columns = rng.integers(0, num_labels, (num_images, per_image))
    return _multi_hot(columns, num_labels)


def planted_labels(
    num_labels=10_000, num_blocks=20, num_images=30_000, stray=0.1, seed=0
):
    """Labels in `num_blocks` planted communities.

    Each image shows 3 labels of one block; a `stray` share of the images
    shows a fourth label of any block (so the graph is connected).

    Returns:
        `(y, block)`: `y` `[num_images, num_labels]` CSR; `block[d]` is
        label d's community.
    """
    rng = np.random.default_rng(seed)
    block = rng.permutation(np.arange(num_labels) % num_blocks)
    members = [np.flatnonzero(block == b) for b in range(num_blocks)]
    chosen = rng.integers(0, num_blocks, num_images)
    columns = np.stack(
        [members[b][rng.choice(len(members[b]), 3, replace=False)] for b in chosen]
    )
    strays = rng.random(num_images) < stray
    extra = np.where(strays, rng.integers(0, num_labels, num_images), columns[:, 0])
    return _multi_hot(np.column_stack([columns, extra]), num_labels), block


def _multi_hot(columns, num_labels):
    rows = np.repeat(np.arange(len(columns)), columns.shape[1])
    y = scipy.sparse.csr_matrix(
        (np.ones(columns.size), (rows, columns.ravel())),
        shape=(len(columns), num_labels),
    )
    y.data[:] = 1.0  # repeated draws count once
    return y
