"""Decoding JPEG, PNG, BMP and GIF to RGB, and saying why an image fails.

`decode_image` is TensorFlow ops (it runs inside `tf.data`); it gives the
same pixels as PIL's `Image.open(f).convert("RGB")`: JPEG with the accurate
integer IDCT (libjpeg's and PIL's default), grayscale replicated to three
channels, alpha dropped, palettes applied (PNG, GIF and 8-bit BMP), the
first frame of a GIF. `diagnose_image` is plain Python (with eager
TensorFlow) for the rare bad image: it says in words what is wrong.
`declared_pixels` reads, with TensorFlow ops, the size a header declares,
so that `load_images` can refuse an image over a pixel limit before
decoding it.
"""

import os

import tensorflow as tf

from kmlc.data.image_header import DEFAULT_MAX_IMAGE_PIXELS
from kmlc.data.image_header import HeaderError
from kmlc.data.image_header import check_pixels
from kmlc.data.image_header import image_size

MAGIC_BYTES = {
    "jpeg": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
}


def sniff_format(data):
    """The format of encoded image bytes by their magic number, or `None`."""
    for name, prefixes in MAGIC_BYTES.items():
        if any(data.startswith(prefix) for prefix in prefixes):
            return name
    return None


def decode_image(data):
    """Encoded JPEG, PNG, BMP or GIF bytes (a string tensor) -> uint8 RGB.

    Args:
        data: scalar string tensor. The encoded image.

    Returns:
        uint8 tensor `[H, W, 3]`. Raises TensorFlow's `InvalidArgumentError`
        for bytes it cannot decode (run it under `tf.data`'s error handling,
        as `load_images` does).
    """
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), MAGIC_BYTES["jpeg"][0])
    is_bmp = tf.equal(tf.strings.substr(data, 0, 2), MAGIC_BYTES["bmp"][0])

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    def other():
        return tf.cond(
            is_bmp,
            lambda: _decode_bmp(data),
            lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
        )

    image = tf.cond(is_jpeg, jpeg, other)
    return tf.ensure_shape(image, [None, None, 3])


def declared_pixels(data, graph_only=False):
    """The pixels an encoded image's header declares, before decoding.

    TensorFlow ops for JPEG (`tf.image.extract_jpeg_shape`), PNG and BMP
    (fixed header fields); GIF and WebP go through
    `kmlc.data.image_header.image_size` (a GIF's frames are walked), a
    Python function, unless `graph_only`: then a GIF counts its logical
    screen (a frame larger than the screen is not seen) and anything else
    0, so that the ops can be saved in a SavedModel.

    Args:
        data: scalar string tensor. The encoded image.
        graph_only: bool. TensorFlow ops only. Defaults to False.

    Returns:
        int64 scalar: width x height (0 for bytes of no known format: the
        decoder refuses those). Raises an op error for a header cut short.
    """
    prefix = tf.strings.substr(data, 0, 3)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0] * shape[1]

    def png():
        return _unsigned(data, 16, 4, big_endian=True) * _unsigned(
            data, 20, 4, big_endian=True
        )

    def bmp():
        core = tf.equal(_unsigned(data, 14, 4), 12)  # BITMAPCOREHEADER
        return tf.cond(
            core,
            lambda: _unsigned(data, 18, 2) * _unsigned(data, 20, 2),
            lambda: tf.abs(_signed32(data, 18)) * tf.abs(_signed32(data, 22)),
        )

    def gif_screen():
        return _unsigned(data, 6, 2) * _unsigned(data, 8, 2)

    def other():
        return tf.reshape(tf.py_function(_python_pixels, [data], tf.int64), [])

    cases = [
        (tf.equal(prefix, MAGIC_BYTES["jpeg"][0]), jpeg),
        (tf.equal(tf.strings.substr(data, 0, 8), MAGIC_BYTES["png"][0]), png),
        (tf.equal(tf.strings.substr(data, 0, 2), MAGIC_BYTES["bmp"][0]), bmp),
    ]
    if not graph_only:
        return tf.case(cases, default=other, exclusive=False)
    cases.append((tf.equal(tf.strings.substr(data, 0, 4), b"GIF8"), gif_screen))
    return tf.case(cases, default=lambda: tf.constant(0, tf.int64), exclusive=False)


def _unsigned(data, offset, length, big_endian=False):
    """An unsigned integer of `length` bytes at `offset`, as int64."""
    raw = tf.cast(
        tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8), tf.int64
    )
    raw = tf.ensure_shape(raw, [length])
    weights = tf.constant(
        [256**i for i in (reversed(range(length)) if big_endian else range(length))],
        tf.int64,
    )
    return tf.reduce_sum(raw * weights)


def _signed32(data, offset):
    value = _unsigned(data, offset, 4)
    return tf.where(value >= 2**31, value - 2**32, value)


def _python_pixels(data):
    try:
        return image_size(data.numpy()).pixels
    except HeaderError:
        return 0


def _decode_bmp(data):
    """BMP -> RGB; 8-bit images get their colour table applied."""
    pixels = tf.io.decode_bmp(data, channels=0)

    def indexed():
        # BITMAPINFOHEADER: header size at byte 14, colours used at byte 46
        # (0 means 256), the BGRA colour table right after the header.
        header_size = _little_endian_int32(data, 14)
        colours = _little_endian_int32(data, 46)
        colours = tf.where(colours > 0, colours, 256)
        table = tf.io.decode_raw(
            tf.strings.substr(data, 14 + header_size, 4 * colours), tf.uint8
        )
        table = tf.reverse(tf.reshape(table, [-1, 4])[:, :3], axis=[1])
        return tf.gather(table, tf.cast(pixels[..., 0], tf.int32))

    return tf.cond(tf.equal(tf.shape(pixels)[-1], 1), indexed, lambda: pixels[..., :3])


def _little_endian_int32(data, offset):
    return tf.io.decode_raw(tf.strings.substr(data, offset, 4), tf.int32)[0]


def diagnose_image(image, image_is_path, min_side, max_pixels=DEFAULT_MAX_IMAGE_PIXELS):
    """Why an image is unusable, in words; `None` when it is fine.

    The header is read first: an image over `max_pixels` is never decoded.
    The reasons never quote the file's bytes.

    Args:
        image: bytes or str. A file path (`image_is_path`) or encoded bytes.
        image_is_path: bool.
        min_side: int. Images with a side shorter than this are unusable.
        max_pixels: int or None. Images whose header declares more pixels
            (width x height) are unusable. Defaults to 40 million
            (`kmlc.data.image_header.DEFAULT_MAX_IMAGE_PIXELS`).

    Returns:
        `None`, or `(kind, reason)`: kind is `"missing"`, `"unreadable"`,
        `"too-small"` or `"too-large"` (see `kmlc.data.Problem`).
    """
    if image_is_path:
        path = os.fsdecode(image)
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return "missing", "no such file"
        except OSError as error:
            return "unreadable", f"cannot read the file: {error.strerror or error}"
    else:
        data = bytes(image)
    if not data:
        return "unreadable", "empty file (0 bytes)"
    image_format = sniff_format(data)
    if image_format is None:
        return (
            "unreadable",
            f"not a JPEG, PNG, BMP or GIF image ({len(data)} bytes, no known "
            "signature)",
        )
    try:
        check_pixels(image_size(data), max_pixels)
    except HeaderError:
        pass  # decoding says what is wrong
    except ValueError as error:
        return "too-large", str(error)
    try:
        height, width, _ = decode_image(tf.constant(data)).shape
    except (tf.errors.OpError, ValueError) as error:
        if _looks_truncated(data, image_format):
            return (
                "unreadable",
                f"truncated {image_format.upper()} ({len(data)} bytes, no "
                "end-of-image marker)",
            )
        return (
            "unreadable",
            f"cannot decode the {image_format.upper()} data: {_first_line(error)}",
        )
    if min(height, width) < min_side:
        return (
            "too-small",
            f"image is {width}x{height} px, smaller than the minimum side of "
            f"{min_side} px",
        )
    return None


def _looks_truncated(data, image_format):
    """Whether a file lacks the marker a complete one ends with."""
    tail = data[-64:].rstrip(b"\0")
    if image_format == "jpeg":
        return b"\xff\xd9" not in tail
    if image_format == "png":
        return b"IEND" not in tail
    if image_format == "gif":
        return not tail.endswith(b"\x3b")
    return False


def _first_line(error):
    message = getattr(error, "message", None) or str(error)
    message = message.strip().splitlines()[0] if message.strip() else repr(error)
    if message.startswith("{{"):
        message = message.split("}}", 1)[-1].strip()
    return message.split(" [Op:")[0]
