"""Fixtures for the data tests: a small data set in every format."""

import pytest

from tests.data.data_fixtures import BadDataSet
from tests.data.data_fixtures import WrittenDataSet


@pytest.fixture(scope="session")
def written(tmp_path_factory):
    """Twelve 24x32 images (JPEG, PNG, BMP, GIF), a manifest, a CSV, a vocabulary."""
    return WrittenDataSet(tmp_path_factory.mktemp("written"))


@pytest.fixture(scope="session")
def bad_data(tmp_path_factory):
    """Three good images, a truncated JPEG, a zero-byte file, a text file
    named .jpg, a 1x1 PNG and a listed file that does not exist."""
    return BadDataSet(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="session")
def tfds_dir(written, tmp_path_factory):
    """A TFDS data dir holding `kmlc_tiny_voc`: the written images with
    voc/2007's features (needs tensorflow-datasets)."""
    pytest.importorskip("tensorflow_datasets")
    from tests.data.tfds_fixtures import prepare_tiny_voc

    return prepare_tiny_voc(written, tmp_path_factory.mktemp("tfds"))
