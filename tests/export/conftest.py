"""Fixtures of the export tests: one tiny model, its SavedModel, images."""

import pytest

from kmlc.export import saved_model
from tests import model_fixtures as fx


@pytest.fixture(scope="module")
def model():
    """Heads "full", six named labels, the same weights in every module."""
    return fx.tiny_model(seed=0, label_names=fx.LABEL_NAMES)


@pytest.fixture(scope="module")
def saved_model_dir(model, tmp_path_factory):
    """`model` as an unversioned SavedModel (no warm-up requests)."""
    directory = str(tmp_path_factory.mktemp("saved_model") / "model")
    saved_model.write_saved_model(model, directory, warmup=False)
    return directory


@pytest.fixture(scope="module")
def images():
    """Four random images `[4, 32, 32, 3]`, float32 0..255."""
    return fx.images(4, seed=0)
