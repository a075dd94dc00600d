"""`kmlc.data.sources`: one registry of data formats, read the same way by
training configs and the command line."""

import argparse

import numpy as np
import pytest

from kmlc.commands.data_source import add_source_arguments
from kmlc.commands.data_source import read_source as read_flags
from kmlc.config import DataConfig
from kmlc.data.sources import SOURCES
from kmlc.data.sources import missing_fields
from kmlc.data.sources import path_fields
from kmlc.data.sources import read_image_set
from kmlc.data.sources import read_source
from kmlc.data.split import validation_mask
from kmlc.data.tfrecords import pack


@pytest.fixture(scope="module")
def fields(written, tmp_path_factory):
    """The written data set's fields in every format but TFDS."""
    packed = tmp_path_factory.mktemp("sources-packed")
    manifest = {
        "manifest": str(written.manifest),
        "images": str(written.images),
        "vocabulary": str(written.vocabulary),
    }
    pack(read_source("manifest", manifest), packed, num_shards=2)
    return {
        "manifest": manifest,
        "csv": {
            "csv": str(written.csv),
            "images": str(written.images),
            "vocabulary": str(written.vocabulary),
        },
        "tfrecords": {"tfrecords": str(packed)},
    }


def test_the_registered_formats():
    assert SOURCES.names() == ("manifest", "csv", "tfds", "tfrecords")
    assert path_fields() == (
        "csv",
        "images",
        "manifest",
        "tfds_data_dir",
        "tfrecords",
        "vocabulary",
    )


@pytest.mark.parametrize("fmt", ["manifest", "csv", "tfrecords"])
def test_every_format_reads_the_written_labels(fields, written, fmt):
    image_set = read_source(fmt, fields[fmt])
    assert sorted(image_set.keys) == sorted(written.keys)
    for key, row in zip(image_set.keys, image_set.labels, strict=True):
        np.testing.assert_array_equal(row, written.multi_hot[key])


@pytest.mark.parametrize("fmt", ["manifest", "csv", "tfrecords"])
def test_the_command_line_flags_read_the_same_set(fields, fmt):
    parser = argparse.ArgumentParser()
    add_source_arguments(parser)
    files = ["--images", "{images}", "--vocabulary", "{vocabulary}"]
    flags = {
        "manifest": ["--manifest", "{manifest}", *files],
        "csv": ["--csv", "{csv}", *files],
        "tfrecords": ["--tfrecords", "{tfrecords}"],
    }[fmt]
    args = parser.parse_args([flag.format(**fields[fmt]) for flag in flags])
    from_flags = read_flags(args)
    from_fields = read_source(fmt, fields[fmt])
    assert list(from_flags.keys) == list(from_fields.keys)
    np.testing.assert_array_equal(from_flags.labels, from_fields.labels)


def test_a_training_config_reads_its_split(fields, written):
    config = DataConfig(
        format="csv", validation_fraction=0.4, split_seed=5, **fields["csv"]
    )
    train, validation = read_image_set(config)
    keys = read_source("csv", fields["csv"]).keys
    chosen = validation_mask(keys, 0.4, seed=5)
    assert list(validation.keys) == [k for k, c in zip(keys, chosen, strict=True) if c]
    assert list(train.keys) == [k for k, c in zip(keys, chosen, strict=True) if not c]
    # The first images, as many as make both splits non-empty.
    count = next(n for n in range(2, len(keys)) if 0 < chosen[:n].sum() < n)
    config.max_images = count
    train, validation = read_image_set(config)
    assert sorted([*train.keys, *validation.keys]) == sorted(keys[:count])


def test_a_format_needs_its_fields():
    assert missing_fields("manifest", {"manifest": "m.json"}) == ["images"]
    assert missing_fields("manifest", {"manifest": "m", "images": "i"}) == []
    assert missing_fields(
        "manifest", {"manifest": "m", "images": "i"}, training=True
    ) == ["vocabulary"]
    assert missing_fields("tfds", {"tfds_name": ""}) == ["tfds_name"]


def test_an_unknown_format_names_the_field_and_the_formats():
    with pytest.raises(ValueError) as info:
        read_source("xml", {})
    assert str(info.value) == (
        "data.format must be one of ('manifest', 'csv', 'tfds', 'tfrecords'). "
        "Received: data.format='xml'"
    )
