"""`kmlc train --config FILE.yaml [--set key=value ...]`: a training run."""

import json

from kmlc.training.strategies import STRATEGIES


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a model from a YAML config",
        description=(
            "Train a model as a YAML config says (kmlc.config.TrainConfig). "
            "A killed run started again with the same command resumes from "
            "its backup."
        ),
    )
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.backbone=resnet50 (repeatable)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES.names(),
        help="tf.distribute strategy (kmlc.training.strategies; overrides the "
        "config's)",
    )
    parser.add_argument(
        "--output-dir", help="output directory (overrides the config's)"
    )
    parser.set_defaults(func=run)


def run(args):
    from kmlc.config import load_config
    from kmlc.training import train

    overrides = list(args.overrides)
    if args.strategy:
        overrides.append(f"strategy={args.strategy}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    config = load_config(args.config, overrides)
    result = train(config)
    if result.model_path:
        print(json.dumps(result.metrics, indent=2))
        print(f"model: {result.model_path}")
        print(f"outputs: {result.output_dir}")
    return 0
