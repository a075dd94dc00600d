"""Training-step throughput (images/s) of the presets; prints JSON.

    python benchmarks/training_step.py --backbone mobilenetv3small \
        --image-size 224 --batch-size 32 --steps 10 --repeats 3

Times `model.train_on_batch` on batches already in memory, so that the
input pipeline does not limit it: the rate at which training consumes
images, to hold against `benchmarks/input_pipeline.py`'s rate of producing
them. The presets are timed alternately in each repeat, so that machine
noise hits them alike; the ratios to the first preset are in the output.
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
    parser.add_argument("--backbone", default="mobilenetv3small")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-labels", type=int, default=260)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default="baseline,full")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    labels = (rng.random((2000, args.num_labels)) < 0.02).astype("float32")
    graph = kmlc.LabelGraph.from_labels(labels)
    size, batch = args.image_size, args.batch_size
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    targets = labels[:batch]
    models = {}
    for preset in args.presets.split(","):
        model = kmlc.build_model(
            args.num_labels,
            graph,
            backbone=args.backbone,
            image_size=size,
            heads=preset,
        )
        model.compile(optimizer="adamw", metrics=[])
        model.train_on_batch(images, targets)  # trace and build
        models[preset] = model
    rates = {preset: [] for preset in models}
    for _ in range(args.repeats):
        for preset, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(images, targets)
            rates[preset].append(args.steps * batch / (time.perf_counter() - start))
    medians = {preset: statistics.median(r) for preset, r in rates.items()}
    first = next(iter(medians))
    print(
        json.dumps(
            {
                "benchmark": "training_step",
                "backbone": args.backbone,
                "image_size": size,
                "batch_size": batch,
                "num_labels": args.num_labels,
                "steps": args.steps,
                "repeats": args.repeats,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "images_per_second_median": medians,
                "images_per_second_all": rates,
                f"ratio_to_{first}": {p: medians[p] / medians[first] for p in medians},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
