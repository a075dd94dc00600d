"""`kmlc predict --model M.keras IMAGE...`: labels with scores."""

import json
import sys


def register(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="predict the labels of images",
        description=(
            "Print each image's labels with their scores (sigmoid). An image "
            "that cannot be read is reported; the exit code is then 1."
        ),
    )
    parser.add_argument("--model", required=True, help="a .keras model")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument(
        "--threshold",
        type=float,
        help="report labels scoring at least this (default: the model's "
        "per-label thresholds, chosen on validation data when it was trained; "
        "0.5 for a model without)",
    )
    parser.add_argument("--top-k", type=int, help="at most this many labels an image")
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.set_defaults(func=run)


def run(args):
    from kmlc.prediction import predict_files
    from kmlc.saving import load_model

    model = load_model(args.model)
    predictions = predict_files(
        model,
        args.images,
        threshold=args.threshold,
        top_k=args.top_k,
        batch_size=args.batch_size,
    )
    failed = 0
    for prediction in predictions:
        if prediction.error:
            failed += 1
        if args.json:
            print(json.dumps(prediction.to_dict()))
        elif prediction.error:
            print(f"{prediction.image}: error: {prediction.error}", file=sys.stderr)
        else:
            labels = ", ".join(
                f"{label} {score:.3f}" for label, score in prediction.labels
            )
            print(f"{prediction.image}: {labels or '(no label over the threshold)'}")
    return 1 if failed else 0
