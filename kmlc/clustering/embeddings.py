"""One vector per image from a trained model, streamed to `.npy` files.

Three embeddings, all taken in the same pass over the images:

- `"scores"` `[D]`: the label scores, the sigmoid of the final logits.
  Clusters are then explained by labels directly, but the vector knows
  only what the classifier was trained to name.
- `"features"` `[E]`: the plain backbone feature, the global average of the
  backbone's feature map A, `GAP(A)`, as an ImageNet network sees the image.
  The baseline the label-aware embedding is measured against.
- `"label-aware"` `[E]`: the fused global feature after knowledge fusion,
  `GAP(B)` with `B = g(relations(A, P)) + A` (paper eq. 10-11,
  `kmlc.layers.KnowledgeFusion`). It lives in the same space as `GAP(A)`,
  so the two compare like for like, and the difference between them is
  exactly what the label graph adds: the GCN's label-node features P matched
  against every position of the feature map. It needs a model with the
  `"fusion"` head. The other candidate, the GCN's node features pooled with
  the label scores as weights (`sum_d s_d P_d / sum_d s_d`, `[K]`), is
  kept as `"gcn-nodes"` for comparison; README "Cluster analysis" gives
  both measured on Corel-5k (`gcn-nodes` groups far worse).

Vectors are L2-normalised (`"scores"` excepted), so that k-means compares
directions, the usual choice for CNN features. The images stream through
`kmlc.data.make_dataset` in batches, so only the vectors are kept, written
row by row to `.npy` files (`kmlc.clustering.store`).
"""

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tqdm

from kmlc.clustering import store
from kmlc.metrics import sigmoid

logger = logging.getLogger("kmlc.cluster")

EMBEDDINGS = ("scores", "label-aware", "features")
# Embeddings computed for comparisons, never chosen from the command line.
EXTRA_EMBEDDINGS = ("gcn-nodes",)
# Which of the model's heads each embedding reads.
REQUIRED_HEADS = {
    "scores": (),
    "features": (),
    "label-aware": ("fusion",),
    "gcn-nodes": ("gcn",),
}
DESCRIPTIONS = {
    "scores": "label scores sigmoid(logits) [D]",
    "features": "plain backbone feature GAP(A) [E], L2-normalised",
    "label-aware": "fused global feature GAP(B) after knowledge fusion [E], "
    "L2-normalised",
    "gcn-nodes": "GCN label-node features pooled by label score [K], L2-normalised",
}


def check_embedding(model, embedding):
    """Raises `ValueError` if `model` cannot give `embedding`."""
    known = EMBEDDINGS + EXTRA_EMBEDDINGS
    if embedding not in known:
        raise ValueError(
            f"embedding must be one of {EMBEDDINGS}. Received: embedding={embedding!r}"
        )
    heads = tuple(getattr(model, "heads", ()))
    missing = [head for head in REQUIRED_HEADS[embedding] if head not in heads]
    if missing:
        raise ValueError(
            f"The {embedding!r} embedding ({DESCRIPTIONS[embedding]}) needs a "
            f"model with the {missing[0]!r} head; this model has heads "
            f"{heads or 'none'}. Use --embedding scores or features, or train "
            f"a model with model.preset=full. Received: embedding={embedding!r}"
        )
    try:
        model.get_layer("pooling")
    except ValueError as error:
        raise ValueError(
            "The model has no 'pooling' layer: it is not a kmlc "
            f"MultiLabelClassifier. Received: model {model.name!r}"
        ) from error


def check_collection(image_set):
    """Raises `ValueError` for a collection without images."""
    if len(image_set) == 0:
        raise ValueError(
            "The collection is empty: there are no images to cluster. "
            f"Received: {image_set!r}"
        )


def available_embeddings(model, names=EMBEDDINGS):
    """The embeddings among `names` that `model` has the heads for."""
    heads = tuple(getattr(model, "heads", ()))
    return [
        name for name in names if all(head in heads for head in REQUIRED_HEADS[name])
    ]


def embedding_model(model, embeddings):
    """A model from images to the tensors the embeddings are made of.

    Returns a `keras.Model` whose outputs are a dict with `"logits"` `[B,
    D]` and, as needed, `"pooled"` `[B, E]`, `"fused"` `[B, E]` and
    `"nodes"` `[B, D, K]`.
    """
    for name in embeddings:
        check_embedding(model, name)
    outputs = {"logits": model.get_layer("logits").output}
    if "features" in embeddings:
        outputs["pooled"] = model.get_layer("pooling").output
    if "label-aware" in embeddings:
        fused = model.get_layer("knowledge_fusion").output[0]
        outputs["fused"] = keras.ops.mean(fused, axis=(1, 2))
    if "gcn-nodes" in embeddings:
        outputs["nodes"] = model.get_layer("label_gcn").output
    return keras.Model(model.inputs, outputs, name="embeddings")


def normalize_rows(vectors):
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def vectors_from(outputs, scores):
    """The embeddings of one batch from the embedding model's outputs."""
    vectors = {"scores": scores}
    if "pooled" in outputs:
        vectors["features"] = normalize_rows(outputs["pooled"])
    if "fused" in outputs:
        vectors["label-aware"] = normalize_rows(outputs["fused"])
    if "nodes" in outputs:
        nodes = np.asarray(outputs["nodes"], np.float32)
        weights = scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
        vectors["gcn-nodes"] = normalize_rows(np.einsum("bd,bdk->bk", weights, nodes))
    return vectors


@dataclasses.dataclass
class Embedded:
    """What `embed_collection` wrote.

    Attributes:
        keys: `[N]` the names of the images embedded, in order (unreadable
            images are left out).
        paths: dict. Embedding name (and `"labels"`, uint8 `[N, D]`) -> the
            `.npy` file of its rows, in the order of `keys`.
        label_names: list of D names.
        node_features: `[D, K]` or None. The GCN's label-node features
            averaged over the collection, each image weighted by the label's
            score (for label communities); None without a `"gcn"` head.
        skipped: dict. Image name -> why it could not be read.
        seconds: float. Wall time of the pass.
    """

    keys: np.ndarray
    paths: dict
    label_names: list
    node_features: object
    skipped: dict
    seconds: float

    @property
    def images_per_second(self):
        return len(self.keys) / max(self.seconds, 1e-9)


def embed_collection(
    model,
    image_set,
    directory,
    embeddings=("scores",),
    batch_size=32,
    progress=False,
):
    """Embeds every image of an `ImageSet` into `.npy` files in `directory`.

    Args:
        model: a `MultiLabelClassifier`.
        image_set: `kmlc.data.ImageSet`.
        directory: where `<embedding>.npy` and `labels.npy` are written.
        embeddings: names from `EMBEDDINGS` (and `EXTRA_EMBEDDINGS`);
            `"scores"` is always written.
        batch_size: int.
        progress: bool. A tqdm progress bar on stderr.

    Returns:
        `Embedded`.

    Raises:
        ValueError: an empty collection, one where no image could be read,
            or a model without the heads an embedding needs.
    """
    from kmlc import data

    embeddings = list(dict.fromkeys(["scores", *embeddings]))
    check_collection(image_set)
    for name in embeddings:
        check_embedding(model, name)
    # The node features are also averaged for the label communities.
    extractor = embedding_model(
        model, embeddings + available_embeddings(model, ["gcn-nodes"])
    )
    dataset = data.make_dataset(image_set, model.image_size, batch_size, with_keys=True)
    os.makedirs(directory, exist_ok=True)
    num_images = len(image_set)
    writers, keys = {}, []
    node_sums = node_weights = None
    start = time.perf_counter()
    bar = tqdm.tqdm(total=num_images, unit="image", disable=not progress)
    try:
        for images, labels, batch_keys in dataset:
            outputs = {
                name: np.asarray(value)
                for name, value in extractor.predict_on_batch(images).items()
            }
            scores = sigmoid(outputs["logits"]).astype(np.float32)
            vectors = vectors_from(outputs, scores)
            vectors["labels"] = np.asarray(labels, np.uint8)
            for name in [*embeddings, "labels"]:
                if name not in writers:
                    writers[name] = store.RowWriter(
                        os.path.join(directory, f"{name}.npy"),
                        num_images,
                        vectors[name].shape[1],
                        np.uint8 if name == "labels" else np.float32,
                    )
                writers[name].write(vectors[name])
            if "nodes" in outputs:
                batch_sums = np.einsum("bd,bdk->dk", scores, outputs["nodes"])
                node_sums = batch_sums if node_sums is None else node_sums + batch_sums
                batch_weights = scores.sum(axis=0)
                node_weights = (
                    batch_weights
                    if node_weights is None
                    else node_weights + batch_weights
                )
            keys.extend(key.decode("utf-8") for key in np.asarray(batch_keys))
            bar.update(len(scores))
    finally:
        bar.close()
        for writer in writers.values():
            writer.close()
    seconds = time.perf_counter() - start
    skipped = dict(dataset.skipped.reasons)
    if not keys:
        first = "; ".join(f"{name}: {why}" for name, why in list(skipped.items())[:3])
        raise ValueError(
            f"None of the {num_images} images could be read, so there is "
            f"nothing to cluster. Received: {len(skipped)} unreadable images "
            f"({first})"
        )
    node_features = None
    if node_sums is not None:
        node_features = node_sums / np.maximum(node_weights, 1e-12)[:, None]
    logger.info(
        "embedded %d images (%d skipped) in %.1f s: %.1f images/s",
        len(keys),
        len(skipped),
        seconds,
        len(keys) / max(seconds, 1e-9),
    )
    paths = {name: writer.path for name, writer in writers.items()}
    return Embedded(
        np.array(keys, dtype=object),
        paths,
        list(model.label_names),
        node_features,
        skipped,
        seconds,
    )
