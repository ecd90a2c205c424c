"""dataset.decode: formats, rejections with exact reasons, and every pixel-mode conversion."""
from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from dataset.decode import content_id, decode_image, sniff_format
from dataset.reasons import InputRejected, Reason
from tests.memory import traced_peak


def _rgb(height=64, width=80, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _reject(data: bytes, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_image(data, **kwargs)
    return caught.value


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------ formats


@pytest.mark.parametrize("fmt, options", [("PNG", {}), ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {})])
def test_lossless_formats_decode_exactly(fmt, options):
    rgb = _rgb()
    decoded = decode_image(_save(Image.fromarray(rgb), fmt, **options))
    assert decoded.dtype == np.uint8 and decoded.shape == rgb.shape
    np.testing.assert_array_equal(decoded, rgb)


def test_jpeg_decodes_close_to_the_original():
    smooth = np.zeros((96, 128, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 128)[None, :]
    smooth[..., 1] = np.linspace(0, 255, 96)[:, None]
    smooth[..., 2] = 90
    decoded = decode_image(_save(Image.fromarray(smooth), "JPEG", quality=95))
    assert decoded.shape == smooth.shape
    assert np.abs(decoded.astype(int) - smooth).mean() < 2.0


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "WEBP"),
        (b"II*\x00\x08\0\0\0", "TIFF"),
        (b"MM\x00*\0\0\0\x08", "TIFF"),
        (b"GIF89a", "GIF"),
        (b"\0\0\0\x18ftypheic", "HEIC"),
        (b"\0\0\0\x1cftypavif", "AVIF"),
        (b"\0\0\0\x18ftypisom", None),  # an MP4 video
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
        (b"\xef\xbb\xbf<?xml version='1.0'?>\n<svg/>", "SVG"),
        (b"<!DOCTYPE html><html></html>", None),
        (b"%PDF-1.7", None),
        (b"8BPS\0\1", "PSD"),
        (b"P6\n4 4\n255\n", "PNM"),
    ],
)
def test_sniff_format_reads_magic_bytes(head, expected):
    data = head + b"\0" * 40 if expected == "BMP" else head
    assert sniff_format(data) == expected


def test_bmp_is_sniffed_from_a_real_file():
    assert sniff_format(_save(Image.fromarray(_rgb()), "BMP")) == "BMP"


# ------------------------------------------------------------------------------------- rejections


def test_zero_bytes_is_unreadable():
    error = _reject(b"")
    assert error.reason is Reason.UNREADABLE and "0 bytes" in error.detail


@pytest.mark.parametrize("data", [b"just some text\n", b"<!DOCTYPE html><p>hi</p>", b"%PDF-1.4 ...", b"\0\0\0\x18ftypisom\0\0"])
def test_non_images_are_not_an_image(data):
    assert _reject(data).reason is Reason.NOT_AN_IMAGE


@pytest.mark.parametrize(
    "data, name",
    [
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64, "HEIC"),
        (b"\0\0\0\x1cftypavif\0\0\0\0avifmif1" + b"\0" * 64, "AVIF"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG"),
    ],
)
def test_known_but_unsupported_formats(data, name):
    error = _reject(data)
    assert error.reason is Reason.UNSUPPORTED_FORMAT and name in error.detail


def test_gif_is_refused_even_when_it_decodes():
    frames = [Image.fromarray(_rgb(seed=1)), Image.fromarray(_rgb(seed=2))]
    gif = _save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    error = _reject(gif)
    assert error.reason is Reason.UNSUPPORTED_FORMAT and "GIF" in error.detail


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_data_is_truncated(fmt):
    data = _save(Image.fromarray(_rgb(256, 256)), fmt)
    error = _reject(data[: len(data) // 2])
    assert error.reason is Reason.TRUNCATED and fmt in error.detail


def test_corrupt_stream_is_unreadable_not_truncated():
    ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"garbage" * 40) + _png_chunk(b"IEND", b"")
    assert _reject(png).reason is Reason.UNREADABLE


def test_png_header_claiming_100k_by_100k_is_too_large_without_allocating():
    data = _png_header_only(100_000, 100_000)
    error, peak = traced_peak(lambda: _reject(data))
    assert error.reason is Reason.TOO_LARGE
    assert peak < 5 << 20, f"decoding a header allocated {peak} bytes"


def test_max_pixels_is_checked_from_the_header():
    data = _save(Image.fromarray(_rgb(100, 120)), "PNG")
    error = _reject(data, max_pixels=10_000)
    assert error.reason is Reason.TOO_LARGE and "120x100" in error.detail
    assert decode_image(data, max_pixels=12_000).shape == (100, 120, 3)


def test_pil_bomb_warning_becomes_too_large_and_does_not_leak():
    limit_before = Image.MAX_IMAGE_PIXELS
    data = _png_header_only(10_000, 10_000)  # 100 M pixels: above PIL's warning limit, below its error limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = _reject(data, max_pixels=500_000_000)
    assert error.reason is Reason.TOO_LARGE
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == limit_before


@pytest.mark.parametrize("size", [(1, 1), (31, 400), (400, 20)])
def test_small_images_are_too_small(size):
    width, height = size
    error = _reject(_save(Image.fromarray(_rgb(height, width)), "PNG"))
    assert error.reason is Reason.TOO_SMALL and f"{width}x{height}" in error.detail


def test_min_side_is_a_parameter():
    data = _save(Image.fromarray(_rgb(20, 20)), "PNG")
    assert decode_image(data, min_side=16).shape == (20, 20, 3)


@pytest.mark.parametrize("kwargs", [{"max_pixels": 0}, {"min_side": 0}])
def test_invalid_limits_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        decode_image(b"x", **kwargs)


# ------------------------------------------------------------------------------------ orientation

_UNDO = {  # what exif_transpose applies, inverted, to store an image that displays as the original
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(_UNDO))
def test_exif_orientation_is_applied(orientation):
    upright = _rgb(48, 80, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = Image.fromarray(upright).transpose(_UNDO[orientation])
    decoded = decode_image(_save(stored, "PNG", exif=exif.tobytes()))
    np.testing.assert_array_equal(decoded, upright)


def test_corrupt_exif_is_ignored():
    rgb = _rgb(64, 64)
    garbage = b"Exif\x00\x00" + np.random.default_rng(3).integers(0, 256, 30_000, dtype=np.uint8).tobytes()
    reference = decode_image(_save(Image.fromarray(rgb), "JPEG", quality=95))
    decoded = decode_image(_save(Image.fromarray(rgb), "JPEG", quality=95, exif=garbage))
    np.testing.assert_array_equal(decoded, reference)


def test_exif_ifd_claiming_65535_entries_is_ignored():
    rgb = _rgb(64, 96)
    entry = struct.pack("<HHII", 0x010F, 2, 0xFFFFFFF0, 0x7FFFFFF0)
    bomb = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + entry * 10
    decoded = decode_image(_save(Image.fromarray(rgb), "PNG", exif=bomb))
    np.testing.assert_array_equal(decoded, rgb)


# ------------------------------------------------------------------------------------ conversions


def test_greyscale_is_replicated_to_three_channels():
    grey = _rgb()[..., 0]
    decoded = decode_image(_save(Image.fromarray(grey, "L"), "PNG"))
    for channel in range(3):
        np.testing.assert_array_equal(decoded[..., channel], grey)


def test_one_bit_images_become_black_and_white():
    bits = (np.indices((40, 40)).sum(axis=0) % 2).astype(bool)
    decoded = decode_image(_save(Image.fromarray(bits), "PNG"))
    np.testing.assert_array_equal(decoded[..., 1], np.where(bits, 255, 0))


def test_rgba_is_composited_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (200, 40, 10)
    rgba[:, :10, 3] = 0  # fully transparent -> white
    rgba[:, 10:20, 3] = 128  # half -> halfway to white
    rgba[:, 20:, 3] = 255  # opaque -> the colour
    decoded = decode_image(_save(Image.fromarray(rgba, "RGBA"), "PNG")).astype(int)
    np.testing.assert_array_equal(decoded[0, 0], (255, 255, 255))
    expected_half = np.rint(np.array([200, 40, 10]) * 128 / 255 + 255 * (1 - 128 / 255))
    np.testing.assert_array_equal(decoded[0, 15], expected_half)
    np.testing.assert_array_equal(decoded[0, 30], (200, 40, 10))


def test_grey_with_alpha_is_composited_on_white():
    la = np.zeros((40, 40, 2), np.uint8)
    la[..., 0] = 60
    la[:, 20:, 1] = 255
    decoded = decode_image(_save(Image.fromarray(la, "LA"), "PNG"))
    np.testing.assert_array_equal(decoded[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(decoded[0, 30], (60, 60, 60))


def test_palette_transparency_becomes_white():
    indices = np.zeros((40, 40), np.uint8)
    indices[:, 20:] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    decoded = decode_image(_save(image, "PNG", transparency=0))
    np.testing.assert_array_equal(decoded[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(decoded[0, 30], (200, 100, 50))


def test_palette_without_transparency_keeps_its_colours():
    indices = np.zeros((40, 40), np.uint8)
    indices[:, 20:] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    decoded = decode_image(_save(image, "PNG"))
    np.testing.assert_array_equal(decoded[0, 0], (10, 20, 30))


def test_cmyk_jpeg_converts_back_to_its_rgb():
    smooth = np.zeros((64, 64, 3), np.uint8)
    smooth[..., 0] = np.linspace(30, 220, 64)[None, :]
    smooth[..., 1] = 120
    smooth[..., 2] = np.linspace(220, 30, 64)[:, None]
    data = _save(Image.fromarray(smooth).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    decoded = decode_image(data)
    assert np.abs(decoded.astype(int) - smooth).mean() < 4.0


def test_sixteen_bit_grey_is_scaled_by_its_range_not_clipped():
    values = np.array([[0, 257, 1000, 32768, 65535] * 8] * 40, dtype=np.uint16)
    decoded = decode_image(_save(Image.fromarray(values), "PNG"))
    assert Image.open(io.BytesIO(_save(Image.fromarray(values), "PNG"))).mode == "I;16"
    np.testing.assert_array_equal(decoded[0, :5, 0], [0, 1, 4, 128, 255])


def test_sixteen_bit_rgb_tiff_and_png_match_the_eight_bit_original():
    import cv2

    rgb = _rgb(48, 64)
    wide = rgb.astype(np.uint16) * 257
    for ext in (".tiff", ".png"):
        ok, encoded = cv2.imencode(ext, wide[..., ::-1].copy())
        assert ok
        np.testing.assert_array_equal(decode_image(encoded.tobytes()), rgb)


def test_float_tiff_in_unit_range_is_scaled_by_255():
    values = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (40, 1))
    decoded = decode_image(_save(Image.fromarray(values, "F"), "TIFF"))
    np.testing.assert_array_equal(decoded[0, :, 0], np.rint(values[0] * 255).astype(np.uint8))


def test_float_tiff_outside_unit_range_is_scaled_by_min_max_and_nan_is_zero():
    values = np.tile(np.linspace(-5.0, 10.0, 64, dtype=np.float32), (40, 1))
    values[0, 1] = np.nan
    decoded = decode_image(_save(Image.fromarray(values, "F"), "TIFF"))[..., 0]
    assert decoded[1, 0] == 0 and decoded[1, -1] == 255
    assert np.all(np.diff(decoded[1].astype(int)) >= 0)  # monotonic, nothing clipped flat
    assert decoded[0, 1] == round((0 - (-5.0)) / 15.0 * 255)  # NaN treated as 0.0


def test_float_rgb_tiff_decodes_through_the_fallback():
    import cv2

    rgb = _rgb(40, 56)
    uncompressed = [cv2.IMWRITE_TIFF_COMPRESSION, 1]  # OpenCV's default for float RGB is lossy LogLuv
    ok, encoded = cv2.imencode(".tiff", (rgb[..., ::-1] / 255.0).astype(np.float32), uncompressed)
    assert ok
    with pytest.raises(Exception):
        Image.open(io.BytesIO(encoded.tobytes()))  # PIL cannot, so this really exercises the fallback
    np.testing.assert_array_equal(decode_image(encoded.tobytes()), rgb)


def test_float_rgb_tiff_size_is_checked_before_decoding():
    import cv2

    ok, encoded = cv2.imencode(".tiff", np.zeros((40, 56, 3), np.float32))
    assert ok
    error = _reject(encoded.tobytes(), max_pixels=1000)
    assert error.reason is Reason.TOO_LARGE and "56x40" in error.detail


def test_thirty_two_bit_integer_images_use_their_own_range_when_wider_than_16_bits():
    values = (np.arange(40 * 40, dtype=np.int32).reshape(40, 40) * 100_000).astype(np.int32)
    decoded = decode_image(_save(Image.fromarray(values, "I"), "TIFF"))[..., 0]
    assert decoded[0, 0] == 0 and decoded[-1, -1] == 255


def _swapped_primaries_profile() -> bytes:
    """A minimal ICC v2 RGB profile whose red and green colorants are sRGB's green and red."""

    def s15(value: float) -> bytes:
        return struct.pack(">i", round(value * 65536))

    def xyz(x, y, z) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    curve = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", 0x0233) + b"\0\0"  # gamma 2.2
    tags = [
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)),  # sRGB's green primary (D50)
        (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),  # sRGB's red primary (D50)
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
        + b"\0" * 24 + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def test_embedded_icc_profile_is_converted_to_srgb():
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 255  # "red" in the embedded profile is sRGB green
    data = _save(Image.fromarray(rgb), "PNG", icc_profile=_swapped_primaries_profile())
    decoded = decode_image(data).astype(int)
    red, green, _ = decoded[0, 0]
    assert green > 200 and red < 60


def test_srgb_or_broken_icc_profiles_leave_pixels_unchanged():
    from PIL import ImageCms

    rgb = _rgb()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (srgb, b"not a profile at all"):
        np.testing.assert_array_equal(decode_image(_save(Image.fromarray(rgb), "PNG", icc_profile=icc)), rgb)


def test_content_id_is_sha256_hex():
    data = b"\x89PNG some bytes"
    assert content_id(data) == hashlib.sha256(data).hexdigest()
    assert len(content_id(b"")) == 64


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_mutated_files_only_ever_decode_or_raise_input_rejected(fmt):
    rng = np.random.default_rng(len(fmt))
    original = _save(Image.fromarray(_rgb(48, 64)), fmt)
    for _ in range(60):
        data = bytearray(original)
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.25:
            data = data[: int(rng.integers(8, len(data)))]
        try:
            decoded = decode_image(bytes(data))
        except InputRejected as error:
            assert isinstance(error.reason, Reason) and error.detail
        else:
            assert decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3


# ------------------------------------------------------------------------------ no echoed contents

_MARKER = b"QZXJWKVBPYMD"


def _quotes_marker(detail: str) -> bool:
    text = _MARKER.decode()
    return any(text[i : i + 4] in detail for i in range(len(text) - 3))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_details_never_quote_the_files_bytes(fmt):
    rng = np.random.default_rng(99)
    original = _save(Image.fromarray(_rgb(48, 64)), fmt)
    variants = [original[:12] + _MARKER * 8, original[:40] + _MARKER * 8, _MARKER * 8]
    for _ in range(80):
        data = bytearray(original)
        at = int(rng.integers(0, len(data) - len(_MARKER)))
        data[at : at + len(_MARKER)] = _MARKER
        variants.append(bytes(data[: int(rng.integers(at + len(_MARKER), len(data) + 1))]))
    for data in variants:
        try:
            decode_image(data)
        except InputRejected as error:
            assert not _quotes_marker(error.detail), error.detail


def test_safe_error_text_drops_quoted_bytes_and_keeps_the_message():
    from dataset.decode import safe_error_text

    text = safe_error_text(SyntaxError("broken PNG file (chunk b'QZXJ')"))
    assert text.startswith("SyntaxError: broken PNG file") and "QZXJ" not in text
    assert "SECRET" not in safe_error_text(OSError("cannot identify <_io.BytesIO 'SECRET'>\nsecond line SECRET"))
    assert len(safe_error_text(ValueError("x" * 500))) < 140
    assert safe_error_text(MemoryError()) == "MemoryError"


def test_png_chunk_bombs_are_too_large_before_and_after_the_image_data():
    from tests.corpus import png_chunk_bomb

    for kind, after in ((b"iCCP", False), (b"zTXt", False), (b"zTXt", True), (b"iTXt", True)):
        error = _reject(png_chunk_bomb(_rgb(), kind, after_idat=after))
        assert error.reason is Reason.TOO_LARGE, (kind, after)
