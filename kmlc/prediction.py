"""Labels with scores for image files, from a trained model; the scoring loop.

Images are decoded and resized exactly as the validation pipeline does
(`kmlc.data`): the same pixels the model was evaluated on. An image that
cannot be used is reported with its reason, never silently dropped.
"""

import dataclasses
import logging

import numpy as np

from kmlc.data.augmentation import resize
from kmlc.data.image_decoding import decode_image
from kmlc.data.image_decoding import diagnose_image
from kmlc.metrics import sigmoid

logger = logging.getLogger("kmlc.predict")


@dataclasses.dataclass
class Prediction:
    """The labels of one image.

    Attributes:
        image: the file path.
        labels: list of `(label, score)`, highest score first.
        error: why the image could not be used (then `labels` is empty).
    """

    image: str
    labels: list
    error: str = None

    def to_dict(self):
        if self.error:
            return {"image": self.image, "error": self.error}
        return {
            "image": self.image,
            "labels": [
                {"label": label, "score": score} for label, score in self.labels
            ],
        }


def load_image(path, image_size, min_side=8):
    """A file -> float32 `[H, W, 3]` in 0..255, resized; raises ValueError."""
    import tensorflow as tf

    problem = diagnose_image(path, True, min_side)
    if problem is not None:
        raise ValueError(f"{path}: {problem[1]}")
    data = tf.io.read_file(path)
    return resize(decode_image(data), tuple(image_size)).numpy()


def collect_scores(model, dataset, predict_fn=None):
    """Runs a model over `(images, labels)` batches.

    Args:
        model: a Keras model.
        dataset: `(images, labels)` batches.
        predict_fn: images -> logits. Defaults to `model.predict_on_batch`.

    Returns:
        `(logits, labels)`: float32 NumPy arrays `[N, D]`, in dataset order.
    """
    predict_fn = predict_fn or model.predict_on_batch
    logits, labels = [], []
    batch_size = None
    for images, batch_labels in dataset:
        images = np.asarray(images)
        count = len(images)
        batch_size = batch_size or count
        if count < batch_size:  # pad the last batch: one traced shape
            padding = np.zeros((batch_size - count, *images.shape[1:]), images.dtype)
            images = np.concatenate([images, padding])
        logits.append(np.asarray(predict_fn(images), dtype=np.float32)[:count])
        labels.append(np.asarray(batch_labels, dtype=np.float32))
    if not logits:
        raise ValueError("The dataset yielded no batches to score.")
    return np.concatenate(logits), np.concatenate(labels)


def select_labels(scores, label_names, threshold=0.5, top_k=None):
    """`(label, score)` pairs of one image: over the threshold, or the top k.

    `threshold` is one number or one per label (`[D]`). With `top_k`, the k
    best labels that also reach their threshold (pass `threshold=0` for
    exactly k).
    """
    threshold = np.broadcast_to(np.asarray(threshold, np.float64), scores.shape)
    order = np.argsort(-scores, kind="stable")
    if top_k is not None:
        order = order[:top_k]
    return [
        (label_names[i], float(scores[i])) for i in order if scores[i] >= threshold[i]
    ]


def predict_files(model, paths, threshold=None, top_k=None, batch_size=32):
    """Predicts the labels of image files.

    Args:
        model: a `MultiLabelClassifier`.
        paths: list of image file paths.
        threshold: float, `[D]` or None. Labels scoring at least this are
            returned; None takes the model's per-label `thresholds` (0.5
            for a model without).
        top_k: int or None. At most this many labels an image.
        batch_size: int.

    Returns:
        list of `Prediction`, in the order of `paths`.
    """
    if threshold is None:
        threshold = getattr(model, "thresholds", 0.5)
    results = [None] * len(paths)
    good, images = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, model.image_size))
            good.append(i)
        except ValueError as error:
            logger.warning("skipped %s", error)
            results[i] = Prediction(path, [], error=str(error).split(": ", 1)[-1])
    for start in range(0, len(good), batch_size):
        batch = np.stack(images[start : start + batch_size])
        scores = sigmoid(model.predict_on_batch(batch))
        for offset, row in enumerate(scores):
            i = good[start + offset]
            labels = select_labels(row, model.label_names, threshold, top_k)
            results[i] = Prediction(paths[i], labels)
    return results
