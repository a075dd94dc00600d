"""`kmlc data check` and `kmlc data pack`: scan a data set, or shard it.

    kmlc data check --manifest train.json --images images/ --vocabulary vocab.txt
    kmlc data check --csv labels.csv [--images DIR] [--separator ";"]
    kmlc data check --tfrecords packed/
    kmlc data pack --manifest train.json --images images/ --out packed/

`check` prints one line per problem, naming the file, then a summary line.
Images without labels (legitimate negatives) and duplicate content are
warnings; it exits 0 when it found no errors (1 on warnings too with
`--strict`), 1 when it found errors, 2 when the input cannot be read.
"""

import collections

from kmlc.commands.data_source import add_source_arguments
from kmlc.commands.data_source import read_source


def register(subparsers):
    parser = subparsers.add_parser(
        "data", help="check a data set, or pack it into sharded TFRecords"
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    check_parser = actions.add_parser(
        "check",
        help="list missing, unreadable, unlabelled and duplicate images",
        description=(
            "Scan a data set and print one line per problem, naming the file. "
            "Images without labels and duplicate content are warnings. Exit "
            "0 when no errors were found (warnings allowed, unless --strict), "
            "1 when errors (missing, unreadable, too-small, too-large, "
            "unknown-label, duplicate-key, corrupt-shard) were found, 2 when "
            "the input cannot be read."
        ),
    )
    add_source_arguments(check_parser)
    check_parser.add_argument(
        "--min-side",
        type=int,
        default=8,
        help="images with a shorter side (px) are unusable (default: 8)",
    )
    check_parser.add_argument(
        "--max-pixels",
        type=int,
        help=(
            "images whose header declares more pixels (width x height) are "
            "too large, and never decoded (default: 40000000)"
        ),
    )
    check_parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings (no-labels, duplicate-content) too",
    )
    check_parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="KIND",
        help=(
            "do not report this kind of problem (repeatable): missing, "
            "unreadable, too-small, too-large, unknown-label, no-labels, "
            "duplicate-key, duplicate-content"
        ),
    )
    check_parser.set_defaults(func=run_check)

    pack_parser = actions.add_parser(
        "pack",
        help="write a data set as sharded TFRecords",
        description=(
            "Write images-NNNNN-of-NNNNN.tfrecord shards, vocabulary.txt and "
            "labels.npz (keys and labels, for counting the label graph "
            "without reading images)."
        ),
    )
    add_source_arguments(pack_parser)
    pack_parser.add_argument("--out", required=True, help="output directory")
    size = pack_parser.add_mutually_exclusive_group()
    size.add_argument(
        "--shard-size",
        type=int,
        default=1024,
        help="images per shard (default: 1024)",
    )
    size.add_argument("--num-shards", type=int, help="number of shards instead")
    pack_parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a packed data set already in --out",
    )
    pack_parser.set_defaults(func=run_pack)


def run_check(args):
    from kmlc import data
    from kmlc.data.data_check import WARNING_KINDS
    from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
    from kmlc.data.problem import KINDS

    unknown = sorted(set(args.ignore) - set(KINDS))
    if unknown:
        raise ValueError(
            f"Unknown problem kind for --ignore. Expected some of "
            f"{', '.join(KINDS)}. Received: {', '.join(unknown)}"
        )
    image_set = read_source(args, unknown_labels="report")
    problems = data.check(
        image_set,
        min_side=args.min_side,
        progress=True,
        max_pixels=args.max_pixels or DEFAULT_MAX_IMAGE_PIXELS,
    )
    problems = [problem for problem in problems if problem.kind not in args.ignore]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"checked {len(image_set)} images: no problems")
        return 0
    warnings = [p for p in problems if p.kind in WARNING_KINDS]
    errors = [p for p in problems if p.kind not in WARNING_KINDS]
    parts = [
        _count(found, noun)
        for found, noun in ((errors, "error"), (warnings, "warning"))
        if found
    ]
    print(f"checked {len(image_set)} images: {', '.join(parts)}")
    return 1 if errors or (warnings and args.strict) else 0


def _count(problems, noun):
    """`"3 errors (1 missing, 2 unreadable)"`."""
    kinds = collections.Counter(problem.kind for problem in problems)
    details = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    plural = "" if len(problems) == 1 else "s"
    return f"{len(problems)} {noun}{plural} ({details})"


def run_pack(args):
    from kmlc import data

    image_set = read_source(args, unknown_labels="raise")
    result = data.pack(
        image_set,
        args.out,
        num_shards=args.num_shards,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        progress=True,
    )
    for name, reason in result.skipped.items():
        print(f"{name}: not packed: {reason}")
    print(
        f"packed {result.num_images} of {len(image_set)} images into "
        f"{len(result.shards)} shards in {result.out_dir}"
    )
    return 0
