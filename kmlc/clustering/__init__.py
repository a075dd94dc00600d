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

import importlib

# Public name -> module. Loaded on first use (PEP 562), so that the
# NumPy-only modules (`store`, `algorithms`, `naming`, `evaluation`,
# `communities`) can be used without importing TensorFlow.
_EXPORTS = {
    "ALGORITHMS": "algorithms",
    "Partition": "algorithms",
    "choose_k": "algorithms",
    "cluster": "algorithms",
    "hdbscan": "algorithms",
    "kmeans": "algorithms",
    "streaming_kmeans": "algorithms",
    "analyse": "analysis",
    "label_communities": "communities",
    "describe": "naming",
    "EMBEDDINGS": "embeddings",
    "embed_collection": "embeddings",
    "dominant_labels": "evaluation",
    "evaluate": "evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kmlc.clustering' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kmlc.clustering.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
