"""dataset.image_checks: sizes as every decoder reads them, and work out of proportion to the size."""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from dataset import image_checks
from dataset.image_checks import ImageInfo, inspect_image
from dataset.reasons import InputRejected, Reason
from tests.corpus import (
    bmp_claiming,
    bmp_rle,
    jpeg_scan_bomb,
    jpeg_second_frame_header,
    png_chunk_bomb,
    png_chunk_flood,
    png_exif_table_bomb,
    tiff_directory_flood,
    tiff_size_tags_twice,
    tiff_strip_table_bomb,
    webp_claiming,
)
from tests.memory import traced_peak

LIMITS = {"max_pixels": 40_000_000, "min_side": 32}


def _rgb(height=64, width=80, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return buffer.getvalue()


def _reject(data: bytes, **limits) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        inspect_image(data, **{**LIMITS, **limits})
    return caught.value


@pytest.mark.parametrize("fmt, options", [
    ("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("WEBP", {}), ("WEBP", {"lossless": True}),
    ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}), ("TIFF", {"big_tiff": True}),
])
def test_sizes_agree_with_pillow(fmt, options):
    data = _save(_rgb(70, 90), fmt, **options)
    info = inspect_image(data, **LIMITS)
    assert isinstance(info, ImageInfo) and info.format == fmt
    assert info.sizes == ((90, 70),) == (Image.open(io.BytesIO(data)).size,)


def test_animated_webp_is_judged_by_its_canvas():
    frames = [Image.fromarray(_rgb(60, 50, seed=s)) for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:])
    assert inspect_image(buffer.getvalue(), **LIMITS).sizes == ((50, 60),)


def test_tiff_with_repeated_size_tags_is_judged_by_every_reading():
    data = tiff_size_tags_twice((3000, 2000), (100, 100))
    info = inspect_image(data, **LIMITS)
    assert set(info.sizes) == {(3000, 2000), (100, 100)} and info.pixels == 6_000_000
    error = _reject(data, max_pixels=1_000_000)
    assert error.reason is Reason.TOO_LARGE and "3000x2000" in error.detail
    first_small = tiff_size_tags_twice((100, 100), (3000, 2000))  # the other order: Pillow would allocate 6 MP
    assert _reject(first_small, max_pixels=1_000_000).reason is Reason.TOO_LARGE


def test_every_jpeg_frame_header_is_checked():
    jpeg = _save(_rgb(), "JPEG")
    error = _reject(jpeg_second_frame_header(jpeg, 20_000, 20_000))
    assert error.reason is Reason.TOO_LARGE and "20000x20000" in error.detail


def test_jpeg_scans_are_counted_and_weighed_by_pixels(package_photos):
    astronaut = package_photos["astronaut"]
    assert inspect_image(jpeg_scan_bomb(astronaut, repeats=80, side=256), **LIMITS).format == "JPEG"  # 90 scans, small
    error = _reject(jpeg_scan_bomb(astronaut, repeats=100, side=256))
    assert error.reason is Reason.DECODE_LIMIT and "100 scans" in error.detail
    # 60 scans of 36 MP: each scan is a pass over the image, 2.2 billion scan-pixels
    error = _reject(jpeg_scan_bomb(astronaut, repeats=50, side=6000))
    assert error.reason is Reason.DECODE_LIMIT and "36,000,000 pixels" in error.detail


def test_scan_bomb_refusal_is_cheap(package_photos):
    data = jpeg_scan_bomb(package_photos["astronaut"], repeats=100_000)
    started = time.perf_counter()
    _reject(data)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("kind", [b"iCCP", b"zTXt", b"iTXt"])
def test_png_metadata_inflation_is_stopped_at_the_limit_not_completed(kind):
    data = png_chunk_bomb(_rgb(), kind, size=200_000_000)
    error, peak = traced_peak(lambda: _reject(data))
    assert error.reason is Reason.TOO_LARGE and kind.decode() in error.detail
    assert peak < 8 << 20, f"checking allocated {peak:,} bytes"


def test_png_metadata_under_the_limit_passes_but_many_such_chunks_do_not():
    chunk = png_chunk_bomb(_rgb(), b"zTXt", size=900_000)
    assert inspect_image(chunk, **LIMITS).format == "PNG"
    at = chunk.index(b"zTXt") - 4
    (length,) = struct.unpack_from(">I", chunk, at)
    one = chunk[at : at + 12 + length]
    many = chunk[:at] + one * 10 + chunk[at:]  # 10 x 0.9 MB = 9 MB of text
    assert _reject(many).reason is Reason.TOO_LARGE


def test_png_chunk_count_is_limited():
    assert inspect_image(png_chunk_flood(_rgb(), 1_000), **LIMITS).format == "PNG"
    error = _reject(png_chunk_flood(_rgb(), image_checks.MAX_PNG_CHUNKS + 1))
    assert error.reason is Reason.DECODE_LIMIT


def test_exif_number_tables_are_limited():
    assert inspect_image(png_exif_table_bomb(_rgb(), 1000), **LIMITS).format == "PNG"
    assert _reject(png_exif_table_bomb(_rgb(), 1_100_000)).reason is Reason.DECODE_LIMIT


def test_exif_tables_that_are_not_in_the_file_are_left_to_the_decoder():
    """An IFD entry claiming a table far past the end is what the decoder skips with a warning."""
    entry = struct.pack("<HHII", 0x0111, 4, 50_000_000, 0x7FFFFF00)
    exif = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    png = _save(_rgb(), "PNG", exif=exif)
    assert inspect_image(png, **LIMITS).format == "PNG"


def test_tiff_tables_and_directories_are_limited():
    assert _reject(tiff_strip_table_bomb(1_100_000)).reason is Reason.DECODE_LIMIT
    assert inspect_image(tiff_strip_table_bomb(1000), **LIMITS).sizes == ((64, 64),)
    error = _reject(tiff_directory_flood())
    assert error.reason is Reason.UNREADABLE and "entries" in error.detail


def test_rle_bmp_size_is_limited():
    small = bmp_rle(100, 100, rle4=False, ops=b"\x64\x80\x00\x00" * 100 + b"\x00\x01")
    assert inspect_image(small, **LIMITS).sizes == ((100, 100),)
    error = _reject(bmp_rle(3000, 3000, rle4=True, ops=b"\x00\x01"))
    assert error.reason is Reason.DECODE_LIMIT and "RLE" in error.detail


def test_claimed_sizes_of_every_format_are_checked():
    webp = webp_claiming(_save(_rgb(), "WEBP"), 16000, 16000)
    for data in (webp, bmp_claiming(30_000, 30_000)):
        assert _reject(data).reason is Reason.TOO_LARGE


def test_too_small_is_judged_after_too_large():
    assert _reject(_save(_rgb(20, 400), "PNG")).reason is Reason.TOO_SMALL
    assert _reject(tiff_size_tags_twice((10, 10), (9000, 9000))).reason is Reason.TOO_LARGE


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_truncated_headers_are_left_to_the_decoder(fmt):
    data = _save(_rgb(), fmt)
    for cut in (30, 60, len(data) // 2):
        assert inspect_image(data[:cut], **LIMITS).format == fmt  # no size yet, or the size: the decoder judges


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_mutated_headers_never_raise_anything_but_input_rejected(fmt):
    rng = np.random.default_rng(len(fmt))
    original = _save(_rgb(48, 64), fmt)
    for _ in range(200):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 6))):
            data[int(rng.integers(0, min(len(data), 200)))] = int(rng.integers(0, 256))
        try:
            inspect_image(bytes(data), **LIMITS)
        except InputRejected as error:
            assert error.detail


def test_deflate_bomb_inside_idat_is_bounded_by_the_pixel_count():
    """IDAT inflates to exactly what IHDR declares: its cost is the pixel limit's, nothing to check here."""
    raw = b"".join(b"\x00" + b"\x00" * 3 * 6000 for _ in range(6000))  # 6000x6000 RGB, all zero
    idat = zlib.compress(raw, 9)
    ihdr = struct.pack(">IIBBBBB", 6000, 6000, 8, 2, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    assert len(png) < 200_000
    assert inspect_image(png, **LIMITS).pixels == 36_000_000
    assert _reject(png, max_pixels=30_000_000).reason is Reason.TOO_LARGE
