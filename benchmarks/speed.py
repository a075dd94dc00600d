"""Speed and scale of the heads, the label graph, the input and the exports.

    python benchmarks/speed.py --quick        # a subset: under 10 minutes
    python benchmarks/speed.py                # everything issue 12 lists
    python benchmarks/speed.py --only train,graph --labels 80,1000

Prints JSON lines, one object per measurement, each with `name`, its
figures and, where a goal applies, `goal` (words and numbers) and
`goal_met`. Ratios compare models measured in the same run, taking turns
repeat by repeat, so that machine noise hits them alike. The first line
describes the machine (with its load average: on a shared machine the
ratios are what count).

1. `train_step`: `full` vs `baseline` (MobileNetV3Small, 224 px, batch 16,
   random weights), D = 20, 80, 260, 1,000, 5,000 (`--quick`: 80, 1,000);
   median time per `train_on_batch` after warm-up, the two models taking
   turns step by step (`paired_ratio`: the median of the back-to-back
   ratios; `fastest_ratio`: of the fastest runs, the least disturbed by
   other load), and the process's peak resident memory while each model
   trains (`VmHWM`, reset first; both models are loaded). Goals: ratio
   <= 1.10 at D = 80, <= 1.30 at 1,000, <= 2.0 at 5,000.
2. `inference`: the same models, `predict_on_batch`. Goals: <= 1.10 at
   D = 80, <= 1.30 at 1,000.
3. `head_layers`: each head layer's forward and backward time at D = 1,000
   (batch 16, on the backbone's real outputs), and the plain classifier's.
4. `label_graph`: `LabelGraph.from_labels` on scipy.sparse and
   `LabelGraph.from_dataset` on a tf.data stream (uint8 multi-hot batches
   of 32 rows, a pool of at most 10,000 images repeated), 10^4, 10^5, 10^6
   images x 1,000 labels and 10^6 x 10,000, 3 labels an image drawn
   uniformly (the most distinct pairs); `stream_only_s` is the time to run
   the stream without counting. Run in a fresh process (peak memory
   without the models of the other items).
   Goals: linear in images (per image at 10^6 <= 1.5 x per image at 10^5),
   10^6 x 1,000 under 10 s from either source, 10^6 x 10,000 under 60 s
   and under 2 GB resident.
5. `input_pipeline`: `kmlc.data.make_dataset(training=True)` on the
   Corel-5k images at 224 px (decode, random resized crop, flip), images/s,
   and its ratio to the fastest training step of item 1 (goal >= 2).
6. `exported_inference`: the `full` model at D = 80 as Keras, SavedModel,
   TFLite float32 / float16 / dynamic / int8 (`Predictor` of
   `kmlc.export.lite_runtime`, one image a call): latency at batch 1 and
   images/s at batch 32. Goal: int8 / float32 latency <= 0.6. The same
   ratio for the `baseline` model (`baseline_int8_to_float32_latency`, its
   TFLite float32 and int8 timed in the same turns) shows what quantizing
   the backbone alone gains on the machine.

The label graph of items 1-3 (`synthetic_graph`): 20,000 synthetic images
whose labels come in pairs, counted with kmlc's defaults (threshold 0.4):
about one neighbour a label, as Corel-5k (1.45 at tau = 0.4).
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402

BENCHMARKS = pathlib.Path(__file__).resolve().parent
SECTIONS = ("train", "layers", "graph", "pipeline", "export")
TRAIN_GOALS = {80: 1.10, 1000: 1.30, 5000: 2.0}
INFERENCE_GOALS = {80: 1.10, 1000: 1.30}


def emit(record):
    print(json.dumps(record), flush=True)


def with_goal(record, words, met):
    record["goal"] = words
    record["goal_met"] = bool(met)
    return record


# === Memory ===


def reset_peak_memory():
    """Resets the process's peak resident set (Linux), if allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb():
    """The process's peak resident set since the last reset, in MB."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def resident_memory_mb():
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


# === Models (items 1-3) ===


def synthetic_graph(num_labels, seed=0, images=20000):
    """A graph counted on synthetic labels: each image has a topic's first
    label, its second label 70 % of the time and a random label half the
    time, so P(second | first) ~ 0.56 and P(first | second) ~ 0.74 are the
    edges at kmlc's default threshold 0.4: about one neighbour a label."""
    import kmlc

    rng = np.random.default_rng(seed)
    first = 2 * rng.integers(0, num_labels // 2, images)
    second = np.where(rng.random(images) < 0.7, first + 1, first)
    third = np.where(
        rng.random(images) < 0.5, rng.integers(0, num_labels, images), first
    )
    rows = np.repeat(np.arange(images), 3)
    cols = np.stack([first, second, third], axis=1).ravel()
    y = scipy.sparse.csr_matrix(
        (np.ones(rows.size, np.uint8), (rows, cols)), shape=(images, num_labels)
    )
    y.sum_duplicates()
    y.data[:] = 1
    return kmlc.LabelGraph.from_labels(y), y


def build(num_labels, preset, args, graph):
    import kmlc

    options = {} if args.node_dim is None else {"node_dim": args.node_dim}
    model = kmlc.build_model(
        num_labels,
        graph,
        backbone=args.backbone,
        image_size=args.image_size,
        heads=preset,
        **options,
    )
    model.compile(optimizer="adamw", metrics=[])
    return model


def timed(fn, steps):
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def train_and_inference(args):
    """Items 1 and 2; returns the fastest training rate (images/s)."""
    rng = np.random.default_rng(0)
    size, batch = args.image_size, args.batch_size
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    fastest = 0.0
    for num_labels in args.labels:
        graph, labels = synthetic_graph(num_labels)
        targets = labels[:batch].toarray().astype("float32")
        models = {p: build(num_labels, p, args, graph) for p in ("baseline", "full")}
        steps = {p: [] for p in models}
        predictions = {p: [] for p in models}
        peaks = {}
        for model in models.values():  # warm-up: tracing, allocations
            model.train_on_batch(images, targets)
            model.predict_on_batch(images)
        for repeat in range(args.repeats):
            for preset, model in models.items():
                reset = repeat == 0 and reset_peak_memory()

                def train(model=model, targets=targets):
                    model.train_on_batch(images, targets)

                steps[preset].append(timed(train, args.steps))
                if reset:
                    peaks[preset] = peak_memory_mb()
            for preset, model in models.items():
                predictions[preset].append(
                    timed(lambda m=model: m.predict_on_batch(images), args.steps)
                )
        gcn = models["full"].label_gcn
        common = {
            "num_labels": num_labels,
            "backbone": args.backbone,
            "image_size": size,
            "batch_size": batch,
            "node_dim": models["full"].node_dim,
            "graph_edges": graph.num_edges,
            # getattr: the same script times kmlc before the sparse GCN.
            "gcn_propagation": getattr(gcn, "propagation", "dense"),
        }
        median = {p: statistics.median(t) for p, t in steps.items()}
        ratio = median["full"] / median["baseline"]
        fastest = max(fastest, batch / min(median.values()))
        record = {
            "name": "train_step",
            **common,
            **_ratios(steps),
            "baseline_peak_rss_mb": peaks.get("baseline"),
            "full_peak_rss_mb": peaks.get("full"),
        }
        if num_labels in TRAIN_GOALS:
            goal = TRAIN_GOALS[num_labels]
            words = f"full / baseline time per step <= {goal} at D = {num_labels}"
            with_goal(record, words, ratio <= goal)
        emit(record)
        median = {p: statistics.median(t) for p, t in predictions.items()}
        ratio = median["full"] / median["baseline"]
        record = {"name": "inference", **common, **_ratios(predictions)}
        if num_labels in INFERENCE_GOALS:
            goal = INFERENCE_GOALS[num_labels]
            words = f"full / baseline inference time <= {goal} at D = {num_labels}"
            with_goal(record, words, ratio <= goal)
        emit(record)
        del models
    return fastest


def _ratios(times):
    """Medians, their ratio, the median of the back-to-back pairs' ratios
    and the ratio of the fastest runs (the least disturbed by other load)."""
    baseline, full = times["baseline"], times["full"]
    return {
        "baseline_ms": round(1000 * statistics.median(baseline), 1),
        "full_ms": round(1000 * statistics.median(full), 1),
        "ratio": round(statistics.median(full) / statistics.median(baseline), 3),
        "paired_ratio": round(
            statistics.median(f / b for f, b in zip(full, baseline, strict=True)), 3
        ),
        "fastest_ratio": round(min(full) / min(baseline), 3),
        "runs_ms": {
            "baseline": [round(1000 * t, 1) for t in baseline],
            "full": [round(1000 * t, 1) for t in full],
        },
    }


def head_layers(args, num_labels=1000):
    """Item 3: forward and backward time of each head layer."""
    import keras
    import tensorflow as tf

    graph, _ = synthetic_graph(num_labels)
    model = build(num_labels, "full", args, graph)
    size, batch = args.image_size, args.batch_size
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    feature_map = model.backbone(model.preprocessing(x))
    pooled = model.pooling(feature_map)
    cls_logits, activations = model.feature_activation(pooled)
    nodes = model.label_gcn(activations)
    fused, _ = model.knowledge_fusion(feature_map, nodes)

    def step_fn(layer, *inputs):
        inputs = [tf.constant(np.asarray(value)) for value in inputs]

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                outputs = tf.nest.flatten(layer(*inputs))
                loss = sum(tf.reduce_sum(tf.square(o)) for o in outputs)
            return tape.gradient(loss, inputs + layer.trainable_variables)

        return step

    steps = {
        "feature_activation": step_fn(model.feature_activation, pooled),
        "label_gcn": step_fn(model.label_gcn, activations),
        "gcn_scores": step_fn(model.gcn_scores, nodes),
        "knowledge_fusion": step_fn(model.knowledge_fusion, feature_map, nodes),
        "relation_attention": step_fn(model.relation_attention, fused, cls_logits),
        "plain_classifier": step_fn(keras.layers.Dense(num_labels), pooled),
    }
    times = {name: [] for name in steps}
    for step in steps.values():
        step()
    for _ in range(max(3, args.repeats)):
        for name, step in steps.items():
            times[name].append(timed(step, 1))
    emit(
        {
            "name": "head_layers",
            "num_labels": num_labels,
            "batch_size": batch,
            "feature_map": list(feature_map.shape[1:]),
            "node_dim": model.node_dim,
            "gcn_propagation": getattr(model.label_gcn, "propagation", "dense"),
            "gcn_edges": getattr(model.label_gcn, "num_edges", None),
            "forward_backward_ms": {
                name: round(1000 * statistics.median(t), 1) for name, t in times.items()
            },
        }
    )


# === Label graph (item 4) ===


def sparse_labels(num_images, num_labels, seed=0):
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, num_labels, 3 * num_images)
    y = scipy.sparse.csr_matrix(
        (np.ones(cols.size, np.uint8), cols, np.arange(0, cols.size + 1, 3)),
        shape=(num_images, num_labels),
    )
    y.sum_duplicates()
    y.data[:] = 1
    return y


def label_stream(num_images, num_labels, batch=32):
    """A tf.data stream of `num_images / 32` multi-hot uint8 batches
    `[32, D]`: a pool of `min(10,000, 3.2e7 / D)` distinct images (3
    random labels each), repeated, so that making the stream costs little
    beside counting it."""
    import tensorflow as tf

    pool_images = min(10000, 32 * 10**6 // num_labels)
    pool = sparse_labels(pool_images - pool_images % batch, num_labels, seed=1)
    pool = pool.toarray().reshape(-1, batch, num_labels)
    return tf.data.Dataset.from_tensor_slices(pool).repeat().take(num_images // batch)


def stream_only(dataset):
    import tensorflow as tf

    start = time.perf_counter()
    for _ in dataset.map(lambda y: tf.shape(y)[0]).batch(4096):
        pass
    return time.perf_counter() - start


def label_graph(args):
    from kmlc.graph import LabelGraph

    cases = [(10**4, 1000), (10**5, 1000), (10**6, 1000), (10**6, 10**4)]
    per_image = {}
    for source in ("scipy.sparse", "tf.data"):
        for num_images, num_labels in cases:
            if source == "tf.data" and num_labels > 1000 and args.quick:
                continue
            if source == "scipy.sparse":
                data = sparse_labels(num_images, num_labels)
            else:
                data = label_stream(num_images, num_labels)
            before = resident_memory_mb()
            reset_peak_memory()
            runs = []
            while not runs or (len(runs) < 3 and sum(runs) < 3.0):
                # Short cases run up to 3 times (the fastest counts).
                start = time.perf_counter()
                if source == "scipy.sparse":
                    graph = LabelGraph.from_labels(data)
                else:
                    graph = LabelGraph.from_dataset(data, num_labels)
                runs.append(time.perf_counter() - start)
            seconds = min(runs)
            record = {
                "name": "label_graph",
                "source": source,
                "images": num_images,
                "num_labels": num_labels,
                "seconds": round(seconds, 2),
                "peak_rss_mb": peak_memory_mb(),
                "rss_before_mb": before,
                "pairs_stored": int(
                    graph.pair_counts.nnz
                    if scipy.sparse.issparse(graph.pair_counts)
                    else np.count_nonzero(graph.pair_counts)
                ),
                "sparse": scipy.sparse.issparse(graph.pair_counts),
            }
            if source == "tf.data":
                record["stream_only_s"] = round(stream_only(data), 2)
            del graph, data
            if num_labels == 1000:
                per_image[num_images] = seconds / num_images
            if (num_images, num_labels) == (10**6, 1000):
                with_goal(record, "under 10 s at 10^6 x 1,000", seconds < 10)
                linear = per_image[10**6] <= 1.5 * per_image[10**5]
                record["per_image_ratio_1e6_to_1e5"] = round(
                    per_image[10**6] / per_image[10**5], 2
                )
                record["goal"] += "; linear: per image at 10^6 <= 1.5 x at 10^5"
                record["goal_met"] = bool(record["goal_met"] and linear)
            if num_labels == 10**4:
                peak = record["peak_rss_mb"] or 0.0
                with_goal(
                    record,
                    "10^6 x 10,000 under 60 s and under 2 GB resident",
                    seconds < 60 and peak < 2048,
                )
            emit(record)


def label_graph_in_subprocess(args):
    """Item 4 in a fresh process, its lines relayed."""
    import subprocess

    command = [sys.executable, __file__, "--only", "graph", "--in-process"]
    result = subprocess.run(
        command + (["--quick"] if args.quick else []),
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith('{"name": "label_graph"'):
            print(line, flush=True)
    if result.returncode:
        emit({"name": "label_graph", "error": result.stderr[-2000:]})


# === Input pipeline (item 5) ===


def input_pipeline(args, consumption):
    sys.path.insert(0, str(BENCHMARKS))
    from input_pipeline import corel5k_dir
    from input_pipeline import time_batches

    from kmlc.data import make_dataset
    from kmlc.data import read_manifest

    root = corel5k_dir(args.data)
    image_set = read_manifest(
        root / "train.json", root / "images", root / "vocabulary.txt"
    )
    dataset = make_dataset(image_set, 224, 32, training=True, repeat=True, seed=0)
    batches = 8 if args.quick else 20
    rates = time_batches(dataset, 32, batches, args.repeats, warmup=3)
    rate = statistics.median(rates)
    record = {
        "name": "input_pipeline",
        "data": "corel5k train",
        "image_size": 224,
        "images_per_second": round(rate, 1),
        "runs": [round(r, 1) for r in rates],
        "training_images_per_second": round(consumption, 1) if consumption else None,
    }
    if consumption:
        record["ratio"] = round(rate / consumption, 2)
        with_goal(
            record,
            "pipeline images/s >= 2 x the fastest training step's images/s",
            rate >= 2 * consumption,
        )
    emit(record)


# === Exported inference (item 6) ===


def exported_inference(args, num_labels=80):
    import tensorflow as tf

    from kmlc.export import lite
    from kmlc.export import saved_model
    from kmlc.export.lite_runtime import Predictor

    graph, _ = synthetic_graph(num_labels)
    size = args.image_size
    rng = np.random.default_rng(1)
    one = rng.uniform(0, 255, (1, size, size, 3)).astype("float32")
    many = rng.uniform(0, 255, (32, size, size, 3)).astype("float32")
    calibration = [rng.uniform(0, 255, (8, size, size, 3)).astype("float32")]
    out = tempfile.mkdtemp(prefix="kmlc-speed-")

    def tflite(saved, name, mode):
        return lite.convert(
            saved,
            os.path.join(out, f"{name}.tflite"),
            quantize=mode,
            representative_data=calibration if mode == "int8" else None,
            num_calibration_samples=8,
        )

    model = build(num_labels, "full", args, graph)
    saved = os.path.join(out, "saved_model")
    saved_model.write_saved_model(model, saved, warmup=False)
    keras_fn = tf.function(lambda x: model(x, training=False))
    serving = tf.saved_model.load(saved).signatures["serving_images"]
    runners = {
        "keras": lambda x: keras_fn(tf.constant(x)).numpy(),
        "savedmodel": lambda x: serving(images=tf.constant(x))["logits"].numpy(),
    }
    for mode in lite.QUANTIZE_MODES:
        runners[f"tflite_{mode}"] = Predictor(tflite(saved, mode, mode)).logits
    # The plain classifier: what int8 gains on this CPU without the heads.
    plain = os.path.join(out, "saved_model_baseline")
    saved_model.write_saved_model(
        build(num_labels, "baseline", args, graph), plain, warmup=False
    )
    for mode in ("float32", "int8"):
        path = tflite(plain, f"baseline_{mode}", mode)
        runners[f"baseline_tflite_{mode}"] = Predictor(path).logits
    runs = 10 if args.quick else 20
    latency = {name: [] for name in runners}
    throughput = {name: [] for name in runners}
    for fn in runners.values():
        fn(one)
        fn(many[:2])
    for run in range(runs):
        for name, fn in runners.items():
            latency[name].append(1000 * timed(lambda f=fn: f(one), 1))
            if run < max(2, args.repeats):
                throughput[name].append(32 / timed(lambda f=fn: f(many), 1))
    table = {
        name: {
            "latency_ms_batch1": round(statistics.median(latency[name]), 2),
            "images_per_second_batch32": round(statistics.median(throughput[name]), 1),
        }
        for name in runners
    }

    def int8_ratio(prefix):
        return (
            table[f"{prefix}tflite_int8"]["latency_ms_batch1"]
            / table[f"{prefix}tflite_float32"]["latency_ms_batch1"]
        )

    ratio = int8_ratio("")
    emit(
        with_goal(
            {
                "name": "exported_inference",
                "num_labels": num_labels,
                "backbone": args.backbone,
                "image_size": size,
                "formats": table,
                "int8_to_float32_latency": round(ratio, 3),
                # The same ratio for the plain classifier (no label heads):
                # a bound on what quantizing the backbone gains on this CPU.
                "baseline_int8_to_float32_latency": round(int8_ratio("baseline_"), 3),
            },
            "TFLite int8 / float32 latency at batch 1 <= 0.6",
            ratio <= 0.6,
        )
    )


# === Main ===


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset, < 10 min")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--labels", default=None, help="D values for item 1")
    parser.add_argument("--backbone", default="mobilenetv3small")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--node-dim", type=int, help="label node width K (eq. 3); kmlc's default"
    )
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--data", help="Corel-5k folder (item 5)")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    default_labels = "80,1000" if args.quick else "20,80,260,1000,5000"
    args.labels = [int(d) for d in (args.labels or default_labels).split(",")]
    args.repeats = args.repeats or (7 if args.quick else 11)
    args.steps = args.steps or 1
    args.only = args.only.split(",")
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    emit(
        {
            "name": "machine",
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "quick": args.quick,
        }
    )
    start = time.perf_counter()
    consumption = None
    if "train" in args.only:
        consumption = train_and_inference(args)
    if "layers" in args.only:
        head_layers(args)
    if "graph" in args.only:
        if args.in_process:
            label_graph(args)
        else:
            label_graph_in_subprocess(args)
    if "pipeline" in args.only:
        input_pipeline(args, consumption)
    if "export" in args.only:
        exported_inference(args)
    emit(
        {
            "name": "total",
            "seconds": round(time.perf_counter() - start, 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    )


if __name__ == "__main__":
    main()
