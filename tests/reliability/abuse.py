"""The abusive inputs of the reliability tests, built by hand."""

import struct
import zlib


def png_chunk(kind, payload):
    checksum = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return (
        struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum)
    )


def huge_png(width=20000, height=20000):
    """A valid 1-bit grayscale PNG of `width x height` black pixels.

    20000 x 20000 is about 60 KB on disk and 1.2 GB once decoded to RGB.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then 1-bit pixels
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(row * height, 9))
        + png_chunk(b"IEND", b"")
    )


def gif_with_a_large_frame(screen=(10, 10), frame=(300, 200)):
    """A GIF whose one frame is larger than its logical screen."""
    lzw = bytes([2, 2, 0x4C, 0x01, 0])  # min code size 2, one tiny sub-block
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", *screen, 0, 0, 0)
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, *frame, 0x80)  # local table of 2 colours
        + b"\x00\x00\x00\xff\xff\xff"
        + lzw
        + b"\x3b"
    )
