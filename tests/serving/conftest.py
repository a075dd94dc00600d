"""Fixtures for the serving tests: tiny exported models and a running server.

Two tiny models (different weights) are exported once per session with the
real `kmlc.export.export_saved_model`; tests copy their versions into their
own base paths. Everything binds 127.0.0.1 on free ports.
"""

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from kmlc.export import export_saved_model
from kmlc.serving import DevServer
from tests import model_fixtures as fx
from tests.once_per_run import build_once

MODEL_NAME = "tiny"
LABELS = ["sky", "water", "tree", "sand", "grass"]
IMAGE_SIZE = fx.IMAGE_SIZE


def tiny_model(seed):
    """A baseline model on the shared tiny backbone, 32x32 images."""
    return fx.tiny_model(
        "baseline", num_labels=len(LABELS), seed=seed, label_names=LABELS
    )


def encode(pixels, image_format="PNG"):
    """uint8 `[H, W, 3]` -> encoded bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def random_pixels(count, seed, size=IMAGE_SIZE):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def expected_scores(model, pixels):
    """The independent answer: sigmoid of the in-process model's logits."""
    logits = model.predict(pixels.astype(np.float32), verbose=0)
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def copy_version(source_dir, base, version):
    """Copies an exported version into `base` atomically (temp dir + rename)."""
    os.makedirs(base, exist_ok=True)
    temp = os.path.join(base, f".tmp-copy-{version}")
    shutil.copytree(source_dir, temp)
    os.rename(temp, os.path.join(base, str(version)))


@pytest.fixture(scope="session")
def models():
    """Two tiny models whose scores differ."""
    return tiny_model(seed=1), tiny_model(seed=2)


@pytest.fixture(scope="session")
def exported(models, tmp_path_factory):
    """`(dir of model A's export, dir of model B's export)`, exported once
    for all workers (`build_once`): `models` are seeded, so each worker's
    are the exported ones."""

    def export(root):
        for model, folder in zip(models, ("a", "b"), strict=True):
            export_saved_model(model, root / folder, MODEL_NAME, version=1)

    root = build_once(tmp_path_factory, "exports", export)
    return tuple(str(root / folder / MODEL_NAME / "1") for folder in ("a", "b"))


@pytest.fixture(scope="session")
def server(exported, tmp_path_factory):
    """A dev server of model A as version 1, shared by the read-only tests."""
    base = tmp_path_factory.mktemp("served") / MODEL_NAME
    copy_version(exported[0], base, 1)
    dev_server = DevServer(
        base, MODEL_NAME, grpc_port=0, rest_port=0, max_request_bytes=1 << 20
    ).start()
    yield dev_server
    dev_server.stop(grace=0)


@pytest.fixture(scope="session")
def pixels():
    return random_pixels(3, seed=0)


@pytest.fixture(scope="session")
def png_images(pixels):
    return [encode(image) for image in pixels]
