"""`ImageSet`: what every reader returns: keys, labels, and the images."""

import dataclasses
import os

import numpy as np
import scipy.sparse
import tensorflow as tf

from kmlc.data.label_vocabulary import LabelVocabulary

# Label matrices with more cells than this are kept as scipy.sparse.
DENSE_LABELS_LIMIT = 2**26


def multi_hot_matrix(index_lists, num_labels):
    """Lists of label indices -> uint8 `[N, D]`, dense or CSR when huge."""
    lengths = np.fromiter((len(row) for row in index_lists), np.int64)
    row_splits = np.concatenate([[0], np.cumsum(lengths)])
    columns = (
        np.concatenate([np.asarray(row, np.int64) for row in index_lists])
        if len(index_lists) and row_splits[-1]
        else np.zeros((0,), np.int64)
    )
    return matrix_from_indices(row_splits, columns, num_labels)


def matrix_from_indices(row_splits, columns, num_labels):
    """CSR parts (row splits, column indices) -> uint8 `[N, D]` matrix."""
    num_rows = len(row_splits) - 1
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(columns), np.uint8), columns, row_splits),
        shape=(num_rows, num_labels),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    if num_rows * num_labels <= DENSE_LABELS_LIMIT:
        return matrix.toarray()
    return matrix


class FileSource:
    """Images stored as files, one per key, under a root directory.

    Args:
        root: str, optional. The directory that relative keys are resolved
            against; absolute keys are used as they are. `None`: the current
            directory.
    """

    image_is_path = True
    streams = False

    def __init__(self, root=None):
        self.root = None if root is None else os.fspath(root)

    def name(self, key):
        return key if self.root is None else os.path.join(self.root, key)

    def records(self, image_set, shuffle_files=False, seed=None):
        paths = np.array([self.name(key) for key in image_set.keys], object)
        row_splits, columns = image_set.label_indices()
        indices = tf.RaggedTensor.from_row_splits(
            tf.constant(columns, tf.int64), tf.constant(row_splits, tf.int64)
        )
        dataset = tf.data.Dataset.from_tensor_slices(
            (
                tf.constant(paths, tf.string),
                indices,
                tf.constant(image_set.keys, tf.string),
            )
        )
        num_labels = len(image_set.vocabulary)
        return dataset.map(
            lambda path, index, key: (path, to_multi_hot(index, num_labels), key)
        )

    def __repr__(self):
        return f"FileSource(root={self.root!r})"


def to_multi_hot(indices, num_labels):
    """Label indices `[k]` (tf) -> multi-hot uint8 `[D]`."""
    one_hot = tf.one_hot(tf.cast(indices, tf.int32), num_labels, dtype=tf.uint8)
    return tf.reduce_max(one_hot, axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class ImageSet:
    """A labelled image data set, whatever format it was read from.

    Every reader (`read_manifest`, `read_csv`, `read_tfds`, `read_tfrecords`)
    returns one. The keys and labels are in memory (so that the label graph
    can be counted and the set split without reading images); the images
    are read by the `tf.data` dataset that `dataset()` gives.

    Args:
        vocabulary: `LabelVocabulary`. The D label names.
        keys: numpy array of str `[N]`. A name per image: the file name as
            the data names it (the manifest's `image_name`, the CSV's path,
            the TFDS file name). Used to split, find duplicates and in logs.
        labels: uint8 `[N, D]` multi-hot: a numpy array, or a
            `scipy.sparse.csr_matrix` when `N * D > 2**26`.
        source: where the images are: `FileSource` for files, or the
            source of a streaming reader (TFRecords, TFDS). A source may
            have `verify()`, returning the `Problem`s of its own files
            (`TFRecordSource`: corrupt shards), which `check` reports.
        problems: tuple of `Problem`. What the reader found and tolerated
            (with `unknown_labels="report"`). Defaults to `()`.
        selected: bool. Whether this is a subset of a streaming source's
            records (its dataset then filters by key). Defaults to `False`.

    Example:
    >>> images = kmlc.data.read_manifest("train.json", "images/", "vocab.txt")
    >>> train, validation = kmlc.data.split(images, 0.1, seed=0)
    >>> dataset = kmlc.data.make_dataset(train, 224, 32, training=True)
    """

    vocabulary: LabelVocabulary
    keys: np.ndarray
    labels: object
    source: object
    problems: tuple = ()
    selected: bool = False

    def __post_init__(self):
        keys = np.asarray(self.keys, dtype=object).reshape(-1)
        object.__setattr__(self, "keys", keys)
        expected = (len(keys), len(self.vocabulary))
        if tuple(self.labels.shape) != expected:
            raise ValueError(
                f"labels must have shape [N, D] = {list(expected)} for "
                f"{len(keys)} keys and {len(self.vocabulary)} labels. "
                f"Received: labels.shape={tuple(self.labels.shape)}"
            )

    def __len__(self):
        return len(self.keys)

    def __repr__(self):
        return (
            f"ImageSet({len(self)} images, {len(self.vocabulary)} labels, "
            f"source={self.source!r})"
        )

    @property
    def image_is_path(self):
        """Whether the dataset's first item is a file path (else bytes)."""
        return self.source.image_is_path

    def name(self, key):
        """How logs and problems name the image `key` (its path for files)."""
        return self.source.name(key)

    def label_indices(self):
        """The labels in CSR form: (row_splits int64 `[N+1]`, columns `[nnz]`)."""
        matrix = scipy.sparse.csr_matrix(self.labels)
        matrix.sort_indices()
        return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64)

    def multi_hot(self):
        """The labels as a dense uint8 numpy array `[N, D]`."""
        if scipy.sparse.issparse(self.labels):
            return self.labels.toarray()
        return np.asarray(self.labels)

    def subset(self, selection):
        """The images picked by a boolean mask `[N]` or an index array."""
        selection = np.asarray(selection)
        if selection.dtype == bool:
            if selection.shape != (len(self),):
                raise ValueError(
                    f"A boolean selection needs shape [{len(self)}]. "
                    f"Received: shape={selection.shape}"
                )
            selection = np.flatnonzero(selection)
        selection = selection.astype(np.int64)
        keys = self.keys[selection]
        kept = set(keys)
        return dataclasses.replace(
            self,
            keys=keys,
            labels=self.labels[selection],
            problems=tuple(
                problem
                for problem in self.problems
                if problem.key is None or problem.key in kept
            ),
            selected=self.selected or self.source.streams,
        )

    def dataset(self, shuffle_files=False, seed=None):
        """A `tf.data.Dataset` of `(image, multi_hot, key)`, one per image.

        `image` is a file path (`image_is_path`) or the encoded bytes (JPEG,
        PNG, BMP, GIF); `multi_hot` is uint8 `[D]`; `key` a string. Nothing
        is decoded here: `make_dataset` decodes, and skips what it cannot.

        Args:
            shuffle_files: bool. Read a sharded source's files in a random
                order (seeded by `seed`). Defaults to `False`.
            seed: int, optional. Defaults to `None`.
        """
        dataset = self.source.records(self, shuffle_files=shuffle_files, seed=seed)
        if self.selected and self.source.streams:
            if not len(self):
                return dataset.take(0)
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.keys.astype(str), tf.string),
                    tf.ones([len(self)], tf.int32),
                ),
                default_value=0,
            )
            dataset = dataset.filter(lambda image, labels, key: table.lookup(key) > 0)
        return dataset
