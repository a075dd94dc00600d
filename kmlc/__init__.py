"""kmlc: multi-label image recognition with a label graph, on Keras 3."""

from kmlc import backbones
from kmlc import graph
from kmlc import layers
from kmlc import losses
from kmlc import metrics
from kmlc.graph import LabelGraph
from kmlc.model import HEADS
from kmlc.model import PRESETS
from kmlc.model import MultiLabelClassifier
from kmlc.model import build_model

__version__ = "0.1.0"

__all__ = [
    "HEADS",
    "PRESETS",
    "LabelGraph",
    "MultiLabelClassifier",
    "backbones",
    "build_model",
    "graph",
    "layers",
    "losses",
    "metrics",
]
