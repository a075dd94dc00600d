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

import sys

from kmlc import lazy
from kmlc.version import __version__

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=(
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
        "rescoring",
    ),
    attributes={
        "HEADS": "head_training",
        "PRESETS": "head_training",
        "LabelGraph": "graph",
        "MultiLabelClassifier": "model",
        "build_model": "model",
        "load_model": "saving",
        "train": "training",
    },
)
__all__ = ["__version__", *__all__]


if "keras" in sys.modules:
    from kmlc.saving import register_serializables

    register_serializables()
