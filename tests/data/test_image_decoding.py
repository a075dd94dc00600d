"""Tests for kmlc/data/image_decoding.py against PIL's decoding."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kmlc.data.image_decoding import decode_image
from kmlc.data.image_decoding import diagnose_image
from kmlc.data.image_decoding import sniff_format
from tests.data.data_fixtures import encode
from tests.data.data_fixtures import pil_rgb
from tests.data.data_fixtures import smooth_image

# (PIL mode, format, save options): every listed format and mode.
CASES = {
    "jpeg-rgb": ("RGB", "JPEG", {"quality": 90}),
    "jpeg-rgb-444": ("RGB", "JPEG", {"subsampling": 0}),
    "jpeg-progressive": ("RGB", "JPEG", {"progressive": True}),
    "jpeg-grayscale": ("L", "JPEG", {}),
    "jpeg-cmyk": ("CMYK", "JPEG", {}),
    "png-rgb": ("RGB", "PNG", {}),
    "png-rgba": ("RGBA", "PNG", {}),
    "png-grayscale": ("L", "PNG", {}),
    "png-grayscale-alpha": ("LA", "PNG", {}),
    "png-palette": ("P", "PNG", {}),
    "bmp-rgb": ("RGB", "BMP", {}),
    "bmp-rgba": ("RGBA", "BMP", {}),
    "bmp-grayscale": ("L", "BMP", {}),
    "bmp-palette": ("P", "BMP", {}),
    "gif": ("P", "GIF", {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_decodes_like_pil(case):
    mode, image_format, options = CASES[case]
    image = smooth_image(seed=len(case), height=30, width=44).convert(mode)
    if mode == "RGBA":
        alpha = np.linspace(0, 255, 30 * 44).reshape(30, 44).astype(np.uint8)
        image.putalpha(Image.fromarray(alpha))
    data = encode(image, image_format, **options)
    expected = pil_rgb(data)
    decoded = decode_image(tf.constant(data)).numpy()
    assert decoded.shape == (30, 44, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, expected)


def test_gif_gives_its_first_frame():
    frames = [smooth_image(seed).convert("P") for seed in (1, 2, 3)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    expected = pil_rgb(data)  # PIL opens the first frame
    np.testing.assert_array_equal(decode_image(tf.constant(data)).numpy(), expected)
    assert not np.array_equal(expected, np.array(frames[1].convert("RGB")))


def test_decode_works_inside_tf_data():
    data = [encode(smooth_image(0), "PNG"), encode(smooth_image(1), "JPEG")]
    dataset = tf.data.Dataset.from_tensor_slices(data).map(decode_image)
    for got, raw in zip(dataset, data, strict=True):
        np.testing.assert_array_equal(got.numpy(), pil_rgb(raw))


def test_sniff_format():
    assert sniff_format(encode(smooth_image(0), "JPEG")) == "jpeg"
    assert sniff_format(encode(smooth_image(0), "PNG")) == "png"
    assert sniff_format(encode(smooth_image(0).convert("P"), "GIF")) == "gif"
    assert sniff_format(encode(smooth_image(0), "BMP")) == "bmp"
    assert sniff_format(b"hello") is None


def test_diagnose_names_each_problem(tmp_path):
    jpeg = encode(smooth_image(0, 64, 64), "JPEG")
    png = encode(smooth_image(0, 64, 64), "PNG")
    assert diagnose_image(jpeg, False, 8) is None
    assert diagnose_image(b"", False, 8) == ("unreadable", "empty file (0 bytes)")
    kind, reason = diagnose_image(b"just some text\n", False, 8)
    assert kind == "unreadable" and "not a JPEG, PNG, BMP or GIF" in reason
    assert "just" not in reason  # the file's bytes are never quoted
    assert reason.endswith("(15 bytes, no known signature)")
    kind, reason = diagnose_image(jpeg[: len(jpeg) // 2], False, 8)
    assert (kind, reason.split(" (")[0]) == ("unreadable", "truncated JPEG")
    kind, reason = diagnose_image(png[: len(png) // 2], False, 8)
    assert (kind, reason.split(" (")[0]) == ("unreadable", "truncated PNG")
    tiny = encode(smooth_image(0, 1, 1), "PNG")
    assert diagnose_image(tiny, False, 8) == (
        "too-small",
        "image is 1x1 px, smaller than the minimum side of 8 px",
    )
    assert diagnose_image(tiny, False, 1) is None
    assert diagnose_image(str(tmp_path / "absent.jpg"), True, 8) == (
        "missing",
        "no such file",
    )
    path = tmp_path / "ok.png"
    path.write_bytes(png)
    assert diagnose_image(str(path).encode(), True, 8) is None


def test_undecodable_body_is_reported_with_tensorflow_reason():
    # A complete-looking JPEG (it ends with the end-of-image marker) whose
    # header is garbage.
    data = b"\xff\xd8\xff" + b"\x00" * 40 + b"\xff\xd9"
    kind, reason = diagnose_image(data, False, 8)
    assert kind == "unreadable"
    assert reason.startswith("cannot decode the JPEG data: ")
    assert "{{" not in reason and "[Op:" not in reason
