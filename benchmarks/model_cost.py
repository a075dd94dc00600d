"""Parameter counts and CPU forward time of the presets, as JSON.

Builds the baseline, gcn and full models (ResNet-101 by default, 448 px,
80 labels, a random label graph) and times `model.predict_on_batch` on the
same batch, alternating the models each repetition so that machine noise
hits them alike. Reports medians and the ratios to the baseline.

    python benchmarks/model_cost.py --backbone resnet101 --image-size 448 \
        --num-labels 80 --batch-size 2 --repeats 5
"""

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import kmlc  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--num-labels", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--presets", default="baseline,gcn,full")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    labels = (rng.random((2000, args.num_labels)) < 0.05).astype("float32")
    graph = kmlc.LabelGraph.from_labels(labels)
    presets = args.presets.split(",")
    models = {
        preset: kmlc.build_model(
            args.num_labels,
            graph,
            backbone=args.backbone,
            image_size=args.image_size,
            heads=preset,
        )
        for preset in presets
    }
    size = args.image_size
    batch = rng.uniform(0, 255, (args.batch_size, size, size, 3)).astype("float32")
    for model in models.values():  # warm-up: tracing and first allocations
        model.predict_on_batch(batch)
    times = {preset: [] for preset in presets}
    for _ in range(args.repeats):
        for preset, model in models.items():
            start = time.perf_counter()
            model.predict_on_batch(batch)
            times[preset].append(time.perf_counter() - start)
    medians = {preset: statistics.median(t) for preset, t in times.items()}
    base = presets[0]
    result = {
        "backbone": args.backbone,
        "image_size": size,
        "num_labels": args.num_labels,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "params": {p: int(m.count_params()) for p, m in models.items()},
        "head_params": {
            p: int(m.count_params() - m.backbone.count_params())
            for p, m in models.items()
        },
        "forward_seconds_median": medians,
        "forward_seconds_all": times,
        f"forward_ratio_to_{base}": {p: medians[p] / medians[base] for p in presets},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
