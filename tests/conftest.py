"""Shared fixtures: the real Corel-5k training data."""

import json
import os
import pathlib

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def corel5k_dir():
    """The Corel-5k folder (images/, train.json, vocabulary.txt).

    Read from the `KMLC_COREL5K` environment variable, by default
    `<repo root>/../shared/data/corel5k`; tests that use it are skipped when
    it is absent.
    """
    default = REPO_ROOT.parent / "shared" / "data" / "corel5k"
    path = pathlib.Path(os.environ.get("KMLC_COREL5K", default))
    if not path.is_absolute():
        path = REPO_ROOT / path
    path = path.resolve()
    if not (path / "train.json").is_file() or not (path / "vocabulary.txt").is_file():
        pytest.skip(f"Corel-5k data not found at {path} (set KMLC_COREL5K)")
    return path


@pytest.fixture(scope="session")
def corel5k_labels(corel5k_dir):
    """`(y, names)`: the multi-hot training labels, uint8 `[4500, 260]`, in
    the order of train.json, and the 260 label names of vocabulary.txt."""
    names = [
        line.strip()
        for line in (corel5k_dir / "vocabulary.txt").read_text("utf-8").splitlines()
        if line.strip()
    ]
    column = {name: i for i, name in enumerate(names)}
    samples = json.loads((corel5k_dir / "train.json").read_text("utf-8"))["samples"]
    y = np.zeros((len(samples), len(names)), np.uint8)
    for row, sample in enumerate(samples):
        for label in sample["image_labels"]:
            y[row, column[label]] = 1
    return y, names
