"""Counting the label graph of packed TFRecord shards; prints JSON.

    python benchmarks/graph_counting.py --repeats 3 [--images N]

Packs the Corel-5k training images (`kmlc.data.pack`, into a temporary
folder), then times `LabelGraph.from_dataset` over the shards' dataset,
unbatched and batched by 32, against `LabelGraph.from_labels` on the
same labels in memory (the sidecar), and checks all three count the same
graph. Reports the median seconds of `--repeats` runs and CPU seconds,
and the ratio to the in-memory count. The data folder comes from
`--data`, else `KMLC_COREL5K`, else `<repo>/../shared/data/corel5k`.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from input_pipeline import corel5k_dir  # noqa: E402


def timed(function, repeats):
    """`(result, median wall seconds, median CPU seconds)` of `repeats` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, statistics.median(walls), statistics.median(cpus)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the Corel-5k folder")
    parser.add_argument("--images", type=int, help="only the first N images")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from kmlc import data
    from kmlc.graph import LabelGraph

    folder = corel5k_dir(args.data)
    image_set = data.read_manifest(
        folder / "train.json", folder / "images", folder / "vocabulary.txt"
    )
    if args.images:
        image_set = image_set.subset(range(args.images))
    with tempfile.TemporaryDirectory() as temp:
        data.pack(image_set, os.path.join(temp, "shards"), shard_size=args.shard_size)
        packed = data.read_tfrecords(os.path.join(temp, "shards"))
        num_labels = len(image_set.vocabulary)
        ways = {
            "from_labels (in memory)": lambda: LabelGraph.from_labels(packed.labels),
            "from_dataset (shards)": lambda: LabelGraph.from_dataset(
                packed.dataset(), num_labels
            ),
            "from_dataset (shards, batch 32)": lambda: LabelGraph.from_dataset(
                packed.dataset().batch(32), num_labels
            ),
        }
        results, reference = {}, None
        for name, count in ways.items():
            graph, wall, cpu = timed(count, args.repeats)
            if reference is None:
                reference = graph
            assert np.array_equal(graph.pair_counts, reference.pair_counts), name
            results[name] = {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)}
    base = results["from_labels (in memory)"]["seconds"]
    for result in results.values():
        result["ratio_to_in_memory"] = round(result["seconds"] / max(base, 1e-9), 1)
    print(
        json.dumps(
            {
                "images": len(image_set),
                "labels": num_labels,
                "repeats": args.repeats,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
