"""Issue 11, item 4: a manifest or CSV cannot make kmlc read files outside
its images directory, and no error ever quotes a file's contents."""

import json
import os

import pytest

from kmlc import cli
from kmlc.data.csv_reader import read_csv
from kmlc.data.manifest_reader import read_manifest
from tests.data.data_fixtures import encode
from tests.data.data_fixtures import smooth_image

SECRET = b"SECRET-TOKEN=hunter2\n"


@pytest.fixture()
def layout(tmp_path):
    """`images/` with one good PNG, a secret file beside it, and a symbolic
    link inside `images/` that leads to the secret."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "good.png").write_bytes(encode(smooth_image(0), "PNG"))
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    os.symlink(secret, images / "link.png")
    vocabulary = tmp_path / "vocabulary.txt"
    vocabulary.write_text("sky\n")
    return tmp_path, images, secret, vocabulary


def _manifest(tmp_path, name):
    path = tmp_path / "m.json"
    samples = [
        {"image_name": "good.png", "image_labels": ["sky"]},
        {"image_name": name, "image_labels": ["sky"]},
    ]
    path.write_text(json.dumps({"samples": samples}))
    return path


def _outside_names(secret):
    depth = len(secret.parent.parts)
    return {
        "absolute": (str(secret), "an absolute path"),
        "etc-shadow": ("/etc/shadow", "an absolute path"),
        "dot-dot": ("../" * depth + "etc/passwd", "climbs out through '..'"),
        "dot-dot-to-secret": ("../secret.txt", "climbs out through '..'"),
        "symlink": ("link.png", f"a symbolic link leads to {secret}"),
    }


@pytest.mark.parametrize(
    "case", ["absolute", "etc-shadow", "dot-dot", "dot-dot-to-secret", "symlink"]
)
def test_manifest_names_outside_the_images_directory_are_refused(layout, case):
    tmp_path, images, secret, vocabulary = layout
    name, reason = _outside_names(secret)[case]
    manifest = _manifest(tmp_path, name)
    with pytest.raises(ValueError) as info:
        read_manifest(manifest, images, vocabulary)
    message = str(info.value)
    assert message.startswith(f"{manifest}, sample 1: the image {name!r} is outside")
    assert reason in message and "--allow-outside" in message
    assert message.endswith(f"Received: {name!r}")


@pytest.mark.parametrize("case", ["absolute", "dot-dot-to-secret", "symlink"])
def test_csv_paths_outside_the_images_directory_are_refused(layout, case):
    tmp_path, images, secret, _ = layout
    name, reason = _outside_names(secret)[case]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(f"path,labels\ngood.png,sky\n{name},sky\n")
    with pytest.raises(ValueError, match=f"{csv_path}, line 3: the image"):
        read_csv(csv_path, images)
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        read_csv(csv_path, images)


def test_names_that_stay_inside_are_read(layout):
    tmp_path, images, _, vocabulary = layout
    (images / "sub").mkdir()
    (images / "sub" / "b.png").write_bytes(encode(smooth_image(1), "PNG"))
    image_set = read_manifest(_manifest(tmp_path, "sub/../sub/b.png"), images)
    assert image_set.name("sub/../sub/b.png") == str(images / "sub/../sub/b.png")


def test_data_check_refuses_and_never_prints_the_file(layout, capsys):
    tmp_path, images, secret, vocabulary = layout
    for name in ("/etc/passwd", "../" * 12 + "etc/passwd", "link.png"):
        manifest = _manifest(tmp_path, name)
        args = ["--manifest", manifest, "--images", images, "--vocabulary", vocabulary]
        code = cli.main(["data", "check", *map(str, args)])
        out, err = capsys.readouterr()
        assert code == 2
        assert f"sample 1: the image {name!r} is outside the images directory" in err
        assert "root:" not in out + err and "SECRET" not in out + err


def test_allow_outside_reads_it_and_still_never_prints_it(layout, capsys):
    tmp_path, images, secret, vocabulary = layout
    manifest = _manifest(tmp_path, "../secret.txt")
    args = ["--manifest", manifest, "--images", images, "--vocabulary", vocabulary]
    code = cli.main(["data", "check", *map(str, args), "--allow-outside"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines()[0] == (
        f"{images / '../secret.txt'}: unreadable: not a JPEG, PNG, BMP or GIF "
        f"image ({len(SECRET)} bytes, no known signature)"
    )
    assert "SECRET" not in out + err
    image_set = read_manifest(
        manifest, images, vocabulary, allow_outside_images_dir=True
    )
    assert list(image_set.keys) == ["good.png", "../secret.txt"]


def test_a_training_config_refuses_them_unless_it_allows_outside(layout):
    from kmlc.config import DataConfig
    from kmlc.data.sources import read_source

    tmp_path, images, secret, vocabulary = layout
    manifest = _manifest(tmp_path, "../secret.txt")
    config = DataConfig(
        manifest=str(manifest), images=str(images), vocabulary=str(vocabulary)
    )
    fields = {k: v for k, v in vars(config).items()}
    with pytest.raises(ValueError, match=r"climbs out through '\.\.'"):
        read_source("manifest", fields)
    fields["allow_outside_images_dir"] = True
    assert len(read_source("manifest", fields)) == 2
