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


def has_source(args):
    """Whether any data-source flag was given."""
    return any(
        getattr(args, name, None) for name in ("manifest", "csv", "tfrecords", "tfds")
    )


def read_source(args, unknown_labels="raise"):
    """The `ImageSet` the data-source flags name."""
    from kmlc import data

    if args.manifest:
        if not args.images:
            raise ValueError("--manifest needs --images. Received: --images=None")
        return data.read_manifest(
            args.manifest,
            args.images,
            args.vocabulary,
            unknown_labels=unknown_labels,
            allow_outside_images_dir=args.allow_outside,
        )
    if args.csv:
        return data.read_csv(
            args.csv,
            images_dir=args.images,
            vocabulary=args.vocabulary,
            separator=args.separator,
            unknown_labels=unknown_labels,
            allow_outside_images_dir=args.allow_outside,
        )
    if args.tfrecords:
        return data.read_tfrecords(args.tfrecords)
    return data.read_tfds(args.tfds, args.split, data_dir=args.data_dir)
