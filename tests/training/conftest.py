"""Fixtures of the training tests: a small synthetic data set."""

import pytest

from kmlc import synthetic


@pytest.fixture(scope="session")
def scenes_dir(tmp_path_factory):
    """96 synthetic 32-px scenes (12 labels) as a manifest."""
    out = tmp_path_factory.mktemp("scenes")
    synthetic.write_dataset(out, 96, size=32, seed=0)
    return out
