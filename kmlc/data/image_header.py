"""An encoded image's size from its header, before anything is decoded.

A 389 KB PNG can declare 20000 x 20000 pixels and cost gigabytes to
decode; reading its header costs nothing. `image_size` reads the width and
height that PNG, JPEG, GIF, BMP and WebP files declare (plain Python, no
TensorFlow), so that the dev server and the data pipeline can refuse an
image over a pixel limit before decoding it.
"""

import dataclasses
import struct

# The largest image (width x height) accepted by default: 40 megapixels,
# 120 MB as uint8 RGB (a 12-megapixel phone photo is well under it).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000

# JPEG start-of-frame markers (they carry the size): C0-CF except DHT (C4),
# JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


@dataclasses.dataclass(frozen=True)
class ImageSize:
    """What a header declares.

    Attributes:
        format: str. `"png"`, `"jpeg"`, `"gif"`, `"bmp"` or `"webp"`.
        width: int.
        height: int.
        pixels: int. The pixels a decoder allocates: `width * height`, or
            for a GIF the largest of its screen and its frames.
    """

    format: str
    width: int
    height: int
    pixels: int


class HeaderError(ValueError):
    """Bytes whose header says no size: not an image of a known format, or cut."""


def image_size(data):
    """The size an encoded image's header declares.

    Args:
        data: bytes. The encoded image (only its header is read, and for a
            JPEG or a GIF the markers or blocks before the image data).

    Returns:
        An `ImageSize`.

    Raises:
        HeaderError: the bytes are not a PNG, JPEG, GIF, BMP or WebP image,
            or their header is cut short.
    """
    data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data)
        if data[:2] == b"BM":
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        raise HeaderError(
            f"the image header is cut short ({len(data)} bytes)"
        ) from None
    raise HeaderError(
        f"not a PNG, JPEG, GIF, BMP or WebP image ({len(data)} bytes, no known "
        "signature)"
    )


def check_pixels(size, max_pixels):
    """Raises `ValueError` if an `ImageSize` is over `max_pixels`."""
    if max_pixels is not None and size.pixels > max_pixels:
        raise ValueError(
            f"the {size.format.upper()} is {size.width}x{size.height} px "
            f"({size.pixels:,} pixels), over the limit of {int(max_pixels):,} "
            "pixels"
        )


def _size(image_format, width, height, pixels=None):
    if width <= 0 or height <= 0:
        raise HeaderError(
            f"the {image_format.upper()} header declares a size of {width}x{height} px"
        )
    return ImageSize(image_format, width, height, pixels or width * height)


def _png(data):
    width, height = struct.unpack(">II", data[16:24])
    if data[12:16] != b"IHDR":
        raise HeaderError("the PNG does not start with an IHDR chunk")
    return _size("png", width, height)


def _jpeg(data):
    position = 2
    while True:
        while data[position] == 0xFF and data[position + 1] == 0xFF:
            position += 1  # fill bytes
        if data[position] != 0xFF:
            raise HeaderError(f"the JPEG has no marker at byte {position}")
        marker = data[position + 1]
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan
            raise HeaderError("the JPEG has no frame header before its data")
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return _size("jpeg", width, height)
        if length < 2:
            raise HeaderError(f"the JPEG has a segment of length {length}")
        position += 2 + length


def _gif(data):
    # giflib reads every frame into a buffer of its own size, whatever the
    # logical screen says: count the largest.
    screen_width, screen_height, flags = struct.unpack("<HHB", data[6:11])
    largest = screen_width * screen_height
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while position < len(data):
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            position = _skip_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor
            width, height, flags = struct.unpack(
                "<HHB", data[position + 5 : position + 10]
            )
            largest = max(largest, width * height)
            position += 10
            if flags & 0x80:  # local colour table
                position += 3 << ((flags & 7) + 1)
            position = _skip_sub_blocks(data, position + 1)  # LZW code size
        else:
            break  # garbage after the frames: the decoder will say
    return _size("gif", screen_width, screen_height, largest)


def _skip_sub_blocks(data, position):
    while True:
        size = data[position]
        position += 1 + size
        if size == 0:
            return position


def _bmp(data):
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return _size("bmp", width, abs(height))


def _webp(data):
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        width, height = width & 0x3FFF, height & 0x3FFF
    else:
        raise HeaderError(f"the WebP has an unknown first chunk {bytes(chunk)!r}")
    return _size("webp", width, height)
