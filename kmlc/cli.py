"""The `kmlc` command line: one sub-command a module in `kmlc.commands`.

Each command module defines `register(subparsers)`, which adds its parser
and sets `func` to a function taking the parsed arguments and returning an
exit code. Modules import TensorFlow inside their functions, so
`kmlc --help` is quick.
"""

import argparse
import importlib
import logging
import os
import sys

from kmlc.version import __version__

COMMANDS = (
    "train",
    "evaluate",
    "predict",
    "export",
    "serve",
    "cluster",
    "data",
    "demo",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="kmlc",
        description="Multi-label image recognition with a label graph.",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log debug messages, and TensorFlow's start-up messages",
    )
    parser.add_argument("--version", action="version", version=f"kmlc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"kmlc.commands.{name}").register(subparsers)
    return parser


# Flags that name an existing input, checked before any command loads
# TensorFlow, so that a typo is answered at once.
INPUT_FLAGS = (
    "config",
    "model",
    "manifest",
    "csv",
    "vocabulary",
    "images",
    "tfrecords",
)


def _missing_input(args):
    """`(flag, path)` of the first input flag naming no file, or None."""
    for flag in INPUT_FLAGS:
        value = getattr(args, flag, None)
        if isinstance(value, str) and value and not os.path.exists(value):
            return f"--{flag}", value
    return None


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    missing = _missing_input(args)
    if missing:
        print(
            f"kmlc {args.command}: error: {missing[0]}: no such file or "
            f"directory: {missing[1]}",
            file=sys.stderr,
        )
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError, ImportError) as error:
        # Library errors say what is wrong; no traceback for bad input
        # (--verbose shows it).
        if args.verbose:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"kmlc {args.command}: error: {message}", file=sys.stderr)
        return 2


def run():
    """The `kmlc` console script: `main` with TensorFlow's start-up noise
    filtered from standard error (kept with `--verbose`)."""
    argv = sys.argv[1:]
    if not {"-v", "--verbose"} & set(argv):
        from kmlc.startup_noise import filter_stderr

        filter_stderr()
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
