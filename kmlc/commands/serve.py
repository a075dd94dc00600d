"""`kmlc serve`: a development server speaking TF Serving's gRPC and REST APIs.

    kmlc serve --model-base export/corel5k --name corel5k \\
        --grpc-port 8500 --rest-port 8501

serves the highest version under `export/corel5k/` (as written by
`kmlc export`), picks up newer versions as they appear, and stops on
Ctrl-C or SIGTERM. In production, run TF Serving on the same directory.
"""

import signal
import sys
import threading

MIB = 1024 * 1024


def register(subparsers):
    parser = subparsers.add_parser(
        "serve",
        help="serve an exported model over TF Serving's gRPC and REST APIs (dev)",
        description=(
            "A development server for a model exported with `kmlc export`: "
            "TF Serving's PredictionService (Predict, GetModelMetadata), "
            "ModelService (GetModelStatus) and REST API "
            "(/v1/models/NAME[:predict|/metadata]). It serves the highest "
            "version under the model base path and swaps in newer ones. "
            "Use TF Serving in production."
        ),
    )
    parser.add_argument(
        "--model-base",
        required=True,
        help="the model base path BASE/NAME holding integer version directories",
    )
    parser.add_argument(
        "--name", help="the model name clients ask for (default: the base's name)"
    )
    parser.add_argument(
        "--grpc-port", type=int, default=8500, help="0 picks a free port (8500)"
    )
    parser.add_argument(
        "--rest-port", type=int, default=8501, help="0 picks a free port (8501)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; 0.0.0.0 for every interface (127.0.0.1)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=64 * MIB,
        help="larger requests answer RESOURCE_EXHAUSTED / HTTP 413 (64 MiB)",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        help="predict requests with more instances answer INVALID_ARGUMENT (64)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        help=(
            "encoded images whose header declares more pixels (width x height) "
            "are refused before decoding (40000000)"
        ),
    )
    parser.add_argument(
        "--max-request-pixels",
        type=int,
        help="the most pixels of all the images of one request (50000000)",
    )
    parser.add_argument(
        "--rest-read-timeout",
        type=float,
        default=30.0,
        help=(
            "seconds to wait for a REST client's next bytes before answering "
            "408 and closing the connection (30)"
        ),
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between scans for new versions (1.0)",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="do not replay assets.extra/tf_serving_warmup_requests",
    )
    parser.add_argument(
        "--workers", type=int, default=8, help="threads answering gRPC calls (8)"
    )
    parser.set_defaults(func=run)


def request_limits(args):
    """The `RequestLimits` the flags ask for (the defaults where not given)."""
    from kmlc.serving.server.limits import RequestLimits

    given = {
        name: getattr(args, name)
        for name in ("max_batch_size", "max_image_pixels", "max_request_pixels")
        if getattr(args, name) is not None
    }
    return RequestLimits(**given)


def run(args):
    from kmlc.serving import DevServer

    server = DevServer(
        args.model_base,
        name=args.name,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        host=args.host,
        max_request_bytes=args.max_request_bytes,
        poll_interval=args.poll_interval,
        warm_up=not args.no_warmup,
        max_workers=args.workers,
        limits=request_limits(args),
        rest_read_timeout=args.rest_read_timeout,
    )
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            server.start()
        except FileNotFoundError:
            raise  # a wrong path: the CLI reports it with exit code 2
        except OSError as error:  # a port in use
            print(f"kmlc serve: error: {error}", file=sys.stderr)
            return 1
        print(
            f"kmlc serve: model {server.name!r} version {server.version} from "
            f"{server.model_base}\n"
            f"  gRPC {server.grpc_target}\n"
            f"  REST {server.rest_url}/v1/models/{server.name}\n"
            "Ctrl-C or SIGTERM stops it.",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
        print("kmlc serve: stopping", flush=True)
        server.stop()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
