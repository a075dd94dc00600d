"""The data formats, one registry: a format's name -> how to read it.

Training (`read_image_set(config.data)`) and the command line's data
flags (`kmlc data`, `evaluate`, `export`, `cluster`) read their data here,
so a format is added in one place. Fields use `kmlc.config.DataConfig`'s
names (`manifest`, `images`, `vocabulary`, `csv`, `separator`,
`tfds_name`, `tfds_split`, `tfds_validation_split`, `tfds_data_dir`,
`tfrecords`, `allow_outside_images_dir`).

    image_set = read_source("csv", {"csv": "labels.csv", "images": "img/"})
"""

import dataclasses

import numpy as np

from kmlc.data.csv_reader import read_csv
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.split import split
from kmlc.data.tfds_reader import read_tfds
from kmlc.data.tfrecords import read_tfrecords
from kmlc.registry import Registry


@dataclasses.dataclass(frozen=True)
class Source:
    """How one data format is read.

    Attributes:
        name: str. The format's name (`data.format`).
        read: `(fields, unknown_labels) -> ImageSet`.
        required: the fields reading needs.
        training_required: further fields a training config needs.
        paths: the fields that are file or directory paths.
        inputs: the paths that must exist before reading (a TFDS data
            directory need not: TFDS downloads into it).
        read_validation: `fields -> ImageSet or None`: a separate validation
            split, when the format has one and the fields name it.
    """

    name: str
    read: object
    required: tuple
    training_required: tuple = ()
    paths: tuple = ()
    inputs: tuple = ()
    read_validation: object = None


SOURCES = Registry("data format")


def register(
    name, required, training_required=(), paths=(), inputs=None, read_validation=None
):
    """A decorator registering a `read(fields, unknown_labels)` function.

    `inputs` defaults to `paths`; the other arguments are `Source`'s.
    """

    def decorator(read):
        source = Source(
            name,
            read,
            required,
            training_required,
            paths,
            paths if inputs is None else inputs,
            read_validation,
        )
        SOURCES.register(name, source)
        return read

    return decorator


# The vocabulary file fixes a training run's label order (the model's
# outputs), so a training config names it; reading alone can do without.
@register(
    "manifest",
    required=("manifest", "images"),
    training_required=("vocabulary",),
    paths=("manifest", "images", "vocabulary"),
)
def _manifest(fields, unknown_labels="raise"):
    return read_manifest(
        fields["manifest"],
        fields["images"],
        fields.get("vocabulary"),
        unknown_labels=unknown_labels,
        allow_outside_images_dir=bool(fields.get("allow_outside_images_dir")),
    )


@register("csv", required=("csv",), paths=("csv", "images", "vocabulary"))
def _csv(fields, unknown_labels="raise"):
    return read_csv(
        fields["csv"],
        images_dir=fields.get("images"),
        vocabulary=fields.get("vocabulary"),
        separator=fields.get("separator") or " ",
        unknown_labels=unknown_labels,
        allow_outside_images_dir=bool(fields.get("allow_outside_images_dir")),
    )


def _tfds_validation(fields):
    if not fields.get("tfds_validation_split"):
        return None
    return read_tfds(
        fields["tfds_name"],
        fields["tfds_validation_split"],
        fields.get("tfds_data_dir"),
    )


@register(
    "tfds",
    required=("tfds_name",),
    paths=("tfds_data_dir",),
    inputs=(),
    read_validation=_tfds_validation,
)
def _tfds(fields, unknown_labels="raise"):
    del unknown_labels  # TFDS builders carry their own label names
    return read_tfds(
        fields["tfds_name"],
        fields.get("tfds_split") or "train",
        fields.get("tfds_data_dir"),
    )


@register("tfrecords", required=("tfrecords",), paths=("tfrecords",))
def _tfrecords(fields, unknown_labels="raise"):
    del unknown_labels  # `kmlc data pack` wrote known labels only
    return read_tfrecords(fields["tfrecords"])


def path_fields():
    """Every field that some format reads as a path (sorted)."""
    return tuple(sorted({name for fmt in SOURCES for name in SOURCES.get(fmt).paths}))


def missing_fields(fmt, fields, training=False):
    """The required fields of `fmt` that `fields` leaves empty."""
    source = SOURCES.get(fmt, "data.format")
    required = source.required + (source.training_required if training else ())
    return [name for name in required if fields.get(name) in (None, "")]


def read_source(fmt, fields, unknown_labels="raise"):
    """The `ImageSet` of format `fmt` (`SOURCES`) that `fields` name."""
    return SOURCES.get(fmt, "data.format").read(
        _as_dict(fields), unknown_labels=unknown_labels
    )


def read_image_set(data_config):
    """The configured data as `(train, validation)` `ImageSet`s.

    A format's own validation split (TFDS `tfds_validation_split`) is used
    when the config names one; otherwise the data is split by
    `data.validation_fraction` (`kmlc.data.split`).

    Args:
        data_config: `kmlc.config.DataConfig` (or a dict of its fields).
    """
    fields = _as_dict(data_config)
    source = SOURCES.get(fields["format"], "data.format")
    image_set = source.read(fields)
    validation = source.read_validation(fields) if source.read_validation else None
    max_images = fields.get("max_images")
    if max_images is not None:
        image_set = image_set.subset(np.arange(min(len(image_set), max_images)))
    if validation is None:
        train, validation = split(
            image_set,
            fields.get("validation_fraction", 0.1),
            seed=fields.get("split_seed", 0),
        )
    else:
        train = image_set
    if len(train) == 0 or len(validation) == 0:
        raise ValueError(
            f"The split left {len(train)} training and {len(validation)} "
            "validation images: use more data or another "
            "data.validation_fraction."
        )
    return train, validation


def _as_dict(fields):
    if dataclasses.is_dataclass(fields):
        return dataclasses.asdict(fields)
    return dict(fields)
