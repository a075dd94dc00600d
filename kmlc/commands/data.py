"""`kmlc data check` and `kmlc data pack`: scan a data set, or shard it.

    kmlc data check --manifest train.json --images images/ --vocabulary vocab.txt
    kmlc data check --csv labels.csv [--images DIR] [--separator ";"]
    kmlc data check --tfrecords packed/
    kmlc data pack --manifest train.json --images images/ --out packed/

`check` prints one line per problem, naming the file, then a summary line;
it exits 0 when the data is clean and 1 when it found problems.
"""

import collections
import sys

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
            "Scan a data set and print one line per problem, naming the file; "
            "exit 0 on clean data, 1 when problems were found."
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
        "--ignore",
        action="append",
        default=[],
        metavar="KIND",
        help=(
            "do not report this kind of problem (repeatable): missing, "
            "unreadable, too-small, unknown-label, no-labels, duplicate-key, "
            "duplicate-content"
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

    unknown = sorted(set(args.ignore) - set(data.problem.KINDS))
    if unknown:
        raise ValueError(
            f"Unknown problem kind for --ignore. Expected some of "
            f"{', '.join(data.problem.KINDS)}. Received: {', '.join(unknown)}"
        )
    try:
        image_set = read_source(args, unknown_labels="report")
    except ImportError as error:
        print(f"kmlc data check: error: {error}", file=sys.stderr)
        return 2
    problems = data.check(image_set, min_side=args.min_side, progress=True)
    problems = [problem for problem in problems if problem.kind not in args.ignore]
    for problem in problems:
        print(problem)
    kinds = collections.Counter(problem.kind for problem in problems)
    if not problems:
        print(f"checked {len(image_set)} images: no problems")
        return 0
    details = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    noun = "problem" if len(problems) == 1 else "problems"
    print(f"checked {len(image_set)} images: {len(problems)} {noun} ({details})")
    return 1


def run_pack(args):
    from kmlc import data

    try:
        image_set = read_source(args, unknown_labels="raise")
    except ImportError as error:
        print(f"kmlc data pack: error: {error}", file=sys.stderr)
        return 2
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
