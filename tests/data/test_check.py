"""Tests for kmlc/data/data_check.py and the `kmlc data` command line."""

import json
import shutil

import numpy as np
import pytest

from kmlc import cli
from kmlc.data.csv_reader import read_csv
from kmlc.data.data_check import check
from kmlc.data.manifest_reader import read_manifest
from kmlc.data.tfrecords import read_tfrecords


def _run(capsys, *argv):
    code = cli.main(["data", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _manifest_args(data):
    return (
        "--manifest",
        data.manifest,
        "--images",
        data.images,
        "--vocabulary",
        data.vocabulary,
    )


def test_cli_reports_each_bad_file_on_one_line(bad_data, capsys):
    code, lines, _ = _run(capsys, "check", *_manifest_args(bad_data))
    assert code == 1
    *problems, summary = lines
    assert len(problems) == len(bad_data.bad)
    for name, kind in bad_data.bad.items():
        path = str(bad_data.images / name)
        [line] = [line for line in problems if line.startswith(path + ":")]
        assert line.startswith(f"{path}: {kind}: ")
    assert summary == (
        "checked 8 images: 5 errors (1 missing, 1 too-small, 3 unreadable)"
    )
    assert not any(name in "\n".join(lines) for name in bad_data.good)


def test_cli_clean_data_exits_zero(written, tmp_path, capsys):
    csv_path = tmp_path / "clean.csv"
    rows = [f"{key},{' '.join(written.labels[key])}" for key in written.keys]
    csv_path.write_text("\n".join(row for row in rows if not row.endswith(",")) + "\n")
    code, lines, _ = _run(
        capsys, "check", "--csv", csv_path, "--images", written.images
    )
    assert (code, lines) == (0, ["checked 11 images: no problems"])


def test_duplicates_unknown_labels_and_unlabelled_images(written, tmp_path, capsys):
    images = tmp_path / "images"
    shutil.copytree(written.images, images)
    shutil.copy(images / "img01.png", images / "copy.png")
    manifest = tmp_path / "m.json"
    samples = [
        {"image_name": "img00.jpg", "image_labels": ["sky"]},
        {"image_name": "img01.png", "image_labels": ["sea"]},
        {"image_name": "copy.png", "image_labels": ["sea"]},
        {"image_name": "img00.jpg", "image_labels": ["sky"]},
        {"image_name": "img02.jpg", "image_labels": []},
        {"image_name": "img03.bmp", "image_labels": ["boat", "kraken"]},
    ]
    manifest.write_text(json.dumps({"samples": samples}))
    code, lines, _ = _run(
        capsys,
        "check",
        "--manifest",
        manifest,
        "--images",
        images,
        "--vocabulary",
        written.vocabulary,
    )
    assert code == 1
    assert lines[:-1] == [
        f"{images / 'copy.png'}: duplicate-content: same bytes as "
        f"{images / 'img01.png'}",
        f"{images / 'img00.jpg'}: duplicate-key: key 'img00.jpg' is listed 2 times",
        f"{images / 'img02.jpg'}: no-labels: no labels",
        f"{images / 'img03.bmp'}: unknown-label: Label 'kraken' ({manifest}, sample 5, "
        f"image_name 'img03.bmp') is not in the vocabulary {written.vocabulary} "
        "(6 labels). Received: label='kraken'",
    ]
    assert lines[-1] == (
        "checked 6 images: 2 errors (1 duplicate-key, 1 unknown-label), "
        "2 warnings (1 duplicate-content, 1 no-labels)"
    )


def test_check_returns_problems_as_data(bad_data):
    image_set = read_manifest(bad_data.manifest, bad_data.images, bad_data.vocabulary)
    problems = check(image_set)
    assert {(p.key, p.kind) for p in problems} == set(bad_data.bad.items())
    assert check(image_set.subset(np.isin(image_set.keys, bad_data.good))) == []
    # A lower minimum side accepts the 1x1 image.
    assert "tiny.png" not in {p.key for p in check(image_set, min_side=1)}


def test_check_and_pack_on_tfrecords(bad_data, tmp_path, capsys):
    out = tmp_path / "packed"
    code, lines, _ = _run(
        capsys, "pack", *_manifest_args(bad_data), "--out", out, "--shard-size", 3
    )
    assert code == 0
    assert lines == [
        f"{bad_data.images / 'missing.jpg'}: not packed: No such file or directory",
        f"packed 7 of 8 images into 3 shards in {out}",
    ]
    assert sorted(read_tfrecords(out).keys) == sorted(
        name for name in bad_data.labels if name != "missing.jpg"
    )
    code, lines, _ = _run(capsys, "check", "--tfrecords", out)
    assert code == 1
    bad = {line.split(":")[0] for line in lines[:-1]}
    assert bad == {"truncated.jpg", "empty.jpg", "text.jpg", "tiny.png"}
    code, _, err = _run(capsys, "pack", *_manifest_args(bad_data), "--out", out)
    assert code == 2 and "already holds a packed data set" in err


def test_csv_check_with_separator(written, tmp_path, capsys):
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("path,labels\nimg00.jpg,sky;sun\nimg01.png,sea;moon\n")
    code, lines, _ = _run(
        capsys,
        "check",
        "--csv",
        csv_path,
        "--images",
        written.images,
        "--vocabulary",
        written.vocabulary,
        "--separator",
        ";",
    )
    assert code == 1
    assert lines[0].startswith(
        f"{written.images / 'img01.png'}: unknown-label: Label 'moon'"
    )
    assert f"{csv_path}, line 3" in lines[0]
    image_set = read_csv(csv_path, written.images, separator=";")
    assert image_set.vocabulary.names == ("moon", "sea", "sky", "sun")


def test_cli_errors_name_the_input(written, tmp_path, capsys):
    missing = tmp_path / "no-images"
    code, _, err = _run(
        capsys, "check", "--manifest", written.manifest, "--images", missing
    )
    assert code == 2
    assert err.strip() == (
        f"kmlc data: error: --images: no such file or directory: {missing}"
    )
    code, _, err = _run(capsys, "check", "--manifest", written.manifest)
    assert code == 2 and "--manifest needs --images" in err
    with pytest.raises(SystemExit):
        cli.main(["data", "check"])  # no source: argparse's usage error


def test_cli_can_ignore_kinds(written, capsys):
    code, lines, _ = _run(
        capsys, "check", "--csv", written.csv, "--images", written.images
    )
    assert code == 0  # an image without labels is a warning
    assert lines == [
        f"{written.images / 'img05.png'}: no-labels: no labels",
        "checked 12 images: 1 warning (1 no-labels)",
    ]
    code, lines, _ = _run(
        capsys,
        "check",
        "--csv",
        written.csv,
        "--images",
        written.images,
        "--ignore",
        "no-labels",
    )
    assert (code, lines) == (0, ["checked 12 images: no problems"])
    code, _, err = _run(capsys, "check", "--csv", written.csv, "--ignore", "no-label")
    assert code == 2
    assert "Unknown problem kind for --ignore" in err and "Received: no-label" in err
