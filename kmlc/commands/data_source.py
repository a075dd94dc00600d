"""The data-source flags shared by `kmlc data`, `evaluate` and `export`.

--manifest FILE.json --images DIR [--vocabulary FILE] [--allow-outside]
--csv FILE [--images DIR] [--vocabulary FILE] [--separator S] [--allow-outside]
--tfrecords DIR
--tfds NAME [--split SPLIT] [--data-dir DIR]
"""


def add_source_arguments(parser, required=True):
    """Adds the data-source flags to an argparse parser."""
    group = parser.add_argument_group("data source")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--manifest", help='JSON manifest {"samples": [{"image_name", ...}]}'
    )
    source.add_argument("--csv", help="CSV file of path,labels rows")
    source.add_argument("--tfrecords", help="directory written by `kmlc data pack`")
    source.add_argument(
        "--tfds", help="TFDS name, e.g. voc/2007 (needs kmlc[datasets])"
    )
    group.add_argument("--images", help="images directory (manifest, CSV)")
    group.add_argument("--vocabulary", help="vocabulary file, one label a line")
    group.add_argument(
        "--separator",
        default=" ",
        help="separator between labels in a CSV labels field (default: space)",
    )
    group.add_argument(
        "--allow-outside",
        action="store_true",
        help=(
            "accept manifest/CSV image names outside --images (absolute "
            "paths, '..', symbolic links leading out); refused by default"
        ),
    )
    group.add_argument("--split", default="train", help="TFDS split (default: train)")
    group.add_argument("--data-dir", help="TFDS data directory")


# Each format has a flag of its name (`--manifest FILE` reads a manifest).
_FORMAT_FLAGS = ("manifest", "csv", "tfrecords", "tfds")


def has_source(args):
    """Whether any data-source flag was given."""
    return any(getattr(args, flag, None) for flag in _FORMAT_FLAGS)


def read_source(args, unknown_labels="raise"):
    """The `ImageSet` the data-source flags name (`kmlc.data.sources`)."""
    from kmlc.data.sources import missing_fields
    from kmlc.data.sources import read_source as read

    fields = {
        "manifest": args.manifest,
        "csv": args.csv,
        "tfrecords": args.tfrecords,
        "tfds_name": args.tfds,
        "images": args.images,
        "vocabulary": args.vocabulary,
        "separator": args.separator,
        "tfds_split": args.split,
        "tfds_data_dir": args.data_dir,
        "allow_outside_images_dir": args.allow_outside,
    }
    fmt = next(flag for flag in _FORMAT_FLAGS if getattr(args, flag))
    missing = missing_fields(fmt, fields)
    if missing:  # only --images can be: each format's own flag was given
        flag = "--" + missing[0].replace("_", "-")
        raise ValueError(f"--{fmt} needs {flag}. Received: {flag}=None")
    return read(fmt, fields, unknown_labels=unknown_labels)
