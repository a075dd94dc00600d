"""kmlc: multi-label image recognition with a label graph, on Keras 3.

The package imports its modules on first use (PEP 562), so `import kmlc`
and the command line's `--help` do not pay for TensorFlow and Keras.
`kmlc.build_model`, `kmlc.load_model` and the other names below load what
they need when they are first touched.

Keras finds kmlc's layers in a `.keras` file once they are registered:
`import kmlc` registers them at once when Keras is already imported (Keras
is then loaded, so it costs little); otherwise `kmlc.load_model`, any model
builder, or `kmlc.saving.register_serializables()` does.
"""

import importlib
import sys

from kmlc.version import __version__

# Public name -> (module, attribute); attribute None means the module itself.
_EXPORTS = {
    "HEADS": ("kmlc.model", "HEADS"),
    "PRESETS": ("kmlc.model", "PRESETS"),
    "LabelGraph": ("kmlc.graph", "LabelGraph"),
    "MultiLabelClassifier": ("kmlc.model", "MultiLabelClassifier"),
    "build_model": ("kmlc.model", "build_model"),
    "load_model": ("kmlc.saving", "load_model"),
    "train": ("kmlc.training", "train"),
    **{
        name: (f"kmlc.{name}", None)
        for name in (
            "backbones",
            "clustering",
            "data",
            "evaluation",
            "export",
            "graph",
            "layers",
            "losses",
            "metrics",
            "precision",
        )
    },
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kmlc' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if "keras" in sys.modules:
    from kmlc.saving import register_serializables

    register_serializables()
