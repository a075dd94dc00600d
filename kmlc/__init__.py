"""kmlc: multi-label image recognition with a label graph, on Keras 3."""

from kmlc import backbones
from kmlc import clustering
from kmlc import data
from kmlc import evaluation
from kmlc import export
from kmlc import graph
from kmlc import layers
from kmlc import losses
from kmlc import metrics
from kmlc.graph import LabelGraph
from kmlc.model import HEADS
from kmlc.model import PRESETS
from kmlc.model import MultiLabelClassifier
from kmlc.model import build_model
from kmlc.saving import load_model
from kmlc.training import train
from kmlc.version import __version__

__all__ = [
    "__version__",
    "HEADS",
    "PRESETS",
    "LabelGraph",
    "MultiLabelClassifier",
    "backbones",
    "build_model",
    "clustering",
    "data",
    "evaluation",
    "export",
    "graph",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "train",
]
