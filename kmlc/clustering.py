"""Cluster analysis of large image collections with a trained model.

A trained model turns each image into a vector: its label scores (the
sigmoid of the logits, `[D]`, so that clusters are explained by labels) or
its pooled backbone features (`[E]`). Images stream through the model in
batches, so only the vectors of a collection of millions of images are held
in memory, and beyond 40,960 vectors mini-batch k-means groups them. Each cluster is
described by its size and its most characteristic labels.
"""

import dataclasses
import logging

import keras
import numpy as np
from sklearn.cluster import KMeans
from sklearn.cluster import MiniBatchKMeans

from kmlc.metrics import sigmoid

logger = logging.getLogger("kmlc.cluster")

EMBEDDINGS = ("scores", "features")


@dataclasses.dataclass
class Clusters:
    """The result of `cluster_images`.

    Attributes:
        keys: `[N]` the image names, in dataset order.
        assignments: `[N]` int, each image's cluster.
        distances: `[N]` float, each image's distance to its cluster centre.
        centres: `[K, F]` the cluster centres in embedding space.
        scores: `[N, D]` the images' label scores.
        label_names: list of D names.
    """

    keys: np.ndarray
    assignments: np.ndarray
    distances: np.ndarray
    centres: np.ndarray
    scores: np.ndarray
    label_names: list

    @property
    def num_clusters(self):
        return len(self.centres)

    def describe(self, top_labels=5):
        """Per cluster: size, mean label scores' top labels, central images."""
        summary = []
        overall = self.scores.mean(axis=0)
        for k in range(self.num_clusters):
            members = np.flatnonzero(self.assignments == k)
            mean = self.scores[members].mean(axis=0) if len(members) else overall * 0
            order = np.argsort(-mean, kind="stable")[:top_labels]
            central = members[np.argsort(self.distances[members], kind="stable")[:5]]
            summary.append(
                {
                    "cluster": k,
                    "size": int(len(members)),
                    "top_labels": [
                        {
                            "label": self.label_names[i],
                            "mean_score": float(mean[i]),
                            "lift": float(mean[i] / max(overall[i], 1e-9)),
                        }
                        for i in order
                    ],
                    "central_images": [str(self.keys[i]) for i in central],
                }
            )
        return summary


def feature_extractor(model):
    """images -> pooled backbone features `[B, E]` of a kmlc model."""
    return keras.Model(model.inputs, model.get_layer("pooling").output)


def embed(model, dataset, embedding="scores"):
    """Label scores and the chosen embedding of every image.

    Args:
        model: a `MultiLabelClassifier`.
        dataset: batches of `(images, labels, keys)` (`make_dataset(...,
            with_keys=True)`).
        embedding: `"scores"` or `"features"`.

    Returns:
        `(keys [N], vectors [N, F], scores [N, D])`: NumPy arrays, float32.
    """
    if embedding not in EMBEDDINGS:
        raise ValueError(
            f"embedding must be one of {EMBEDDINGS}. Received: embedding={embedding!r}"
        )
    extractor = feature_extractor(model) if embedding == "features" else None
    keys, vectors, scores = [], [], []
    for images, _, batch_keys in dataset:
        batch_scores = sigmoid(model.predict_on_batch(images)).astype(np.float32)
        scores.append(batch_scores)
        if extractor is None:
            vectors.append(batch_scores)
        else:
            vectors.append(np.asarray(extractor.predict_on_batch(images), np.float32))
        keys.extend(key.decode("utf-8") for key in np.asarray(batch_keys))
    if not scores:
        raise ValueError("The dataset yielded no images to cluster.")
    return np.array(keys, dtype=object), np.concatenate(vectors), np.concatenate(scores)


def cluster_vectors(vectors, num_clusters, seed=0, batch_size=4096):
    """k-means: `(assignments [N], distances [N], centres [K, F])`.

    Exact k-means up to `10 * batch_size` vectors, mini-batch k-means above
    (a streaming pass per iteration). The centres returned are the means of
    the final clusters, and distances are to those.
    """
    if not 2 <= num_clusters <= len(vectors):
        raise ValueError(
            f"num_clusters must be between 2 and the number of images "
            f"({len(vectors)}). Received: num_clusters={num_clusters}"
        )
    if len(vectors) <= 10 * batch_size:
        kmeans = KMeans(n_clusters=num_clusters, random_state=seed, n_init=5)
    else:
        kmeans = MiniBatchKMeans(
            n_clusters=num_clusters, random_state=seed, batch_size=batch_size, n_init=5
        )
    assignments = kmeans.fit_predict(vectors)
    centres = np.stack(
        [
            vectors[assignments == k].mean(axis=0)
            if np.any(assignments == k)
            else kmeans.cluster_centers_[k]
            for k in range(num_clusters)
        ]
    )
    distances = np.linalg.norm(vectors - centres[assignments], axis=1)
    return assignments, distances, centres


def cluster_images(
    model, image_set, num_clusters, embedding="scores", batch_size=32, seed=0
):
    """Clusters an `ImageSet`'s images with a trained model.

    Unreadable images are skipped and named in the log by the pipeline.

    Returns:
        `Clusters`.
    """
    from kmlc import data

    dataset = data.make_dataset(image_set, model.image_size, batch_size, with_keys=True)
    keys, vectors, scores = embed(model, dataset, embedding)
    assignments, distances, centres = cluster_vectors(vectors, num_clusters, seed)
    return Clusters(keys, assignments, distances, centres, scores, model.label_names)


def plot_profiles(clusters, path, top_labels=12):
    """A heatmap of the clusters' mean label scores over their top labels."""
    from kmlc import plots

    plt = plots.pyplot()
    summary = clusters.describe(top_labels=3)
    chosen = []
    for entry in summary:
        for item in entry["top_labels"]:
            if item["label"] not in chosen:
                chosen.append(item["label"])
    chosen = chosen[:top_labels]
    index = [clusters.label_names.index(name) for name in chosen]
    matrix = np.array(
        [
            clusters.scores[clusters.assignments == k][:, index].mean(axis=0)
            if entry["size"]
            else np.zeros(len(index))
            for k, entry in enumerate(summary)
        ]
    )
    figure, axis = plt.subplots(
        figsize=(max(5, 0.6 * len(chosen) + 2), 0.45 * len(summary) + 1.5)
    )
    image = axis.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    axis.set_xticks(range(len(chosen)), chosen, rotation=45, ha="right")
    axis.set_yticks(
        range(len(summary)), [f"cluster {e['cluster']} ({e['size']})" for e in summary]
    )
    axis.set_title("Mean label score per cluster")
    figure.colorbar(image, ax=axis)
    return plots.save_figure(figure, path)
