"""Packages whose names load on first use (PEP 562).

kmlc's packages re-export names from their modules, and most of those
modules import TensorFlow or Keras (5-30 s). `attach` gives a package a
module-level `__getattr__` that imports a module only when one of its
names is first read, so `import kmlc`, the command line's `--help` and
the TF-free clients stay quick.

    __getattr__, __dir__, __all__ = lazy.attach(
        __name__,
        submodules=("graph", "metrics"),
        attributes={"LabelGraph": "graph", "load_model": "saving"},
    )
"""

import importlib
import sys


def attach(package, submodules=(), attributes=None):
    """The `(__getattr__, __dir__, __all__)` of a lazily loading package.

    Args:
        package: str. The package's `__name__`.
        submodules: names of modules of the package, read as attributes
            (`kmlc.graph`).
        attributes: dict. Public name -> the module (relative to
            `package`) that defines it.

    Returns:
        `(__getattr__, __dir__, __all__)` to assign in the package.
    """
    attributes = dict(attributes or {})
    submodules = tuple(submodules)
    names = sorted({*submodules, *attributes})

    def __getattr__(name):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in attributes:
            module = importlib.import_module(f"{package}.{attributes[name]}")
            value = getattr(module, name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__, names
