"""kmlc: multi-label image recognition with a label graph, on Keras 3.

The names below are imported on first use (module `__getattr__`), so that
`import kmlc.serving` (the TF-free clients) or `kmlc --help` does not load
TensorFlow and Keras.
"""

import importlib

from kmlc.version import __version__

# Sub-modules, imported when first read as `kmlc.<name>`.
_SUBMODULES = (
    "backbones",
    "clustering",
    "data",
    "evaluation",
    "export",
    "graph",
    "layers",
    "lite",
    "losses",
    "metrics",
    "onnx_export",
)

# Public names -> the module that defines them.
_ATTRIBUTES = {
    "HEADS": "kmlc.model",
    "PRESETS": "kmlc.model",
    "LabelGraph": "kmlc.graph",
    "MultiLabelClassifier": "kmlc.model",
    "build_model": "kmlc.model",
    "load_model": "kmlc.saving",
    "train": "kmlc.training",
}

__all__ = ["__version__", *sorted(_ATTRIBUTES), *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kmlc.{name}")
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'kmlc' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
