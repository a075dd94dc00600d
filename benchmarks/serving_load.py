"""Load test of the serving path: N concurrent gRPC clients x M requests.

By default it exports a model with random weights (Corel-5k's 260 labels
when the data is there), starts `kmlc serve` in a subprocess on free ports
(so the clients do not share the server's interpreter lock) and sends
Corel-5k JPEGs (or synthetic JPEGs) from 8 client threads, 50 requests each.
It prints one JSON object: latency percentiles, throughput and errors.

    python benchmarks/serving_load.py                      # the defaults
    python benchmarks/serving_load.py --clients 16 --batch 4
    python benchmarks/serving_load.py --target host:8500 --model-name corel5k

`run_load` is importable (the serving tests run a small load with it).
"""

import argparse
import io
import json
import os
import pathlib
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_load(target, model_name, images, clients=8, requests=50, batch=1, **kwargs):
    """Sends `clients x requests` Predict calls from one thread per client.

    Args:
        target: str. `host:port` of the gRPC endpoint.
        model_name: str.
        images: list of encoded images; each request takes the next `batch`.
        clients: int. Concurrent clients, each with its own channel.
        requests: int. Requests per client.
        batch: int. Images per request.
        **kwargs: more `kmlc.serving.Client` arguments.

    Returns:
        A dict of the measurements (latencies in milliseconds).
    """
    from kmlc.serving import Client

    latencies = [[] for _ in range(clients)]
    errors = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(index):
        with Client(target, model_name, **kwargs) as client:
            client.predict(images[:batch])  # connect before the clock starts
            barrier.wait()
            for number in range(requests):
                start = (index * requests + number) * batch
                chosen = [images[(start + i) % len(images)] for i in range(batch)]
                began = time.perf_counter()
                try:
                    answer = client.predict(chosen, top_k=5)
                    if len(answer) != batch:
                        raise ValueError(f"{len(answer)} answers for {batch} images")
                except Exception as error:  # count every failure, keep going
                    errors[index].append(f"{type(error).__name__}: {error}")
                latencies[index].append(time.perf_counter() - began)

    threads = [
        threading.Thread(target=work, args=(index,), daemon=True)
        for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    flat = np.array([value for values in latencies for value in values]) * 1000.0
    all_errors = [error for values in errors for error in values]
    total = clients * requests
    return {
        "clients": clients,
        "requests_per_client": requests,
        "batch_size": batch,
        "requests": total,
        "completed": int(flat.size),
        "errors": len(all_errors),
        "first_errors": all_errors[:3],
        "wall_s": round(wall, 3),
        "throughput_rps": round(total / wall, 2),
        "images_per_s": round(total * batch / wall, 2),
        "latency_ms": {
            "p50": round(float(np.percentile(flat, 50)), 2),
            "p90": round(float(np.percentile(flat, 90)), 2),
            "p99": round(float(np.percentile(flat, 99)), 2),
            "mean": round(float(flat.mean()), 2),
            "max": round(float(flat.max()), 2),
        },
    }


def corel5k_dir():
    path = pathlib.Path(
        os.environ.get("KMLC_COREL5K", REPO_ROOT.parent / "shared/data/corel5k")
    )
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path if (path / "images").is_dir() else None


def load_images(count):
    """Encoded JPEGs: Corel-5k's first `count`, or synthetic 192x128 ones."""
    corel = corel5k_dir()
    if corel is not None:
        files = sorted((corel / "images").glob("*.jp*g"))[:count]
        if files:
            return [file.read_bytes() for file in files], f"corel5k ({len(files)})"
    from PIL import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        buffer = io.BytesIO()
        pixels = rng.integers(0, 256, (128, 192, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images, f"synthetic 192x128 JPEG ({count})"


def export_model(args, base):
    """Exports a random-weight model; returns its config for the report."""
    import kmlc
    from kmlc.export import export_saved_model

    corel = corel5k_dir()
    names = None
    y = None
    if corel is not None and (corel / "vocabulary.txt").is_file():
        text = (corel / "vocabulary.txt").read_text("utf-8")
        names = [line.strip() for line in text.splitlines() if line.strip()]
        names = names[: args.num_labels]
    num_labels = len(names) if names else args.num_labels
    if args.heads != "baseline":
        rng = np.random.default_rng(0)
        y = (rng.random((500, num_labels)) < 0.02).astype("float32")
    graph = kmlc.LabelGraph.from_labels(y) if y is not None else None
    model = kmlc.build_model(
        num_labels,
        graph,
        backbone=args.backbone,
        image_size=args.image_size,
        heads=args.heads,
        label_names=names,
    )
    export_saved_model(model, base, args.model_name)
    return {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "heads": args.heads,
        "num_labels": num_labels,
        "weights": "random",
    }


def start_server(model_base, name):
    """`kmlc serve` in a subprocess on free ports; returns (process, target)."""
    command = [
        sys.executable,
        "-m",
        "kmlc.cli",
        "serve",
        "--model-base",
        str(model_base),
        "--name",
        name,
        "--grpc-port",
        "0",
        "--rest-port",
        "0",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    for line in process.stdout:
        if line.strip().startswith("gRPC "):
            return process, line.split()[1]
    raise RuntimeError(f"kmlc serve exited with code {process.wait()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--target", help="an already running server, host:port")
    parser.add_argument("--model-name", default="kmlc_bench")
    parser.add_argument("--backbone", default="mobilenetv3small")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--heads", default="full", choices=["baseline", "gcn", "full"])
    parser.add_argument("--num-labels", type=int, default=260)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    images, source = load_images(64)
    report = {"benchmark": "serving_load", "images": source}
    process = None
    with tempfile.TemporaryDirectory(prefix="kmlc-bench-") as base:
        if args.target:
            target = args.target
            report["server"] = f"existing server at {target}"
        else:
            report["model"] = export_model(args, base)
            process, target = start_server(
                os.path.join(base, args.model_name), args.model_name
            )
            report["server"] = "kmlc serve (DevServer, subprocess)"
        try:
            report.update(
                run_load(
                    target,
                    args.model_name,
                    images,
                    clients=args.clients,
                    requests=args.requests,
                    batch=args.batch,
                    timeout=60,
                )
            )
        finally:
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
    report["machine"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    )
    print(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
