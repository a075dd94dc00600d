"""`kmlc evaluate --model M.keras --manifest ... --images ...`: the report."""

import json

from kmlc.commands.data_source import add_source_arguments


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on labelled images",
        description=(
            "Evaluate a model on a data set: mAP, CP, CR, CF1, OP, OR, OF1, N+ "
            "and per-label AP; CP ... N+ at --threshold and, for a model with "
            "per-label thresholds, at those too (model_thresholds). Writes "
            "metrics.json and per_label_ap.png when --out is given."
        ),
    )
    parser.add_argument("--model", required=True, help="a .keras model")
    add_source_arguments(parser)
    parser.add_argument(
        "--validation-fraction",
        type=float,
        help="evaluate only the validation part of the deterministic split "
        "(the same images training validated on)",
    )
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="one threshold for every label (default: 0.5)",
    )
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", help="directory for metrics.json and plots")
    parser.set_defaults(func=run)


def run(args):
    from kmlc import data
    from kmlc.commands.data_source import read_source
    from kmlc.evaluation import evaluate
    from kmlc.evaluation import summary
    from kmlc.evaluation import write_report
    from kmlc.saving import load_model

    model = load_model(args.model)
    image_set = read_source(args)
    if list(image_set.vocabulary) != list(model.label_names):
        raise ValueError(
            f"The data's {len(image_set.vocabulary)} labels differ from the "
            f"model's {len(model.label_names)} (or their order): evaluate with "
            "the vocabulary the model was trained on."
        )
    if args.validation_fraction:
        _, image_set = data.split(image_set, args.validation_fraction, args.split_seed)
    dataset = data.make_dataset(image_set, model.image_size, args.batch_size)
    report = evaluate(model, dataset, threshold=args.threshold, top_k=args.top_k)
    if args.out:
        path = write_report(report, model.label_names, args.out)
        print(f"wrote {path}")
    print(json.dumps(summary(report), indent=2))
    if dataset.skipped.names:
        print(f"skipped {len(dataset.skipped)} unreadable image(s)")
    return 0
