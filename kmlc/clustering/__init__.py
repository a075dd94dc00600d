"""Cluster analysis of large multi-label image collections.

A trained model turns each image into a vector (`embeddings`: label
scores, the label-aware fused feature, or the plain backbone feature),
streamed through `tf.data` into `.npy` files (`store`); scikit-learn groups
the vectors (`algorithms`: k-means, streaming mini-batch k-means, HDBSCAN,
k by silhouette); each group is named by its labels of highest lift and
shown by its central images and outliers (`describe`); labels that go
together form communities (`communities`); the groups are compared with the
known labels (`evaluation`); and `analysis.analyse` writes it all, with a
self-contained `report.html` (`report`, `figures`).

    from kmlc import clustering
    metrics, summaries = clustering.analyse(model, image_set, "clusters/")
"""

from kmlc.clustering.algorithms import ALGORITHMS
from kmlc.clustering.algorithms import Partition
from kmlc.clustering.algorithms import choose_k
from kmlc.clustering.algorithms import cluster
from kmlc.clustering.algorithms import hdbscan
from kmlc.clustering.algorithms import kmeans
from kmlc.clustering.algorithms import streaming_kmeans
from kmlc.clustering.analysis import analyse
from kmlc.clustering.communities import label_communities
from kmlc.clustering.embeddings import EMBEDDINGS
from kmlc.clustering.embeddings import embed_collection
from kmlc.clustering.evaluation import dominant_labels
from kmlc.clustering.evaluation import evaluate
from kmlc.clustering.naming import describe

__all__ = [
    "ALGORITHMS",
    "EMBEDDINGS",
    "Partition",
    "analyse",
    "choose_k",
    "cluster",
    "describe",
    "dominant_labels",
    "embed_collection",
    "evaluate",
    "hdbscan",
    "kmeans",
    "label_communities",
    "streaming_kmeans",
]
