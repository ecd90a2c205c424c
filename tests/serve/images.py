"""Crafted image bytes for the upload checks: headers that declare huge sizes, broken files."""
from __future__ import annotations

import struct
import zlib


def png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height but whose data is tiny (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_with_header_size(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its baseline SOF0 frame header patched to declare width x height."""
    at = jpeg.index(b"\xff\xc0")
    # SOF0: marker(2) length(2) precision(1) height(2) width(2)
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]
