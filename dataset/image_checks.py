"""Structural checks on image bytes before any pixel is decoded: format, size, and work the file demands.

Why: a decoder allocates and loops according to what the *file* says, so the file must be judged
first, the way each library that may decode it will read it. Every check here reads headers and
chunk/segment tables only (no pixels), does work bounded by the limits below, and raises
`InputRejected` with one precise reason:

- size (`too_large` / `too_small`): every reading a decoder may make of the size is checked, e.g.
  a TIFF whose ImageWidth tag appears twice is judged by the first copy (libtiff, OpenCV) *and*
  the last (Pillow); a JPEG by every frame header.
- work out of proportion to the size (`decode_limit`): a progressive JPEG with more than
  `MAX_JPEG_SCANS` scans, or whose scans × pixels pass `MAX_JPEG_SCAN_PIXELS` (each scan is a pass
  over the image; real files have about 10), a PNG with more than
  `MAX_PNG_CHUNKS` chunks (Pillow walks chunks in Python), an RLE-compressed BMP larger than
  `MAX_RLE_BMP_PIXELS` (Pillow's RLE decoder is pure Python), a TIFF/EXIF table entry with more
  than `MAX_TIFF_VALUES` numbers (Pillow turns each into a Python int), a TIFF directory with more
  than `MAX_TIFF_ENTRIES` entries (libtiff's own sanity limit).
- metadata that inflates (`too_large`): a PNG iCCP/zTXt/iTXt chunk inflating past
  `MAX_PNG_CHUNK_INFLATE` (Pillow's own limit), or all of them together past
  `MAX_PNG_METADATA_INFLATE`; inflation is stopped at the limit, never completed.

Anything the checks cannot parse is left to the decoder to judge (truncated, unreadable): they
refuse only what they can prove. They bound *known* bombs cheaply; `dataset.decode_guard`
bounds time and memory for everything else.
"""
from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from dataset.reasons import InputRejected, Reason

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")

MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_PIXELS = 1_500_000_000  # about 37 passes over a 40 MP image
MAX_PNG_CHUNKS = 100_000
MAX_PNG_CHUNK_INFLATE = 1 << 20  # Pillow's PngImagePlugin.MAX_TEXT_CHUNK
MAX_PNG_METADATA_INFLATE = 8 << 20
MAX_RLE_BMP_PIXELS = 4_000_000
MAX_TIFF_ENTRIES = 4096  # libtiff refuses larger directories ("Sanity check on directory count failed")
MAX_TIFF_VALUES = 1 << 20

_HEIF_BRANDS = {
    b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"hevx": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
    b"hevm": "HEIC", b"hevs": "HEIC", b"mif1": "HEIF", b"mif2": "HEIF", b"msf1": "HEIF",
    b"avif": "AVIF", b"avis": "AVIF",
}
# A JPEG marker that ends entropy-coded data: 0xFF followed by neither 0x00 (stuffing), RSTn nor 0xFF (fill).
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}
# TIFF field types with numbers Pillow unpacks one Python object each: (type, bytes per value).
_TIFF_NUMERIC = {3: 2, 4: 4, 5: 8, 6: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8}
_TIFF_UNIT = {1: 1, 2: 1, 7: 1, **_TIFF_NUMERIC}
_TIFF_SUB_IFDS = (0x8769, 0x8825)  # Exif and GPS directories


@dataclass(frozen=True)
class ImageInfo:
    """What the headers say. `sizes` holds every (width, height) a decoder may read; `width`/`height`
    are the largest of them (None when the headers give no size: the decoder then judges)."""

    format: str
    sizes: tuple[tuple[int, int], ...] = ()

    @property
    def width(self) -> int | None:
        return max((w for w, _ in self.sizes), default=None)

    @property
    def height(self) -> int | None:
        return max((h for _, h in self.sizes), default=None)

    @property
    def pixels(self) -> int | None:
        return max((w * h for w, h in self.sizes), default=None)


def sniff_format(data: bytes) -> str | None:
    """Name the image format from the first bytes ("JPEG", "PNG", ..., "GIF", "HEIC", "SVG"), or None."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM") and len(head) >= 26:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(head[8:12])  # other ISO-BMFF brands are video: not an image
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG2000"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JPEGXL"
    if head.startswith(b"8BPS"):
        return "PSD"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n":
        return "PNM"
    if _looks_like_svg(data):
        return "SVG"
    return None


def _looks_like_svg(data: bytes) -> bool:
    text = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg"):
        return True
    return text.startswith((b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in text


def inspect_image(data: bytes, *, max_pixels: int, min_side: int) -> ImageInfo:
    """Judge `data` from its headers (see the module docstring); raise `InputRejected` or return `ImageInfo`."""
    if len(data) == 0:
        raise InputRejected(Reason.UNREADABLE, "empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise InputRejected(Reason.NOT_AN_IMAGE, "not a recognised image format")
    if fmt not in SUPPORTED_FORMATS:
        raise InputRejected(
            Reason.UNSUPPORTED_FORMAT, f"{fmt} images are not supported (supported: {', '.join(SUPPORTED_FORMATS)})"
        )
    sizes, passes = _WALKERS[fmt](data)
    info = ImageInfo(fmt, tuple(dict.fromkeys(sizes)))
    for width, height in info.sizes:
        check_size(fmt, width, height, max_pixels=max_pixels, min_side=0)
    for width, height in info.sizes:
        check_size(fmt, width, height, max_pixels=max_pixels, min_side=min_side)
    if passes > 1 and info.pixels and passes * info.pixels > MAX_JPEG_SCAN_PIXELS:
        raise InputRejected(
            Reason.DECODE_LIMIT,
            f"{fmt} has {passes} scans of {info.pixels:,} pixels, each a pass over the image "
            f"(limit {MAX_JPEG_SCAN_PIXELS:,} scan-pixels)",
        )
    return info


def check_size(fmt: str, width: int, height: int, *, max_pixels: int, min_side: int) -> None:
    """`too_large` above `max_pixels`, `too_small` when the shorter side is below `min_side`."""
    if width * height > max_pixels:
        raise InputRejected(
            Reason.TOO_LARGE, f"{fmt} header claims {width}x{height} = {width * height:,} pixels (limit {max_pixels:,})"
        )
    if min(width, height) < min_side:
        raise InputRejected(Reason.TOO_SMALL, f"{width}x{height} pixels: shorter side below {min_side}")


# ------------------------------------------------------------------------------------------------ JPEG


def _jpeg_sizes(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """Every frame header's size, and the number of scans (each a pass over the image for a progressive decoder)."""
    sizes: list[tuple[int, int]] = []
    scans = 0
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break  # garbage between segments: the decoder judges
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1  # fill byte
            continue
        if marker == 0xD9:
            break
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if marker in _JPEG_SOF and length >= 7 and end <= len(data):
            height, width = struct.unpack_from(">HH", data, pos + 5)
            if height and width:
                sizes.append((width, height))
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise InputRejected(
                    Reason.DECODE_LIMIT, f"JPEG has more than {MAX_JPEG_SCANS} scans (each one a pass over the image)"
                )
            following = _JPEG_MARKER.search(data, end)
            if following is None:
                break
            end = following.start()
        pos = end
    return sizes, max(scans, 1)


# ------------------------------------------------------------------------------------------------- PNG


def _png_sizes(data: bytes) -> tuple[list[tuple[int, int]], int]:
    sizes: list[tuple[int, int]] = []
    pos, chunks, inflated = 8, 0, 0
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = pos + 8
        if body + length + 4 > len(data):
            break  # truncated: the decoder judges
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise InputRejected(Reason.DECODE_LIMIT, f"PNG has more than {MAX_PNG_CHUNKS:,} chunks")
        if kind == b"IHDR" and length >= 8 and not sizes:
            width, height = struct.unpack_from(">II", data, body)
            sizes.append((width, height))
        elif kind in (b"iCCP", b"zTXt", b"iTXt"):
            inflated += _png_inflated_size(kind, data[body : body + length])
            if inflated > MAX_PNG_METADATA_INFLATE:
                raise InputRejected(
                    Reason.TOO_LARGE, f"PNG metadata chunks inflate to more than {MAX_PNG_METADATA_INFLATE:,} bytes"
                )
        elif kind == b"eXIf":
            _check_exif_block(data[body : body + length])
        elif kind == b"IEND":
            break
        pos = body + length + 4
    return sizes, 1


def _png_inflated_size(kind: bytes, body: bytes) -> int:
    """Bytes a compressed metadata chunk inflates to, stopping (`too_large`) past the per-chunk limit."""
    name_end = body.find(b"\x00")
    if name_end < 0:
        return 0
    if kind == b"iTXt":  # keyword \0 flag method language \0 translated \0 text
        if body[name_end + 1 : name_end + 2] != b"\x01":
            return 0  # not compressed
        rest = body[name_end + 3 :]
        for _ in range(2):
            cut = rest.find(b"\x00")
            if cut < 0:
                return 0
            rest = rest[cut + 1 :]
        stream = rest
    else:  # keyword \0 method stream
        stream = body[name_end + 2 :]
    inflater = zlib.decompressobj()
    try:
        size = len(inflater.decompress(stream, MAX_PNG_CHUNK_INFLATE + 1))
    except zlib.error:
        return 0  # a broken stream: Pillow ignores or refuses it itself
    if size > MAX_PNG_CHUNK_INFLATE:
        chunk = kind.decode("ascii")
        raise InputRejected(Reason.TOO_LARGE, f"PNG {chunk} chunk inflates to more than {MAX_PNG_CHUNK_INFLATE:,} bytes")
    return size


# ------------------------------------------------------------------------------------------------ WebP


def _webp_sizes(data: bytes) -> tuple[list[tuple[int, int]], int]:
    sizes: list[tuple[int, int]] = []
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        chunk = data[body : body + min(length, 32)]
        if kind == b"VP8X" and len(chunk) >= 10:
            sizes.append((1 + int.from_bytes(chunk[4:7], "little"), 1 + int.from_bytes(chunk[7:10], "little")))
        elif kind == b"VP8 " and len(chunk) >= 10 and chunk[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", chunk, 6)
            sizes.append((width & 0x3FFF, height & 0x3FFF))
        elif kind == b"VP8L" and len(chunk) >= 5 and chunk[0] == 0x2F:
            bits = int.from_bytes(chunk[1:5], "little")
            sizes.append((1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)))
        elif kind == b"EXIF":
            _check_exif_block(data[body : body + length])
        if kind in (b"VP8 ", b"VP8L"):
            break  # the first frame's bitstream: what the decoder reads
        pos = body + length + (length & 1)
    return sizes, 1


# ------------------------------------------------------------------------------------------------- BMP


def _bmp_sizes(data: bytes) -> tuple[list[tuple[int, int]], int]:
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12 and len(data) >= 26:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", data, 18)
        return [(width, height)], 1
    if header_size < 40 or len(data) < 34:
        return [], 1
    width, height, _, _, compression = struct.unpack_from("<iiHHI", data, 18)
    width, height = abs(width), abs(height)  # a negative height means rows stored top-down
    if compression in (1, 2) and width * height > MAX_RLE_BMP_PIXELS:
        raise InputRejected(
            Reason.DECODE_LIMIT,
            f"RLE-compressed BMP of {width}x{height} pixels (limit {MAX_RLE_BMP_PIXELS:,}: its decoder runs per pixel)",
        )
    return [(width, height)], 1


# ------------------------------------------------------------------------------------------------ TIFF


class _Tiff:
    """Reads TIFF directories the way both Pillow (last copy of a tag wins) and libtiff (first wins) do."""

    def __init__(self, data: bytes, base: int = 0) -> None:
        self.data = data
        self.base = base
        self.order = "<" if data[base : base + 2] == b"II" else ">"
        (magic,) = struct.unpack_from(self.order + "H", data, base + 2)
        self.big = magic == 43
        self.entry_size = 20 if self.big else 12

    def first_ifd(self) -> int:
        if self.big:
            return struct.unpack_from(self.order + "Q", self.data, self.base + 8)[0]
        return struct.unpack_from(self.order + "I", self.data, self.base + 4)[0]

    def entries(self, offset: int, *, strict_count: bool):
        """(tag, type, count, inline value bytes, data offset or None) for each entry present in the file."""
        start = self.base + offset
        count_format, count_size = ("Q", 8) if self.big else ("H", 2)
        if start + count_size > len(self.data):
            return
        (count,) = struct.unpack_from(self.order + count_format, self.data, start)
        if strict_count and count > MAX_TIFF_ENTRIES:
            raise InputRejected(
                Reason.UNREADABLE, f"TIFF directory claims {count:,} entries (libtiff refuses more than {MAX_TIFF_ENTRIES:,})"
            )
        present = min(count, (len(self.data) - start - count_size) // self.entry_size)
        entry_format = self.order + ("HHQ8s" if self.big else "HHI4s")
        inline = 8 if self.big else 4
        for index in range(present):
            tag, kind, values, raw = struct.unpack_from(entry_format, self.data, start + count_size + index * self.entry_size)
            size = values * _TIFF_UNIT.get(kind, 1)
            where = None
            if size > inline:
                (where,) = struct.unpack_from(self.order + ("Q" if self.big else "I"), raw)
            yield tag, kind, values, raw, where

    def check_value_counts(
        self, offset: int, *, strict_count: bool, depth: int = 0, label: str = "TIFF"
    ) -> dict[int, list[int]]:
        """Refuse oversized number tables; return the first numbers of each tag's copies (in file order)."""
        values: dict[int, list[int]] = {}
        for tag, kind, count, raw, where in self.entries(offset, strict_count=strict_count):
            unit = _TIFF_NUMERIC.get(kind)
            if unit is not None and count > MAX_TIFF_VALUES and where is not None:
                if self.base + where + count * unit <= len(self.data):  # a table that really is in the file
                    raise InputRejected(
                        Reason.DECODE_LIMIT, f"{label} tag {tag} holds {count:,} numbers (limit {MAX_TIFF_VALUES:,})"
                    )
            if kind in (3, 4, 16) and count >= 1 and where is None:
                unit_format = {3: "H", 4: "I", 16: "Q"}[kind]
                values.setdefault(tag, []).append(struct.unpack_from(self.order + unit_format, raw)[0])
            if tag in _TIFF_SUB_IFDS and kind in (4, 13, 16) and depth == 0 and where is None:
                sub = struct.unpack_from(self.order + ("Q" if kind == 16 else "I"), raw)[0]
                if 0 < sub < len(self.data):
                    self.check_value_counts(sub, strict_count=False, depth=1, label=label)
        return values


def _tiff_sizes(data: bytes) -> tuple[list[tuple[int, int]], int]:
    try:
        tiff = _Tiff(data)
        fields = tiff.check_value_counts(tiff.first_ifd(), strict_count=True)
    except struct.error:
        return [], 1  # the header ends early: the decoder judges
    widths, heights = fields.get(256, []), fields.get(257, [])
    if not widths or not heights:
        return [], 1
    # libtiff and OpenCV keep the first copy of a repeated tag, Pillow the last: check both readings.
    return [(widths[0], heights[0]), (widths[-1], heights[-1])], 1


def _check_exif_block(block: bytes) -> None:
    """An EXIF payload (PNG eXIf, WebP EXIF): a TIFF structure Pillow parses when EXIF is read."""
    block = block[6:] if block.startswith(b"Exif\x00\x00") else block
    if block[:4] not in (b"II*\x00", b"MM\x00*"):
        return
    try:
        tiff = _Tiff(block)
        tiff.check_value_counts(tiff.first_ifd(), strict_count=False, label="EXIF")
    except struct.error:
        return


_WALKERS = {"JPEG": _jpeg_sizes, "PNG": _png_sizes, "WEBP": _webp_sizes, "BMP": _bmp_sizes, "TIFF": _tiff_sizes}
