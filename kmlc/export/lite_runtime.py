"""Running a kmlc `.tflite` model: `Predictor`, `evaluate`, `latency_ms`.

`Predictor` runs the model's `serving_images` signature through the LiteRT
interpreter (`ai-edge-litert`), one image a call at the model's batch of 1,
and reads the labels and the input contract from the model's metadata
(`kmlc.export.lite_metadata`). `evaluate` gives mAP, file size and CPU
latency on a dataset, beside the Keras model's mAP.
"""

import logging
import os
import statistics
import time

import keras
import numpy as np

from kmlc.export.lite_metadata import read_metadata
from kmlc.export.saved_model import SERVING_IMAGES
from kmlc.metrics import sigmoid

logger = logging.getLogger(__name__)


class Predictor:
    """Runs a kmlc `.tflite` model through its `serving_images` signature.

    Uses the LiteRT interpreter (`ai-edge-litert`). Int8 inputs and outputs
    are quantized and dequantized here, so `predict` takes float images and
    returns float scores whatever the quantization.

    Args:
        tflite_path: str. A model written by `kmlc.export.lite.convert`.
        num_threads: int or None. Interpreter threads. Defaults to None
            (LiteRT's default).

    Attributes:
        label_names: list of str, from the model's metadata.
        thresholds: float32 `[D]`. The model's per-label thresholds, from
            its metadata (0.5 each for a file without them).
        image_size: `(H, W)`.
        contract: dict. The embedded input contract.
        delegate: str. `"xnnpack"` (LiteRT's default CPU delegate) or
            `"none"`: XNNPACK fails to prepare some int8 graphs, and then
            the builtin kernels run the model (slower).

    Example:
    >>> predictor = Predictor("model.tflite")
    >>> scores = predictor.predict(images)  # [B, D]
    """

    def __init__(self, tflite_path, num_threads=None):
        tflite_path = os.fspath(tflite_path)
        if not os.path.isfile(tflite_path):
            raise FileNotFoundError(f"No such TFLite model: {tflite_path}")
        self.path = tflite_path
        self.contract, self.label_names = read_metadata(tflite_path)
        self.image_size = tuple(self.contract["image_size"])
        self.thresholds = np.asarray(
            self.contract.get("thresholds") or [0.5] * len(self.label_names),
            np.float32,
        )
        self.num_threads = num_threads
        self.delegate = "xnnpack"
        self._load()

    def _load(self, op_resolver_type=None):
        from ai_edge_litert.interpreter import Interpreter

        kwargs = {"num_threads": self.num_threads}
        if op_resolver_type is not None:
            kwargs["experimental_op_resolver_type"] = op_resolver_type
        self._interpreter = Interpreter(model_path=self.path, **kwargs)
        self._runner = self._interpreter.get_signature_runner(SERVING_IMAGES)
        self._input = self._runner.get_input_details()["images"]
        self._outputs = self._runner.get_output_details()

    def _invoke(self, image):
        try:
            return self._runner(images=image)
        except RuntimeError as error:
            if self.delegate != "xnnpack" or "XNNPACK" not in str(error):
                raise
        # LiteRT's XNNPACK delegate fails to prepare some int8 graphs
        # ("failed to create XNNPACK runtime"); the builtin kernels run them.
        from ai_edge_litert.interpreter import OpResolverType

        logger.warning(
            "XNNPACK could not run %s; using LiteRT's builtin kernels", self.path
        )
        self.delegate = "none"
        self._load(OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        return self._runner(images=image)

    def _run(self, images):
        images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != (*self.image_size, 3):
            raise ValueError(
                f"Expected images [B, {self.image_size[0]}, {self.image_size[1]}, "
                f"3] (RGB, 0..255). Received: shape {images.shape}"
            )
        dtype = np.dtype(self._input["dtype"])
        if dtype != np.float32:
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            images = np.clip(np.round(images / scale + zero_point), info.min, info.max)
        images = images.astype(dtype)
        # One image a call, at the model's own batch of 1: resizing the input
        # of an int8 model makes LiteRT's XNNPACK delegate fail to prepare
        # ("failed to create XNNPACK runtime"), and batch 1 is how mobile
        # apps run it.
        rows = [self._invoke(image[None]) for image in images]
        result = {}
        for name, detail in self._outputs.items():
            value = np.concatenate([row[name] for row in rows]) if rows else None
            if value is None:
                value = np.zeros((0, *detail["shape"][1:]), np.float32)
            elif np.dtype(detail["dtype"]) != np.float32:
                scale, zero_point = detail["quantization"]
                value = (value.astype(np.float32) - zero_point) * scale
            result[name] = value.astype(np.float32)
        return result

    def logits(self, images):
        """Logits `[B, D]` for float images `[B, H, W, 3]`."""
        return self._run(images)["logits"]

    def predict(self, images):
        """Scores `[B, D]` (sigmoid of the logits) for images `[B, H, W, 3]`.

        The sigmoid is taken here, in float32, of the (dequantized) logits
        output: an int8 `scores` output has 256 levels, which collapse low
        scores together and so lose the ranking.
        """
        return sigmoid(self.logits(images)).astype(np.float32)

    def decisions(self, images):
        """bool `[B, D]`: `predict(images) >= thresholds`, label by label."""
        return self.predict(images) >= self.thresholds


def latency_ms(fn, image, runs=20, warmup=3, clock=time.perf_counter):
    """Median wall time of `fn(image)` in milliseconds over `runs` calls.

    `warmup` untimed calls come first; `clock` gives seconds.
    """
    for _ in range(warmup):
        fn(image)
    times = []
    for _ in range(runs):
        start = clock()
        fn(image)
        times.append((clock() - start) * 1000.0)
    return statistics.median(times)


def evaluate(tflite_path, dataset, keras_model=None, num_threads=None):
    """mAP, file size and CPU latency of a `.tflite` model on a dataset.

    Args:
        tflite_path: str. A model written by `kmlc.export.lite.convert`.
        dataset: iterable of `(images [B, H, W, 3], labels [B, D])` batches,
            such as `kmlc.data.make_dataset(..., training=False)`.
        keras_model: keras.Model or None. If given, its mAP on the same
            images is reported beside (`keras_mAP`).
        num_threads: int or None. LiteRT interpreter threads.

    Returns:
        dict: `mAP` (0..1, `kmlc.metrics.mean_average_precision` of the
        logits), `file_size_bytes`, `latency_ms_batch1` (median of 20 runs
        on one image), `num_images`, `delegate` (see `Predictor`), and
        with a Keras model `keras_mAP` and `mAP_drop_points` (Keras minus
        TFLite, times 100).
    """
    from kmlc.metrics import mean_average_precision

    predictor = Predictor(tflite_path, num_threads=num_threads)
    lite_logits, keras_logits, labels = [], [], []
    first = None
    for images, batch_labels in dataset:
        images = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
        if first is None and len(images):
            first = images[:1]
        lite_logits.append(predictor.logits(images))
        labels.append(np.asarray(keras.ops.convert_to_numpy(batch_labels)))
        if keras_model is not None:
            keras_logits.append(
                keras.ops.convert_to_numpy(keras_model(images, training=False))
            )
    if first is None:
        raise ValueError(
            "The dataset is empty: nothing to evaluate. Received: 0 images"
        )
    labels = np.concatenate(labels)
    result = {
        "mAP": mean_average_precision(labels, np.concatenate(lite_logits)),
        "file_size_bytes": os.path.getsize(tflite_path),
        "latency_ms_batch1": latency_ms(predictor.logits, first),
        "num_images": int(labels.shape[0]),
        "delegate": predictor.delegate,
    }
    if keras_model is not None:
        keras_map = mean_average_precision(labels, np.concatenate(keras_logits))
        result["keras_mAP"] = keras_map
        result["mAP_drop_points"] = 100.0 * (keras_map - result["mAP"])
    return result
