"""Peak memory and speed of the streaming clustering path, by collection size.

For each size N (default 10^4, 10^5, 10^6) a fresh process writes N
synthetic embeddings (`--dims` wide, drawn around `--clusters` centres) to a
`.npy` file a chunk at a time, clusters them with streaming mini-batch
k-means (`kmlc.clustering.algorithms.streaming_kmeans`: `partial_fit` over
the chunks, then a pass writing each row's cluster and distance), and finds
each cluster's central rows and outliers (`naming.extremes`). It prints one
JSON object: per size, the seconds and rows/s of each step and the peak
resident memory of the process (`ru_maxrss`), before and after the work.

    python benchmarks/cluster_scale.py [--sizes 10000 100000 1000000]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(size, dims, clusters, chunk_rows, seed):
    """One size, in this process. Returns a dict."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from kmlc.clustering import algorithms
    from kmlc.clustering import naming
    from kmlc.clustering import store

    after_imports = peak_rss_mb()
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, dims)).astype(np.float32)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "embeddings.npy")
        truth = np.empty(0, np.int64)
        start = time.perf_counter()
        with store.RowWriter(path, size, dims) as writer:
            for first in range(0, size, chunk_rows):
                count = min(chunk_rows, size - first)
                which = rng.integers(0, clusters, count)
                if first < 20000:
                    truth = np.concatenate([truth, which])
                noise = rng.normal(0, 0.25, (count, dims)).astype(np.float32)
                writer.write(centres[which] + noise)
        write_s = time.perf_counter() - start
        after_write = peak_rss_mb()
        partition = algorithms.streaming_kmeans(
            path, clusters, directory, seed=seed, chunk_rows=chunk_rows
        )
        start = time.perf_counter()
        naming.extremes(partition.assignments, partition.distances, clusters, 12)
        extremes_s = time.perf_counter() - start
        first_rows = store.read_rows(partition.assignments, 0, len(truth)).reshape(-1)
        return {
            "rows": size,
            "dims": dims,
            "clusters": clusters,
            "file_mb": round(os.path.getsize(path) / 2**20, 1),
            "write_s": round(write_s, 2),
            "cluster_s": round(partition.seconds, 2),
            "cluster_rows_per_s": round(size / partition.seconds),
            "extremes_s": round(extremes_s, 2),
            "ari_first_rows": round(adjusted_rand_score(truth, first_rows), 4),
            "peak_rss_mb_after_imports": round(after_imports, 1),
            "peak_rss_mb_after_write": round(after_write, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = measure(args.one, args.dims, args.clusters, args.chunk_rows, args.seed)
        print(json.dumps(result))
        return
    results = []
    for size in args.sizes:  # a fresh process each, so peaks do not carry over
        command = [
            sys.executable,
            __file__,
            "--one",
            str(size),
            "--dims",
            str(args.dims),
            "--clusters",
            str(args.clusters),
            "--chunk-rows",
            str(args.chunk_rows),
            "--seed",
            str(args.seed),
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True)
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    print(json.dumps({"streaming_kmeans": results}, indent=2))


if __name__ == "__main__":
    main()
