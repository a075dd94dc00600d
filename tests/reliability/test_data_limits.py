"""Issue 11, items 3 and 6, and issue 10: the data side.

A PNG declaring 20000 x 20000 pixels is skipped and named without being
decoded; `kmlc data check` names missing files without a TensorFlow error
line each; images without labels are warnings (exit 0), `--strict` makes
them fail.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from kmlc import cli
from kmlc.data.data_check import check
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.pipeline import make_dataset
from tests.data.data_fixtures import encode
from tests.data.data_fixtures import smooth_image
from tests.reliability.abuse import huge_png


def write_set(root, images, labels=None):
    """`images/`, `m.json` and `vocabulary.txt` for `{name: bytes or None}`
    (None: listed but not written)."""
    folder = root / "images"
    folder.mkdir(exist_ok=True)
    for name, data in images.items():
        if data is not None:
            (folder / name).write_bytes(data)
    labels = labels or {}
    samples = [
        {"image_name": name, "image_labels": labels.get(name, ["sky"])}
        for name in images
    ]
    (root / "m.json").write_text(json.dumps({"samples": samples}))
    (root / "vocabulary.txt").write_text("sky\n")
    return root / "m.json", folder, root / "vocabulary.txt"


def data_check(capsys, manifest, images, vocabulary, *extra):
    args = ["--manifest", manifest, "--images", images, "--vocabulary", vocabulary]
    code = cli.main(["data", "check", *map(str, args), *extra])
    out, _ = capsys.readouterr()
    return code, out.splitlines()


@pytest.fixture(scope="module")
def with_huge_png(tmp_path_factory):
    root = tmp_path_factory.mktemp("huge")
    images = {
        "good.png": encode(smooth_image(0), "PNG"),
        "huge.png": huge_png(20000, 20000),
        "good.jpg": encode(smooth_image(1), "JPEG"),
    }
    return write_set(root, images)


def test_the_pipeline_skips_a_huge_image_by_name_without_decoding_it(with_huge_png):
    manifest, images, vocabulary = with_huge_png
    dataset = make_dataset(read_manifest(manifest, images, vocabulary), 32, 4)
    start = time.perf_counter()
    batches = list(dataset)
    assert time.perf_counter() - start < 20  # decoding it takes ~20 s and 1.2 GB
    assert sum(len(images) for images, _ in batches) == 2
    assert dataset.skipped.names == [str(images / "huge.png")]
    assert dataset.skipped.reasons[str(images / "huge.png")] == (
        "the PNG is 20000x20000 px (400,000,000 pixels), over the limit of "
        "40,000,000 pixels"
    )


def test_the_pixel_limit_is_configurable(with_huge_png):
    manifest, images, vocabulary = with_huge_png
    image_set = read_manifest(manifest, images, vocabulary)
    dataset = make_dataset(image_set, 32, 4, max_pixels=100)  # 24x32 > 100
    assert sum(len(images) for images, _ in dataset) == 0
    assert len(dataset.skipped) == 3
    assert (
        "over the limit of 100 pixels"
        in dataset.skipped.reasons[str(images / "good.png")]
    )


def test_data_check_reports_it_too_large(with_huge_png, capsys):
    code, lines = data_check(capsys, *with_huge_png)
    assert code == 1
    assert lines == [
        f"{with_huge_png[1] / 'huge.png'}: too-large: the PNG is 20000x20000 px "
        "(400,000,000 pixels), over the limit of 40,000,000 pixels",
        "checked 3 images: 1 error (1 too-large)",
    ]
    code, lines = data_check(capsys, *with_huge_png, "--max-pixels", "500000000")
    assert lines[-1] == "checked 3 images: no problems" and code == 0


def test_data_check_names_missing_files_without_a_tensorflow_error_each(tmp_path):
    images = {f"missing{i:03d}.jpg": None for i in range(60)}
    images["good.png"] = encode(smooth_image(0), "PNG")
    manifest, folder, vocabulary = write_set(tmp_path, images)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kmlc.cli",
            "data",
            "check",
            "--manifest",
            str(manifest),
            "--images",
            str(folder),
            "--vocabulary",
            str(vocabulary),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"},  # every TF log line
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "checked 61 images: 60 errors (60 missing)"
    assert lines[0] == f"{folder / 'missing000.jpg'}: missing: no such file"
    assert "OP_REQUIRES" not in result.stderr
    assert result.stderr.count("\n") < 30  # TensorFlow's start-up lines only


def test_images_without_labels_are_warnings_and_strict_fails_on_them(tmp_path, capsys):
    images = {name: encode(smooth_image(i), "PNG") for i, name in enumerate("abc")}
    data = write_set(tmp_path, images, labels={"b": []})
    code, lines = data_check(capsys, *data)
    assert (code, lines[-1]) == (0, "checked 3 images: 1 warning (1 no-labels)")
    assert lines[0] == f"{data[1] / 'b'}: no-labels: no labels"
    code, lines = data_check(capsys, *data, "--strict")
    assert (code, lines[-1]) == (1, "checked 3 images: 1 warning (1 no-labels)")
    (data[1] / "c").write_bytes(b"")  # an error besides the warning
    code, lines = data_check(capsys, *data)
    assert code == 1
    assert lines[-1] == (
        "checked 3 images: 1 error (1 unreadable), 1 warning (1 no-labels)"
    )


def test_check_as_data_reports_the_pixel_limit(with_huge_png):
    image_set = read_manifest(*with_huge_png)
    assert [(p.key, p.kind) for p in check(image_set)] == [("huge.png", "too-large")]


def test_a_training_config_sets_the_pipelines_pixel_limit(with_huge_png):
    from kmlc.config import TrainConfig
    from kmlc.training.builders import datasets

    manifest, images, vocabulary = with_huge_png
    image_set = read_manifest(manifest, images, vocabulary)
    config = TrainConfig()
    config.model.image_size = 32
    config.batch_size = 4
    config.data.max_pixels = 100  # 24x32 > 100: every image is over it
    train, validation = datasets(config, image_set, image_set)
    assert sum(len(x) for x, _ in validation) == 0
    assert len(validation.skipped) == 3
    assert (
        "over the limit of 100 pixels"
        in validation.skipped.reasons[str(images / "good.png")]
    )
    assert train.skipped.max_pixels == 100
