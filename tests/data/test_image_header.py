"""`kmlc.data.image_header` and `declared_pixels`: the size a header declares,
against PIL's reading of the same files."""

import io
import struct

import pytest
import tensorflow as tf
from PIL import Image

from kmlc.data.image_decoding import declared_pixels
from kmlc.data.image_header import HeaderError
from kmlc.data.image_header import check_pixels
from kmlc.data.image_header import image_size
from tests.data.data_fixtures import encode
from tests.data.data_fixtures import smooth_image
from tests.reliability.abuse import gif_with_a_large_frame
from tests.reliability.abuse import huge_png

CASES = {
    "jpeg": ("RGB", "JPEG", {}),
    "jpeg-progressive": ("RGB", "JPEG", {"progressive": True}),
    "jpeg-grayscale": ("L", "JPEG", {}),
    "jpeg-exif": ("RGB", "JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 300}),
    "png": ("RGBA", "PNG", {}),
    "gif": ("P", "GIF", {}),
    "bmp": ("RGB", "BMP", {}),
    "bmp-palette": ("P", "BMP", {}),
    "webp-lossy": ("RGB", "WEBP", {"lossless": False}),
    "webp-lossless": ("RGB", "WEBP", {"lossless": True}),
    "webp-alpha": ("RGBA", "WEBP", {"lossless": False}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reads_the_size_pil_reads(case):
    mode, image_format, options = CASES[case]
    data = encode(
        smooth_image(seed=3, height=37, width=53).convert(mode), image_format, **options
    )
    size = image_size(data)
    assert (size.width, size.height) == Image.open(io.BytesIO(data)).size == (53, 37)
    assert size.format == image_format.lower() and size.pixels == 53 * 37
    if image_format != "WEBP":  # kmlc's decoder reads the other four
        assert int(declared_pixels(tf.constant(data))) == 53 * 37


def test_a_top_down_bmp_counts_its_rows():
    data = bytearray(encode(smooth_image(seed=1, height=9, width=14), "BMP"))
    data[22:26] = struct.pack("<i", -9)  # a negative height: rows top-down
    assert Image.open(io.BytesIO(bytes(data))).size == (14, 9)
    assert image_size(bytes(data)).pixels == 14 * 9
    assert int(declared_pixels(tf.constant(bytes(data)))) == 14 * 9


def test_a_gif_counts_its_largest_frame():
    data = gif_with_a_large_frame(screen=(10, 10), frame=(300, 200))
    size = image_size(data)
    assert (size.width, size.height, size.pixels) == (10, 10, 300 * 200)
    assert int(declared_pixels(tf.constant(data))) == 300 * 200


def test_a_huge_png_is_read_from_its_header():
    data = huge_png(20000, 20000)
    assert len(data) < 100_000
    assert image_size(data).pixels == 400_000_000
    assert int(declared_pixels(tf.constant(data))) == 400_000_000
    with pytest.raises(
        ValueError, match=r"PNG is 20000x20000 px \(400,000,000 pixels\)"
    ):
        check_pixels(image_size(data), 40_000_000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"just some text", r"not a PNG, JPEG, GIF, BMP or WebP image \(14 bytes"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", r"cut short \(10 bytes\)"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", r"cut short"),
        (b"GIF89a\x01", r"cut short"),
    ],
)
def test_headers_that_say_no_size(data, message):
    with pytest.raises(HeaderError, match=message):
        image_size(data)


def test_bytes_of_no_known_format_declare_nothing_to_tensorflow():
    assert int(declared_pixels(tf.constant(b"just some text"))) == 0
