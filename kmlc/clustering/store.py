"""Row-major `.npy` files written and read a chunk at a time.

Embeddings of a million images do not have to fit in memory: they are
written to a `.npy` file as the batches come and read back in chunks. The
files are ordinary `.npy` files (`np.load(path, mmap_mode="r")` maps them),
but the readers and writers here use plain positioned reads and writes,
not a memory map: mapped pages count in the
process's resident memory until the kernel drops them, so a pass over a
mapped 5 GB file looks like a 5 GB process. With `pread`/`pwrite` the
resident memory stays one chunk, however large the file.

The header is padded to a fixed 128 bytes, so a file created for N rows can
be shrunk in place to the rows actually written (images that could not be
read leave no row).
"""

import os

import numpy as np

HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"


def _header(shape, dtype):
    text = (
        f"{{'descr': {np.dtype(dtype).str!r}, 'fortran_order': False, "
        f"'shape': {tuple(int(n) for n in shape)!r}, }}"
    )
    room = HEADER_BYTES - len(_MAGIC) - 2 - 1
    if len(text) > room:
        raise ValueError(f"A .npy header for shape {shape} does not fit 128 bytes.")
    text = text.ljust(room) + "\n"
    return _MAGIC + len(text).to_bytes(2, "little") + text.encode("latin1")


class RowWriter:
    """Writes a `[N, F]` array to a `.npy` file, rows in order.

    Args:
        path: the `.npy` file to create (replaced if it exists).
        num_rows: int. N, the most rows that will be written.
        width: int. F, values per row.
        dtype: Defaults to float32.

    Use as a context manager; `close()` shrinks the file to the rows
    written.
    """

    def __init__(self, path, num_rows, width, dtype=np.float32):
        self.path = os.fspath(path)
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.capacity = int(num_rows)
        self.rows = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(self._fd, _header((self.capacity, self.width), self.dtype), 0)
        os.ftruncate(self._fd, HEADER_BYTES + self._row_bytes * self.capacity)

    @property
    def _row_bytes(self):
        return self.width * self.dtype.itemsize

    def write(self, block):
        """Appends rows `[n, F]`."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.ndim == 1 and self.width == 1:
            block = block[:, None]
        if block.ndim != 2 or block.shape[1] != self.width:
            raise ValueError(
                f"{self.path}: rows must be [n, {self.width}]. "
                f"Received: shape={block.shape}"
            )
        if self.rows + len(block) > self.capacity:
            raise ValueError(
                f"{self.path}: room for {self.capacity} rows. Received: "
                f"{self.rows + len(block)} rows"
            )
        offset = HEADER_BYTES + self.rows * self._row_bytes
        os.pwrite(self._fd, block.tobytes(), offset)
        self.rows += len(block)

    def close(self):
        if self._fd is None:
            return
        os.pwrite(self._fd, _header((self.rows, self.width), self.dtype), 0)
        os.ftruncate(self._fd, HEADER_BYTES + self._row_bytes * self.rows)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_header(path):
    """`(shape, dtype, data_offset)` of a `.npy` file."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        if fortran:
            raise ValueError(f"{path}: Fortran-ordered arrays are not supported.")
        return shape, dtype, f.tell()


def num_rows(source):
    """Rows of an array or of a `.npy` file."""
    if isinstance(source, np.ndarray):
        return len(source)
    return read_header(source)[0][0]


def read_rows(path, start, stop):
    """Rows `[start, stop)` of a `.npy` file, as a fresh array."""
    shape, dtype, offset = read_header(path)
    stop = min(stop, shape[0])
    row_values = int(np.prod(shape[1:], dtype=np.int64))
    count = max(0, stop - start) * row_values
    with open(path, "rb") as f:
        f.seek(offset + start * row_values * dtype.itemsize)
        values = np.fromfile(f, dtype=dtype, count=count)
    return values.reshape((-1, *shape[1:]))


def rows(source, start, stop):
    """Rows `[start, stop)` of an array or a `.npy` file."""
    if isinstance(source, np.ndarray):
        return source[start:stop]
    return read_rows(source, start, stop)


def iter_chunks(source, chunk_rows=65536):
    """Yields `(start, rows)` over an array or a `.npy` file path."""
    for start in range(0, num_rows(source), chunk_rows):
        yield start, rows(source, start, start + chunk_rows)


def take_rows(source, indices):
    """The rows at `indices` (a few; any order) of an array or `.npy` file.

    From a file, each row is read on its own (no memory map), so a sample
    of rows costs the sample's memory only.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if isinstance(source, np.ndarray):
        return source[indices]
    shape, dtype, offset = read_header(source)
    if len(indices) and (indices.min() < 0 or indices.max() >= shape[0]):
        raise IndexError(
            f"{source} has {shape[0]} rows. Received: rows {indices.min()} to "
            f"{indices.max()}"
        )
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    rows = np.empty((len(indices), *shape[1:]), dtype)
    flat = rows.reshape(len(indices), -1).view(np.uint8)
    fd = os.open(source, os.O_RDONLY)
    try:
        for position, index in enumerate(indices):
            data = os.pread(fd, row_bytes, offset + int(index) * row_bytes)
            flat[position] = np.frombuffer(data, np.uint8)
    finally:
        os.close(fd)
    return rows


def load(source):
    """The whole array (for collections that fit in memory)."""
    if isinstance(source, np.ndarray):
        return source
    return read_rows(source, 0, num_rows(source))
