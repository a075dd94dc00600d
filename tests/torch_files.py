"""Writes PyTorch checkpoint files without torch, for the reader's tests.

The layouts are torch.save's own (see `kmlc.torch_checkpoint`): the pickle
names `torch._utils._rebuild_tensor_v2` and `torch.FloatStorage`, which
the pickler must be able to import; they are stood in for by fake modules
while pickling, so no torch is needed.
"""

import contextlib
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np

_STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
}


@contextlib.contextmanager
def _fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in _STORAGE_NAMES.values():
        setattr(
            torch, name, type(name, (), {"__module__": "torch", "__qualname__": name})
        )
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Tensor:
    def __init__(self, key, array, torch):
        self.key, self.array, self.torch = key, array, torch

    def __reduce__(self):
        storage = _StorageId(self.key, self.array, self.torch)
        stride = [s // self.array.itemsize for s in self.array.strides]
        return (
            self.torch._utils._rebuild_tensor_v2,
            (storage, 0, self.array.shape, tuple(stride), False, {}),
        )


class _StorageId:
    def __init__(self, key, array, torch):
        self.key, self.array, self.torch = key, array, torch


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _StorageId):
            storage = getattr(obj.torch, _STORAGE_NAMES[obj.array.dtype])
            return ("storage", storage, obj.key, "cpu", obj.array.size, None)
        return None


def _pickle(obj):
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _tensors(state_dict, torch):
    arrays = {
        str(i): np.ascontiguousarray(v) for i, v in enumerate(state_dict.values())
    }
    tensors = {
        name: _Tensor(str(i), arrays[str(i)], torch)
        for i, name in enumerate(state_dict)
    }
    return tensors, arrays


def legacy_bytes(state_dict, obj=None, wrap=None):
    """torch < 1.6's layout of a dict of arrays, of `wrap(tensors)`, or of
    `obj` (any picklable object, raw)."""
    with _fake_torch() as torch:
        tensors, arrays = _tensors(state_dict, torch)
        parts = [
            _pickle(0x1950A86A20F9469CFC6C),
            _pickle(1001),
            _pickle({"protocol_version": 1001, "little_endian": True}),
            _pickle(obj if obj is not None else (wrap or dict)(tensors)),
            _pickle(list(arrays)),
        ]
    for array in arrays.values():
        parts.append(struct.pack("<q", array.size) + array.tobytes())
    return b"".join(parts)


def write_legacy(path, state_dict):
    with open(path, "wb") as f:
        f.write(legacy_bytes(state_dict))


def write_zip(path, state_dict):
    """torch >= 1.6's zip layout of a dict of arrays."""
    with _fake_torch() as torch:
        tensors, arrays = _tensors(state_dict, torch)
        data = _pickle(tensors)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        for key, array in arrays.items():
            archive.writestr(f"archive/data/{key}", array.tobytes())
        archive.writestr("archive/version", "3\n")


class RunsCommand:
    """An object whose pickle calls `os.system(command)` when loaded."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))
