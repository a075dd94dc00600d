"""SavedModel export for TensorFlow Serving.

`export_saved_model` writes TF Serving's layout `<base>/<name>/<version>/`:

- signature `serving_default`: `images` DT_STRING `[None]` (encoded JPEG,
  PNG, BMP or GIF bytes) decoded to RGB and resized to the model's
  `image_size` in the graph with the data pipeline's own functions
  (`kmlc.data.image_decoding.decode_image`, then the validation resize
  `kmlc.data.augmentation.resize`: bilinear, no crop, float 0..255);
- signature `serving_images`: `images` float32 `[None, H, W, 3]`, RGB 0..255;
- both return `scores` float32 `[None, D]` (sigmoid of the logits),
  `logits` float32 `[None, D]`, `decisions` bool `[None, D]` (`scores >=
  thresholds`, the model's per-label thresholds, `kmlc.thresholds`) and
  `label_names` DT_STRING `[None, D]` (the names tiled per image, so that
  server-side batching can split them);
- assets `labels.txt` (one label a line) and `kmlc_config.json`
  (`kmlc.export.contract`);
- `assets.extra/tf_serving_warmup_requests`, one `PredictionLog` for
  `serving_default` holding a small encoded image.

A version appears whole or not at all: it is written into a hidden sibling
directory (TF Serving ignores names that are not integers) and renamed into
place.
"""

import errno
import json
import logging
import os
import tempfile

import numpy as np

from kmlc import io as kmlc_io
from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
from kmlc.export import contract

logger = logging.getLogger(__name__)

SERVING_DEFAULT = "serving_default"
SERVING_IMAGES = "serving_images"
OUTPUT_KEYS = ("scores", "logits", "decisions", "label_names")
WARMUP_FILE = "tf_serving_warmup_requests"
# Side of the encoded image in the warm-up request.
WARMUP_IMAGE_SIZE = 32


def saved_model_config(model, image_size, label_names, max_image_pixels=None):
    """The `kmlc_config.json` dict: the contract, the outputs, the signatures."""
    config = contract.model_config(model, image_size, label_names)
    config["max_image_pixels"] = max_image_pixels
    config["outputs"] = {
        "scores": contract.SCORES_MEANING,
        "logits": "the model's output",
        "decisions": contract.DECISIONS_MEANING,
        "label_names": "the label names, one row per image",
    }
    config["signatures"] = [SERVING_DEFAULT, SERVING_IMAGES]
    return config


def _serving_module(
    model, image_size, label_names, thresholds, assets_dir, max_image_pixels
):
    """A `tf.Module` with both signatures, the model's variables and assets."""
    import tensorflow as tf

    from kmlc.data.augmentation import resize
    from kmlc.data.image_decoding import declared_pixels
    from kmlc.data.image_decoding import decode_image

    height, width = image_size
    names = tf.constant(label_names, dtype=tf.string)
    cuts = tf.constant(np.asarray(thresholds, np.float32))

    def outputs(logits):
        logits = tf.cast(logits, tf.float32)
        batch = tf.shape(logits)[0]
        scores = tf.sigmoid(logits)
        return {
            "scores": scores,
            "logits": logits,
            "decisions": tf.greater_equal(scores, cuts[None, :]),
            "label_names": tf.tile(names[None, :], [batch, 1]),
        }

    def decode(encoded):
        # The data pipeline's own decoder and validation resize, so that a
        # served image gets the pixels the model was evaluated on (JPEG with
        # the accurate IDCT, BMP palettes, the first GIF frame). An image
        # whose header declares more than max_image_pixels is refused
        # (INVALID_ARGUMENT) before it is decoded.
        checks = []
        if max_image_pixels:
            checks.append(
                tf.debugging.assert_less_equal(
                    declared_pixels(encoded, graph_only=True),
                    tf.constant(max_image_pixels, tf.int64),
                    message=(
                        "The image's header declares more pixels than this "
                        f"model's limit of {max_image_pixels:,} (kmlc export "
                        "--max-image-pixels)"
                    ),
                )
            )
        with tf.control_dependencies(checks):
            image = resize(decode_image(encoded), (height, width))
        return tf.ensure_shape(image, (height, width, 3))

    @tf.function(
        input_signature=[tf.TensorSpec([None, height, width, 3], tf.float32)],
        autograph=False,
    )
    def serving_images(images):
        return outputs(model(images, training=False))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serving_default(images):
        decoded = tf.map_fn(
            decode,
            images,
            fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32),
        )
        return outputs(model(decoded, training=False))

    module = tf.Module(name="kmlc_serving")
    # Keras variables are trackable: listing them saves them with the module.
    module.model_variables = list(model.variables)
    module.labels_file = tf.saved_model.Asset(
        os.path.join(assets_dir, contract.LABELS_FILE)
    )
    module.config_file = tf.saved_model.Asset(
        os.path.join(assets_dir, contract.CONFIG_FILE)
    )
    module.serving_default = serving_default
    module.serving_images = serving_images
    return module


def warmup_request(model_name, image_size=WARMUP_IMAGE_SIZE):
    """A `PredictionLog` for `serving_default` with one small encoded PNG."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    # A smooth gradient, not a constant image: exercises the real decoder.
    ramp = np.linspace(0, 255, image_size, dtype=np.float32)
    pixels = np.stack(
        [
            np.tile(ramp[None, :], (image_size, 1)),
            np.tile(ramp[:, None], (1, image_size)),
            np.full((image_size, image_size), 128, np.float32),
        ],
        axis=-1,
    )
    png = tf.io.encode_png(pixels.astype(np.uint8)).numpy()
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_DEFAULT)
    )
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([png], dtype=tf.string))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def _write_warmup(version_dir, model_name):
    import tensorflow as tf

    extra = os.path.join(version_dir, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(extra, WARMUP_FILE)) as writer:
        writer.write(warmup_request(model_name).SerializeToString())


def write_saved_model(
    model,
    directory,
    name="kmlc",
    warmup=True,
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
):
    """Writes the SavedModel (signatures, assets, warm-up) into `directory`.

    No versioning and no atomic rename: `export_saved_model` adds those.
    `directory` must not exist yet, or be empty.

    Args:
        model: keras.Model. As in `export_saved_model`.
        directory: str. Where to write.
        name: str. The model name put in the warm-up request.
        warmup: bool. Whether to write `assets.extra/` warm-up requests.
        max_image_pixels: int or None. `serving_default` refuses an image
            whose header declares more pixels (width x height; a GIF's
            logical screen) with INVALID_ARGUMENT before decoding it.
            None for no limit. Defaults to 40 M.
    """
    import tensorflow as tf

    image_size = contract.model_image_size(model)
    num_labels = contract.num_logits(model, image_size)
    label_names = contract.model_label_names(model, num_labels)
    with tempfile.TemporaryDirectory(prefix="kmlc-assets-") as assets_dir:
        contract.write_labels(
            os.path.join(assets_dir, contract.LABELS_FILE), label_names
        )
        config = saved_model_config(model, image_size, label_names, max_image_pixels)
        kmlc_io.write_json(os.path.join(assets_dir, contract.CONFIG_FILE), config)
        module = _serving_module(
            model,
            image_size,
            label_names,
            config["thresholds"],
            assets_dir,
            max_image_pixels,
        )
        tf.saved_model.save(
            module,
            directory,
            signatures={
                SERVING_DEFAULT: module.serving_default.get_concrete_function(),
                SERVING_IMAGES: module.serving_images.get_concrete_function(),
            },
        )
    if warmup:
        _write_warmup(directory, name)


def existing_versions(model_dir):
    """The integer version directories under `model_dir`, sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(entry)
        for entry in os.listdir(model_dir)
        if entry.isdigit() and os.path.isdir(os.path.join(model_dir, entry))
    )


def _check_paths(base_path, name):
    base_path = os.fspath(base_path)
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise ValueError(
            f"The model name must be a non-empty string. Received: {name!r}"
        )
    if os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
        raise ValueError(
            "The model name becomes one directory: no path separators and no "
            f"leading '.'. Received: name={name!r}"
        )
    if os.path.exists(base_path) and not os.path.isdir(base_path):
        raise ValueError(
            "The export base path must be a directory (TF Serving's model base "
            f"path), but it is a file. Received: base_path={base_path!r}"
        )
    model_dir = os.path.join(base_path, name)
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ValueError(
            f"{model_dir!r} exists and is a file, not a directory of versions. "
            f"Received: base_path={base_path!r}, name={name!r}"
        )
    return model_dir


def export_saved_model(
    model, base_path, name, version=None, max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS
):
    """Exports a model for TF Serving as `<base_path>/<name>/<version>/`.

    Each call writes a new version: the largest existing version plus one
    (1 for the first), or `version` if given. An existing version is never
    overwritten. The version directory is written beside its final place
    under a hidden name and renamed into place, so TF Serving never sees a
    partial version; on any error the partial directory is removed.

    Args:
        model: keras.Model. A built model from images `[B, H, W, 3]` (RGB,
            0..255) to logits `[B, D]`, normally a
            `kmlc.MultiLabelClassifier` (its `image_size` and
            `label_names` are used).
        base_path: str or path. TF Serving's `--model_base_path` parent:
            the directory holding one folder per model name.
        name: str. The model name (one directory level).
        version: int or None. The version number; None takes the next free
            one.
        max_image_pixels: int or None. As in `write_saved_model`.

    Returns:
        str. The version directory written.

    Example:
    >>> version_dir = export_saved_model(model, "models", "corel5k")
    >>> # tensorflow_model_server --model_name=corel5k \\
    >>> #     --model_base_path=$PWD/models/corel5k
    """
    model_dir = _check_paths(base_path, name)
    contract.model_image_size(model)  # fails early for an unbuilt model
    for stale in kmlc_io.remove_stale_temps(model_dir):
        logger.warning("Removed %s, left by an export that was killed", stale)
    versions = existing_versions(model_dir)
    if version is None:
        version = versions[-1] + 1 if versions else 1
    else:
        if isinstance(version, bool) or int(version) != version or version < 0:
            raise ValueError(
                "A version must be a non-negative integer. "
                f"Received: version={version!r}"
            )
        version = int(version)
    final_dir = os.path.join(model_dir, str(version))
    if os.path.exists(final_dir):
        raise FileExistsError(
            f"Version {version} of model {name!r} already exists and is never "
            f"overwritten: {final_dir}. Existing versions: {versions}. "
            f"Received: version={version}"
        )
    try:
        # Written under a hidden name beside its place, renamed into place.
        with kmlc_io.atomic_path(final_dir) as temp_dir:
            write_saved_model(model, temp_dir, name, max_image_pixels=max_image_pixels)
            if os.path.exists(final_dir):
                raise FileExistsError(
                    f"Version {version} of model {name!r} appeared while it was "
                    f"being written: {final_dir}. Received: version={version}"
                )
    except Exception as error:
        # TensorFlow's writers report a full disk as ResourceExhaustedError.
        if _is_disk_full(error):
            raise OSError(
                errno.ENOSPC,
                f"No space left on the device while writing version {version} "
                f"of model {name!r} under {model_dir}; the partial version was "
                "removed",
            ) from error
        raise
    logger.info("Exported %s version %d to %s", name, version, final_dir)
    return final_dir


def _is_disk_full(error):
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    return "No space left on device" in str(error)


def name_from_path(model_path):
    """The model name an export takes by default: the model file's stem."""
    return os.path.splitext(os.path.basename(os.fspath(model_path)))[0]


def read_config(saved_model_dir):
    """The `kmlc_config.json` of a SavedModel; `{}` if it has none."""
    path = os.path.join(saved_model_dir, "assets", contract.CONFIG_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_labels(saved_model_dir):
    """The label names in a SavedModel's `assets/labels.txt`."""
    path = os.path.join(saved_model_dir, "assets", contract.LABELS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            "The SavedModel has no assets/labels.txt; pass label_names. "
            f"Received: {saved_model_dir}"
        )
    return contract.read_labels(path)
