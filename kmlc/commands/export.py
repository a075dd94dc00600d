"""`kmlc export`: a trained model as a SavedModel, a TFLite file or ONNX.

    kmlc export --model m.keras --out models --name corel5k --models-config
    kmlc export --model m.keras --format tflite --quantize int8 \\
        --manifest train.json --images images/ --out m.tflite
    kmlc export --model m.keras --format onnx --out m.onnx

Prints the version directory (SavedModel) or the file written, and only
that, on stdout.
"""

from kmlc.commands.data_source import add_source_arguments
from kmlc.commands.data_source import has_source
from kmlc.commands.data_source import read_source
from kmlc.export.lite_quantize import QUANTIZE_MODES
from kmlc.export.lite_quantize import modes_where

FORMATS = ("savedmodel", "tflite", "onnx")


def register(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="export a trained model for TF Serving, LiteRT or ONNX",
        description=(
            "Export a .keras model: --format savedmodel (default) writes TF "
            "Serving's OUT/NAME/VERSION/ with a new version each time; "
            "--format tflite writes a LiteRT model (--quantize "
            f"{', '.join(QUANTIZE_MODES)}; int8 calibrates on --manifest/--csv "
            "images); "
            "--format onnx writes an ONNX model."
        ),
    )
    parser.add_argument("--model", required=True, help="the .keras model file")
    parser.add_argument(
        "--format", choices=FORMATS, default="savedmodel", help="(default: savedmodel)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="savedmodel: the base directory; tflite, onnx: the file to write",
    )
    parser.add_argument(
        "--name", help="savedmodel: the model name (default: the model file's stem)"
    )
    parser.add_argument(
        "--version", type=int, help="savedmodel: the version (default: next free)"
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        help="savedmodel: serving_default refuses an image whose header "
        "declares more pixels, before decoding it (0: no limit; default 40 M)",
    )
    parser.add_argument(
        "--models-config",
        action="store_true",
        help="savedmodel: also write OUT/NAME/models.config, TF Serving's "
        "--model_config_file serving the latest version",
    )
    parser.add_argument(
        "--server-base-path",
        help="savedmodel, with --models-config: OUT as the server sees it, "
        "e.g. /models in a container (default: OUT's absolute path)",
    )
    lite = parser.add_argument_group("tflite")
    lite.add_argument(
        "--quantize",
        choices=tuple(QUANTIZE_MODES),
        default="float32",
        help="; ".join(
            f"{name}: {mode.description}" for name, mode in QUANTIZE_MODES.items()
        )
        + " (default: float32)",
    )
    lite.add_argument(
        "--num-calibration-samples",
        type=int,
        default=200,
        help="images used for int8 calibration (default: 200)",
    )
    lite.add_argument(
        "--int8-io", action="store_true", help="int8 input and outputs (with int8)"
    )
    lite.add_argument(
        "--int8-heads",
        action="store_true",
        help="with int8: quantize the label heads too (smaller and faster, "
        "but ranks labels worse; default: heads compute in float)",
    )
    lite.add_argument(
        "--float-weights",
        action="store_true",
        help="with int8 or dynamic: keep the float ops' weights in float32 "
        "(default: stored as int8, dequantized at load)",
    )
    parser.add_argument(
        "--opset", type=int, default=17, help="onnx: the ONNX opset (default: 17)"
    )
    # int8 calibration images: the same flags as `kmlc data check`.
    add_source_arguments(parser, required=False)
    parser.set_defaults(func=run)


def _calibration_data(args, image_size):
    from kmlc.export.lite import calibration_dataset

    if not has_source(args):
        return None
    return calibration_dataset(read_source(args), image_size)


def _needs(modes):
    return f"--quantize {' or '.join(modes)}"


def _check_flags(args):
    if args.format != "tflite":
        given = [
            flag
            for flag, value in (
                ("--quantize", args.quantize != "float32"),
                ("calibration images", has_source(args)),
                ("--int8-io", args.int8_io),
                ("--int8-heads", args.int8_heads),
                ("--float-weights", args.float_weights),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to --format tflite. "
                f"Received: --format {args.format}"
            )
    elif has_source(args) and not QUANTIZE_MODES[args.quantize].full_integer:
        raise ValueError(
            "Calibration images (--manifest, --csv, ...) are used by "
            f"{_needs(modes_where('full_integer'))} only. "
            f"Received: --quantize {args.quantize}"
        )
    elif args.int8_heads and not QUANTIZE_MODES[args.quantize].full_integer:
        raise ValueError(
            f"--int8-heads needs {_needs(modes_where('full_integer'))}. "
            f"Received: --quantize {args.quantize}"
        )
    elif args.float_weights and not QUANTIZE_MODES[args.quantize].int8_weights:
        raise ValueError(
            f"--float-weights applies to {_needs(modes_where('int8_weights'))} "
            "(the others store no int8 weights). "
            f"Received: --quantize {args.quantize}"
        )
    savedmodel_only = [
        flag
        for flag, value in (
            ("--name", args.name),
            ("--version", args.version is not None),
            ("--models-config", args.models_config),
            ("--max-image-pixels", args.max_image_pixels is not None),
        )
        if value
    ]
    if args.format != "savedmodel" and savedmodel_only:
        raise ValueError(
            f"{', '.join(savedmodel_only)} only apply to --format savedmodel. "
            f"Received: --format {args.format}"
        )
    if args.server_base_path and not args.models_config:
        raise ValueError(
            "--server-base-path is the base path written in models.config: it "
            "needs --models-config. Received: --server-base-path "
            f"{args.server_base_path}"
        )


def _max_image_pixels(args):
    from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS

    if args.max_image_pixels is None:
        return DEFAULT_MAX_IMAGE_PIXELS
    return args.max_image_pixels or None


def run(args):
    _check_flags(args)
    from kmlc.saving import load_model

    model = load_model(args.model, compile=False)
    if args.format == "savedmodel":
        from kmlc.export import saved_model

        name = args.name or saved_model.name_from_path(args.model)
        written = saved_model.export_saved_model(
            model,
            args.out,
            name,
            version=args.version,
            max_image_pixels=_max_image_pixels(args),
        )
        if args.models_config:
            from kmlc.export import serving_config

            serving_config.write_models_config(args.out, name, args.server_base_path)
    elif args.format == "tflite":
        from kmlc.export import model_image_size
        from kmlc.export.lite import convert

        written = convert(
            model,
            args.out,
            quantize=args.quantize,
            representative_data=_calibration_data(args, model_image_size(model)),
            num_calibration_samples=args.num_calibration_samples,
            int8_io=args.int8_io,
            float_heads=not args.int8_heads,
            int8_weights=not args.float_weights,
        )
    else:
        from kmlc.export.onnx import export_onnx

        written = export_onnx(model, args.out, opset=args.opset)
    print(written)
    return 0
