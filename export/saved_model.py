"""A trained model as a TF Serving SavedModel, with its `models.config`.

Public kmlc API only: load the model, export a new version, write TF
Serving's model config beside the versions. (`kmlc export --models-config`
does the same from the command line.)

    python export/saved_model.py --model runs/corel5k/best.keras \\
        --out models --name corel5k --server-base-path /models

writes `models/corel5k/<version>/` (a new version each run) and
`models/corel5k/models.config`; `export/serving/` runs TF Serving on it
(see export/README.md).
"""

import argparse

import kmlc
from kmlc.export import saved_model
from kmlc.export import serving_config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the .keras model file")
    parser.add_argument("--out", required=True, help="the export base directory")
    parser.add_argument("--name", help="model name (default: the model file's stem)")
    parser.add_argument("--version", type=int, help="default: the next free one")
    parser.add_argument(
        "--server-base-path",
        help="--out as TF Serving sees it, e.g. /models in a container "
        "(default: --out's absolute path)",
    )
    args = parser.parse_args(argv)

    model = kmlc.load_model(args.model, compile=False)
    name = args.name or saved_model.name_from_path(args.model)
    version_dir = saved_model.export_saved_model(
        model, args.out, name, version=args.version
    )
    config = serving_config.write_models_config(args.out, name, args.server_base_path)
    print(version_dir)
    print(config)


if __name__ == "__main__":
    main()
