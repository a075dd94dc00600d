"""Counting labels and label pairs over multi-hot batches, in one pass.

`CooccurrenceCounter` turns each batch into its non-zeros and accumulates
`Y^T Y` one chunk of rows at a time with a sparse product, so the work is
proportional to the labels present (about `L^2` per image with L labels),
and the memory to the pairs that co-occur: pair counts are a dense `[D, D]`
array up to `DENSE_LABELS_LIMIT` labels and a scipy CSR matrix beyond.
`label_batches` reads NumPy, scipy.sparse, tensors and `tf.data` datasets;
a dataset's labels are turned into indices inside the `tf.data` pipeline,
many batches at a time.
"""

import numpy as np
import scipy.sparse

# Beyond this many labels, pair counts are kept as a scipy CSR matrix
# (a dense float64 [2048, 2048] is 32 MB).
DENSE_LABELS_LIMIT = 2048
_DEFAULT_CHUNK_ROWS = 65536
# Flush the buffered rows into the pair counts past this many labels.
_MAX_BUFFERED_ENTRIES = 1 << 21
# Rows per batch when a dataset of single label rows is batched for counting,
# and batches per step when a batched dataset is grouped.
_DATASET_ROWS = 4096
_DATASET_GROUP = 256


class CooccurrenceCounter:
    """Accumulates label counts `M` and pair counts `N` over label batches.

    Each batch is a multi-hot matrix `[n, D]` (NumPy, scipy sparse, a
    `tf.Tensor` or `tf.SparseTensor`, or anything `np.asarray` accepts).
    Used by `LabelGraph.from_labels` and `LabelGraph.from_dataset`, so that
    data that does not fit in memory is counted in one streaming pass.

    Args:
        num_labels: int. D, the number of labels.
        chunk_rows: int. Rows gathered before their pairs are counted.
            Defaults to 65536.
        sparse: bool or None. Keep pair counts as a scipy CSR matrix; None:
            when D > `DENSE_LABELS_LIMIT`.

    Attributes:
        pair_counts: `[D, D]` float64, dense or CSR: N, with the diagonal
            holding M.
        label_counts: `[D]` float64: M.
        num_samples: int. Images counted.
    """

    def __init__(self, num_labels, chunk_rows=_DEFAULT_CHUNK_ROWS, sparse=None):
        if num_labels < 1:
            raise ValueError(
                f"num_labels must be at least 1. Received: num_labels={num_labels}"
            )
        self.num_labels = int(num_labels)
        self.chunk_rows = int(chunk_rows)
        self.sparse = num_labels > DENSE_LABELS_LIMIT if sparse is None else sparse
        self.label_counts = np.zeros((num_labels,), np.float64)
        self.num_samples = 0
        shape = (num_labels, num_labels)
        self._pairs = (
            scipy.sparse.csr_matrix(shape, dtype=np.float64)
            if self.sparse
            else np.zeros(shape, np.float64)
        )
        self._buffer = []
        self._buffered_rows = 0
        self._buffered_entries = 0

    @property
    def pair_counts(self):
        self._flush()
        return self._pairs

    def update(self, batch):
        """Adds a multi-hot batch `[n, D]` to the counts."""
        return self.add_rows(_as_csr(batch, self.num_labels, self.num_samples))

    def add_rows(self, rows):
        """Adds a checked 0/1 CSR matrix `[n, D]` (no duplicate entries)."""
        self._buffer.append(rows)
        self._buffered_rows += rows.shape[0]
        self._buffered_entries += rows.nnz
        self.num_samples += rows.shape[0]
        self.label_counts += np.bincount(rows.indices, minlength=self.num_labels)
        if (
            self._buffered_rows >= self.chunk_rows
            or self._buffered_entries >= _MAX_BUFFERED_ENTRIES
        ):
            self._flush()
        return self

    def _flush(self):
        if not self._buffer:
            return
        rows = scipy.sparse.vstack(self._buffer, format="csr", dtype=np.float64)
        self._buffer, self._buffered_rows, self._buffered_entries = [], 0, 0
        pairs = rows.T.tocsr() @ rows  # Y^T Y: only co-occurring pairs
        if self.sparse:
            self._pairs = self._pairs + pairs
        else:
            pairs = pairs.tocoo()
            self._pairs[pairs.row, pairs.col] += pairs.data


def _rows_from_indices(rows, cols, num_rows, num_labels):
    """Row-major (row, column) indices -> a 0/1 CSR matrix `[num_rows, D]`."""
    indptr = np.zeros(num_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=indptr[1:])
    return scipy.sparse.csr_matrix(
        (np.ones(len(cols), np.float32), np.asarray(cols, np.int32), indptr),
        shape=(num_rows, num_labels),
    )


def _as_csr(batch, num_labels, offset):
    """A checked multi-hot batch as a 0/1 CSR matrix."""
    if scipy.sparse.issparse(batch):
        batch = scipy.sparse.csr_matrix(batch, copy=True)
        _check_shape(batch.shape, num_labels, offset)
        batch.sum_duplicates()
        _check_binary(batch.data, batch, offset)
        batch.eliminate_zeros()
        batch.data = np.ones_like(batch.data, np.float32)
        return batch
    if _is_tf_sparse(batch):
        return _as_csr(_tf_sparse_to_scipy(batch), num_labels, offset)
    if hasattr(batch, "numpy"):
        batch = batch.numpy()
    batch = np.asarray(batch)
    _check_shape(batch.shape, num_labels, offset)
    _check_binary(batch, batch, offset)
    rows, cols = np.nonzero(batch)
    return _rows_from_indices(rows, cols, batch.shape[0], num_labels)


def _check_shape(shape, num_labels, offset):
    if len(shape) != 2:
        raise ValueError(
            "Labels must be a 2-D multi-hot matrix [num_images, num_labels]. "
            f"Received: shape={tuple(shape)} (after {offset} rows)"
        )
    if shape[1] != num_labels:
        raise ValueError(
            f"Expected {num_labels} label columns, like the rows before. "
            f"Received: shape={tuple(shape)} (after {offset} rows)"
        )


def _check_binary(values, matrix, offset):
    values = np.asarray(values)
    bad = (values != 0) & (values != 1)
    if not bad.any():
        return
    if scipy.sparse.issparse(matrix):
        coo = matrix.tocoo()
        row, col = int(coo.row[bad][0]), int(coo.col[bad][0])
        value = coo.data[bad][0]
    else:
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = values[row, col]
    _raise_not_binary(value, row + offset, col)


def _raise_not_binary(value, row, col):
    raise ValueError(
        "The label matrix must hold only 0 and 1 (multi-hot). "
        f"Received: {np.asarray(value).item()!r} at row {row}, column {col}"
    )


# === Reading batches ===


def count(batches, num_labels=None, chunk_rows=_DEFAULT_CHUNK_ROWS):
    """A `CooccurrenceCounter` filled from `batches` (see `label_batches`
    and, for a `tf.data` dataset, `_dataset_groups`), or None if they hold
    no rows and `num_labels` is None."""
    counter = None
    if num_labels is not None:
        counter = CooccurrenceCounter(num_labels, chunk_rows)
    if _is_dataset(batches):
        for group in _dataset_groups(batches):
            if counter is None:
                counter = CooccurrenceCounter(group.num_labels, chunk_rows)
            counter.add_rows(group.rows(counter.num_labels, counter.num_samples))
        return counter
    for batch in label_batches(batches):
        if counter is None:
            counter = CooccurrenceCounter(np.shape(batch)[-1], chunk_rows)
        counter.update(batch)
    return counter


def label_batches(batches):
    """Yields the label batches of arrays, tensors, tuples or dicts."""
    for batch in batches:
        # Keras' (x, y) or (x, y, sample_weight) tuples; a list is a batch
        # of label rows (a list of two rows is not an (image, labels) pair).
        if isinstance(batch, tuple) and len(batch) in (2, 3):
            batch = batch[1]
        elif isinstance(batch, dict):
            batch = batch["labels"]
        if scipy.sparse.issparse(batch) or _is_tf_sparse(batch):
            yield batch
            continue
        if hasattr(batch, "numpy"):
            batch = batch.numpy()
        batch = np.asarray(batch)
        if batch.ndim == 1:
            batch = batch[None, :]
        yield batch


def _is_dataset(batches):
    return type(batches).__module__.startswith("tensorflow") and hasattr(
        batches, "element_spec"
    )


def _is_tf_sparse(batch):
    return type(batch).__name__ == "SparseTensor" and hasattr(batch, "indices")


def _tf_sparse_to_scipy(batch):
    indices = batch.indices.numpy()
    shape = tuple(int(d) for d in batch.dense_shape.numpy())
    if len(shape) != 2:
        _check_shape(shape, shape[-1], 0)
    return scipy.sparse.coo_matrix(
        (batch.values.numpy(), (indices[:, 0], indices[:, 1])), shape=shape
    )


def _select_labels(element):
    if isinstance(element, tuple) and len(element) in (2, 3):
        return element[1]
    if isinstance(element, dict):
        return element["labels"]
    return element


def _dataset_groups(dataset):
    """Yields a `_Group` of label indices for each step over a dataset.

    Only the labels are kept (`(x, y[, w])` or `{"labels": y}`); unbatched
    rows are batched, and each batch becomes its non-zeros inside the
    pipeline, `_DATASET_GROUP` batches a step.
    """
    import tensorflow as tf

    spec = _select_labels(dataset.element_spec)
    labels = dataset.map(lambda *element: _select_labels(_unpack(element)))
    if spec.shape.rank == 1:
        labels = labels.batch(_DATASET_ROWS)
    elif spec.shape.rank != 2:
        raise ValueError(
            "Labels must be a 2-D multi-hot matrix [num_images, num_labels]. "
            f"Received: shape={tuple(spec.shape)} (the dataset's labels)"
        )

    def to_indices(y):
        if isinstance(y, tf.SparseTensor):
            y = tf.sparse.reorder(y)
            values, indices, shape = y.values, y.indices, y.dense_shape
        else:
            if y.dtype == tf.bool:
                y = tf.cast(y, tf.uint8)
            indices = tf.where(tf.not_equal(y, 0))
            values, shape = tf.gather_nd(y, indices), tf.shape(y, tf.int64)
        bad = tf.logical_and(tf.not_equal(values, 0), tf.not_equal(values, 1))
        return (
            tf.cast(tf.boolean_mask(indices, tf.not_equal(values, 0)), tf.int32),
            tf.cast(shape, tf.int64),
            tf.boolean_mask(indices, bad),
            tf.cast(tf.boolean_mask(values, bad), tf.float64),
        )

    # With tf.data's map-and-batch fusion, grouping the unbatched rows of
    # TFRecord shards costs ~50 s of CPU however few rows there are (12 or
    # Corel-5k's 4,500: 52 s; 0.45 s without; benchmarks/graph_counting.py).
    options = tf.data.Options()
    options.experimental_optimization.map_and_batch_fusion = False
    groups = (
        labels.map(to_indices, num_parallel_calls=tf.data.AUTOTUNE)
        .ragged_batch(_DATASET_GROUP)
        .prefetch(2)
        .with_options(options)
    )
    for indices, shapes, bad, bad_values in groups:
        yield _Group(indices, shapes.numpy(), bad, bad_values)


class _Group:
    """Several batches' label indices, from `_dataset_groups`."""

    def __init__(self, indices, shapes, bad, bad_values):
        self.indices, self.shapes = indices, shapes
        self.bad, self.bad_values = bad, bad_values
        self.num_labels = int(shapes[0, 1])

    def rows(self, num_labels, offset):
        """Checks the batches (row numbers from `offset`), and returns their
        rows as one 0/1 CSR matrix `[n, D]`."""
        starts = np.concatenate([[0], np.cumsum(self.shapes[:, 0])[:-1]])
        for start, shape in zip(starts, self.shapes, strict=True):
            _check_shape(tuple(int(d) for d in shape), num_labels, offset + start)
        bad_splits = self.bad.row_splits.numpy()
        if bad_splits[-1]:
            batch = int(np.flatnonzero(np.diff(bad_splits))[0])
            row, col = self.bad.flat_values.numpy()[bad_splits[batch]]
            value = self.bad_values.flat_values.numpy()[bad_splits[batch]]
            _raise_not_binary(value, offset + int(starts[batch] + row), int(col))
        flat = self.indices.flat_values.numpy()
        batch_of = np.repeat(
            np.arange(len(self.shapes)), np.diff(self.indices.row_splits.numpy())
        )
        rows = starts[batch_of] + flat[:, 0]
        return _rows_from_indices(
            rows, flat[:, 1], int(self.shapes[:, 0].sum()), num_labels
        )


def _unpack(element):
    return element[0] if len(element) == 1 else element
