"""The paper's modules as Keras 3 layers, written with `keras.ops` only."""

from kmlc.layers.cooccurrence_rescoring import CooccurrenceRescoring
from kmlc.layers.feature_activation import FeatureActivation
from kmlc.layers.image_preprocessing import ImagePreprocessing
from kmlc.layers.knowledge_fusion import KnowledgeFusion
from kmlc.layers.label_gcn import LabelGCN
from kmlc.layers.labelwise_dense import LabelwiseDense
from kmlc.layers.relation_attention import RelationAttention

__all__ = [
    "CooccurrenceRescoring",
    "FeatureActivation",
    "ImagePreprocessing",
    "KnowledgeFusion",
    "LabelGCN",
    "LabelwiseDense",
    "RelationAttention",
]
