"""File size, CPU latency and mAP of every export format, as JSON.

Trains a small model inside the script (MobileNetV3Small at 128 px, heads
"full", random initial weights: no ImageNet download here) on Corel-5k's
training split, then measures on its validation split (`kmlc.data.split`,
10 %, seed 0: the same images every run) the Keras model, the SavedModel
(`serving_images`), TFLite float32 / float16 / dynamic / int8 (calibrated on
training images, through `kmlc.export.lite_runtime.Predictor`; int8 with kmlc's defaults
(heads and `lite.INT8_FLOAT_OPS` computed in float, the heads' weights stored
as int8), the same with float32 head weights, with the heads quantized too,
and with every op quantized) and ONNX (onnxruntime):
file size, CPU latency at batch 1 (median of 20 runs after 3 warm-ups, the
formats taking turns run by run; all runtimes limited to `--threads`) and
mAP. Prints one JSON object: the
table, the ratios int8 / float32 for size and latency, and the issue's
goals (int8 size <= 0.30 x float32, int8 latency <= 0.6 x float32, int8 mAP
within 1 point of Keras).

    python benchmarks/export_formats.py --backbone mobilenetv3small \\
        --image-size 128 --epochs 6 --batch-size 32 --threads 1 \\
        --out /tmp/export_formats

Arguments: `--data` (Corel-5k folder; default `$KMLC_COREL5K` or
`<repo>/../shared/data/corel5k`), `--backbone`, `--image-size`, `--heads`,
`--epochs`, `--batch-size`, `--learning-rate`, `--validation-fraction`,
`--max-train-images` (a prefix of the training split, for a quick run),
`--num-calibration-samples`, `--threads` (TF, LiteRT and onnxruntime
threads), `--latency-runs`, `--out` (where the artefacts are written;
default a temporary directory), `--seed`.

Training is short and from random weights, so two choices keep the model
from staying at chance: batch-norm layers of the backbone use momentum 0.9
instead of Keras' 0.999 for MobileNetV3 (over a few hundred steps the 0.999
moving averages stay near their initial values), and images are not
augmented (random crops of 8-100 % of the image slow learning too much).
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kmlc  # noqa: E402
from kmlc import data  # noqa: E402
from kmlc import export  # noqa: E402
from kmlc.export import lite  # noqa: E402
from kmlc.export import lite_runtime  # noqa: E402
from kmlc.metrics import mean_average_precision  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get(
        "KMLC_COREL5K", str(REPO.parent / "shared/data/corel5k")
    )
    parser.add_argument("--data", default=default_data)
    parser.add_argument("--backbone", default="mobilenetv3small")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--heads", default="full")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--max-train-images", type=int, default=None)
    parser.add_argument("--num-calibration-samples", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--out", default=None)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def directory_size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def batch_logits(fn, images, batch_size=32):
    return np.concatenate(
        [
            np.asarray(fn(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    )


def train_model(args, train_set):
    image_size = (args.image_size, args.image_size)
    graph = kmlc.LabelGraph.from_labels(train_set.multi_hot())
    keras.utils.set_random_seed(args.seed)
    model = kmlc.build_model(
        len(train_set.vocabulary),
        graph,
        backbone=args.backbone,
        image_size=image_size,
        heads=args.heads,
        label_names=list(train_set.vocabulary.names),
    )
    for layer in model.backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), metrics=[])
    train = data.make_dataset(
        train_set,
        image_size,
        args.batch_size,
        training=True,
        seed=args.seed,
        cache=True,
    )
    start = time.perf_counter()
    model.fit(train, epochs=args.epochs, verbose=0)
    return model, time.perf_counter() - start


def main():
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    out = args.out or tempfile.mkdtemp(prefix="kmlc-export-formats-")
    os.makedirs(out, exist_ok=True)
    image_size = (args.image_size, args.image_size)
    root = pathlib.Path(args.data)
    image_set = data.read_manifest(
        root / "train.json", root / "images", root / "vocabulary.txt"
    )
    train_set, val_set = data.split(image_set, args.validation_fraction, seed=args.seed)
    if args.max_train_images:
        train_set = train_set.subset(
            np.arange(min(args.max_train_images, len(train_set)))
        )
    model, train_seconds = train_model(args, train_set)

    val = list(data.make_dataset(val_set, image_size, 64, training=False))
    x_val = np.concatenate([np.asarray(x) for x, _ in val])
    y_val = np.concatenate([np.asarray(y) for _, y in val])
    one = x_val[:1]
    rows = []

    runners = {}

    def measure(name, path, fn):
        logits = batch_logits(fn, x_val)
        runners[name] = fn
        rows.append(
            {
                "format": name,
                "file_size_mb": round(directory_size(path) / 2**20, 3),
                "mAP": round(100 * mean_average_precision(y_val, logits), 2),
            }
        )

    keras_path = os.path.join(out, "model.keras")
    model.save(keras_path)
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    measure("keras", keras_path, lambda x: keras_fn(tf.constant(x)).numpy())

    version_dir = export.export_saved_model(
        model, os.path.join(out, "serving"), "corel5k"
    )
    serving = tf.saved_model.load(version_dir).signatures["serving_images"]
    measure(
        "savedmodel",
        version_dir,
        lambda x: serving(images=tf.constant(x))["logits"].numpy(),
    )

    calibration = data.make_dataset(train_set, image_size, 32, training=False)
    # tflite_int8: kmlc's defaults (heads and lite.INT8_FLOAT_OPS computed in
    # float, the heads' weights stored as int8); tflite_int8_float_weights:
    # the same with the heads' weights stored as float32;
    # tflite_int8_int8_heads: the heads quantized too; tflite_int8_all_ops:
    # every op quantized.
    variants = [
        (mode, mode, lite.INT8_FLOAT_OPS, True, True) for mode in lite.QUANTIZE_MODES
    ]
    variants += [
        ("int8_float_weights", "int8", lite.INT8_FLOAT_OPS, True, False),
        ("int8_int8_heads", "int8", lite.INT8_FLOAT_OPS, False, True),
        ("int8_all_ops", "int8", (), False, True),
    ]
    for name, mode, float_ops, float_heads, int8_weights in variants:
        path = lite.convert(
            version_dir,
            os.path.join(out, f"model_{name}.tflite"),
            quantize=mode,
            representative_data=calibration if mode == "int8" else None,
            num_calibration_samples=args.num_calibration_samples,
            float_ops=float_ops,
            float_heads=float_heads,
            int8_weights=int8_weights,
        )
        predictor = lite_runtime.Predictor(path, num_threads=args.threads)
        measure(f"tflite_{name}", path, predictor.logits)
        rows[-1]["delegate"] = predictor.delegate

    import onnxruntime

    onnx_path = export.export_onnx(model, os.path.join(out, "model.onnx"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(onnx_path, options)
    measure("onnx", onnx_path, lambda x: session.run(["logits"], {"images": x})[0])

    # Latency: the formats take turns, run by run, so that machine noise
    # hits them alike; the median of each format's runs.
    for fn in runners.values():
        for _ in range(3):
            fn(one)
    times = {name: [] for name in runners}
    for _ in range(args.latency_runs):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn(one)
            times[name].append(1000 * (time.perf_counter() - start))
    for row in rows:
        row["latency_ms_batch1"] = round(statistics.median(times[row["format"]]), 3)

    by_name = {row["format"]: row for row in rows}
    int8, float32, keras_row = (
        by_name["tflite_int8"],
        by_name["tflite_float32"],
        by_name["keras"],
    )
    size_ratio = int8["file_size_mb"] / float32["file_size_mb"]
    latency_ratio = int8["latency_ms_batch1"] / float32["latency_ms_batch1"]
    map_drop = keras_row["mAP"] - int8["mAP"]
    report = {
        "config": {
            **{key: value for key, value in vars(args).items() if key != "data"},
            "train_images": len(train_set),
            "validation_images": int(len(x_val)),
            "num_labels": len(image_set.vocabulary),
            "train_seconds": round(train_seconds, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "onnxruntime": onnxruntime.__version__,
            "artefacts": out,
        },
        "table": rows,
        "ratios_int8_to_float32": {
            "file_size": round(size_ratio, 3),
            "latency": round(latency_ratio, 3),
        },
        "goals": {
            "int8_size_le_0.30x_float32": size_ratio <= 0.30,
            "int8_latency_le_0.6x_float32": latency_ratio <= 0.6,
            "int8_mAP_within_1_point_of_keras": abs(map_drop) <= 1.0,
            "int8_mAP_drop_points": round(map_drop, 2),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
