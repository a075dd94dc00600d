"""Reads PyTorch checkpoints as NumPy arrays, without torch and without
running the checkpoint's pickle.

`torch.save` writes one of two layouts:

- the legacy one (torch < 1.6, and `_use_new_zipfile_serialization=False`):
  five pickles in a row (a magic number, the protocol version, system
  information, the object, the list of storage keys), then each storage's
  raw bytes, in the order of that list, each behind an 8-byte element count;
- the zip one: `<root>/data.pkl` for the object and `<root>/data/<key>` for
  each storage's raw bytes.

Both pickles name the storages through `persistent_id`s and build tensors
with `torch._utils._rebuild_tensor_v2`. A pickle can name any importable
function, so unpickling a file runs whatever it says; `read_state_dict`
never does: its unpickler accepts only the tensor-rebuild functions, the
storage types and plain containers, and refuses any other global with
`UnsafeCheckpointError` before anything is called.
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage types -> NumPy dtypes (little endian, as torch writes them).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # read as uint16, widened below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_SAFE_CONTAINERS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "set"): set,
}


class CheckpointError(ValueError):
    """A file that is not a readable PyTorch checkpoint."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle names something other than tensors."""


class _StorageType:
    """Stands in for `torch.FloatStorage` and its kin: carries the dtype."""

    def __init__(self, name):
        self.name = name
        self.bfloat16 = name == "BFloat16Storage"
        self.dtype = np.dtype(np.uint16 if self.bfloat16 else _STORAGE_DTYPES[name])


class _Storage:
    """A storage named by the pickle; its bytes arrive later."""

    def __init__(self, key, storage_type, numel):
        self.key = key
        self.type = storage_type
        self.numel = numel
        self.array = None


class _Tensor:
    """A tensor named by the pickle: a view of a storage."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def to_numpy(self, where):
        data = self.storage.array
        if data is None:
            raise CheckpointError(
                f"{where}: storage {self.storage.key!r} is named but its data "
                "is missing (a truncated or incomplete checkpoint)."
            )
        if len(self.size) != len(self.stride):
            raise CheckpointError(
                f"{where}: a tensor's shape {self.size} and strides "
                f"{self.stride} disagree."
            )
        count = int(np.prod(self.size)) if self.size else 1
        pairs = zip(self.size, self.stride, strict=True)
        last = self.offset + sum((n - 1) * s for n, s in pairs)
        if count and last >= len(data):
            raise CheckpointError(
                f"{where}: a tensor of shape {self.size} reaches past the end "
                f"of its storage {self.storage.key!r} ({len(data)} elements)."
            )
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :] if count else data[:0],
            shape=self.size,
            strides=[s * itemsize for s in self.stride],
            writeable=False,
        )
        array = np.array(view)  # a copy, contiguous
        if self.storage.type.bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError(
            "A tensor in the checkpoint is built from something other than "
            f"a storage. Received: {type(storage).__name__}"
        )
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, *unused):
    return data


_SAFE_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors and containers only; refuses every other global."""

    def __init__(self, file, where, storages):
        super().__init__(file, encoding="latin1")
        self.where = where
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) in _SAFE_CONTAINERS:
            return _SAFE_CONTAINERS[(module, name)]
        if (module, name) in _SAFE_FUNCTIONS:
            return _SAFE_FUNCTIONS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.where}: refused to load: its pickle names {module}.{name}, "
            "which is not a tensor, storage or container. A checkpoint of "
            "weights needs nothing else; loading it would run that code."
        )

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise CheckpointError(f"{self.where}: unknown persistent id {pid!r}.")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpointError(
                f"{self.where}: storage {key!r} has no known storage type. "
                f"Received: {storage_type!r}"
            )
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type, int(numel))
        return storage


def _load_pickle(file, where, storages):
    try:
        return _RestrictedUnpickler(file, where, storages).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        raise CheckpointError(
            f"{where}: not a PyTorch checkpoint, or a truncated one ({e})."
        ) from e


def _read_legacy(file, where):
    storages = {}
    magic = _load_pickle(file, where, storages)
    if magic != _LEGACY_MAGIC:
        raise CheckpointError(f"{where}: not a PyTorch checkpoint (no magic number).")
    protocol = _load_pickle(file, where, storages)
    if protocol != _LEGACY_PROTOCOL:
        raise CheckpointError(
            f"{where}: unsupported legacy protocol version. Received: {protocol!r}"
        )
    _load_pickle(file, where, storages)  # system information
    obj = _load_pickle(file, where, storages)
    keys = _load_pickle(file, where, storages)
    if not isinstance(keys, list):
        raise CheckpointError(f"{where}: the storage key list is missing.")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise CheckpointError(f"{where}: storage {key!r} is listed but unused.")
        header = file.read(8)
        if len(header) < 8:
            raise CheckpointError(f"{where}: truncated before storage {key!r}.")
        (numel,) = struct.unpack("<q", header)
        size = numel * storage.type.dtype.itemsize
        raw = file.read(size)
        if numel < 0 or len(raw) < size:
            raise CheckpointError(
                f"{where}: truncated in storage {key!r} (expected {size} bytes, "
                f"found {len(raw)})."
            )
        storage.array = np.frombuffer(raw, storage.type.dtype)
    return obj


def _read_zip(path, where):
    storages = {}
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("data.pkl")]
        if not pickles:
            raise CheckpointError(f"{where}: a zip file without data.pkl.")
        root = pickles[0][: -len("data.pkl")]
        with archive.open(pickles[0]) as f:
            obj = _load_pickle(io.BytesIO(f.read()), where, storages)
        for key, storage in storages.items():
            name = f"{root}data/{key}"
            if name not in names:
                raise CheckpointError(f"{where}: storage {key!r} is missing.")
            raw = archive.read(name)
            storage.array = np.frombuffer(raw, storage.type.dtype)
    return obj


def _to_numpy(obj, where):
    if isinstance(obj, _Tensor):
        return obj.to_numpy(where)
    if isinstance(obj, dict):
        return {k: _to_numpy(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v, where) for v in obj)
    return obj


def read_state_dict(path):
    """A PyTorch checkpoint's tensors as NumPy arrays, read safely.

    Args:
        path: str or path-like. A `.pth`/`.pt` file in either of
            `torch.save`'s layouts. A checkpoint that wraps its weights as
            `{"state_dict": {...}}` or `{"model": {...}}` is unwrapped.

    Returns:
        dict of `name -> np.ndarray`, in the file's order.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the pickle names code (nothing is run).
        CheckpointError: not a checkpoint, truncated, or not a dict of tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if zipfile.is_zipfile(path):
        obj = _read_zip(path, path)
    else:
        with open(path, "rb") as f:
            obj = _read_legacy(f, path)
    obj = _to_numpy(obj, path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(
        isinstance(v, np.ndarray) for v in obj.values()
    ):
        raise CheckpointError(
            f"{path}: expected a dict of tensors (a state_dict). "
            f"Received: {type(obj).__name__}"
        )
    return dict(obj)
