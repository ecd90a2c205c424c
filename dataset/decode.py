"""Safe image decoding: bytes in, (H, W, 3) uint8 sRGB out, or `InputRejected` with a precise reason.

Policy (one place, so every job treats a file the same way):

- The format is sniffed from the bytes, never from the file name. Supported: JPEG, PNG, WebP, BMP,
  TIFF. Multi-frame files (APNG, animated WebP, multi-page TIFF) give their first frame.
- GIF is refused as `unsupported_format`: it is a palette animation format, not a photo format, and
  picking a frame would hide that from the user. HEIC/HEIF, AVIF, SVG, JPEG 2000, JPEG XL, PSD and
  PNM are `unsupported_format` too. Zero bytes is `unreadable`; anything else (text, HTML, PDF,
  video, random bytes) is `not_an_image`.
- Before any pixel is decoded, `dataset.image_checks.inspect_image` judges the headers: size as
  *every* library that may decode the file reads it (more than `max_pixels` is `too_large`, a side
  shorter than `min_side` is `too_small`), and work out of proportion to the size (`decode_limit`:
  JPEG scan bombs, PNG chunk floods, large RLE BMPs) or metadata that inflates (`too_large`: PNG
  iCCP/zTXt/iTXt bombs). The size Pillow will allocate is checked again after it opens the file;
  PIL's own decompression-bomb guard (error and warning) is `too_large` too, caught per call (no
  global setting is changed; `warnings.catch_warnings` is per process: decode from one thread per
  process, as Ray actors and tasks do).
- Time and memory: `decode_image` alone bounds the *known* bombs. Untrusted input in a long-lived
  process goes through `dataset.decode_guard.ImageDecoder` (pass it as `decoder=`): a child process
  with an address-space limit and a wall-clock budget per image, killed and restarted when over
  (`decode_limit`).
- Data that ends early is `truncated`; a stream the decoder cannot make sense of is `unreadable`.
  Details never quote file contents: they are our own words, sizes, and library messages with
  anything quoted removed.
- EXIF orientation is applied (a corrupt EXIF block is ignored, not fatal). An embedded ICC
  profile other than sRGB is converted to sRGB (skin-tone measurements assume sRGB).
- Conversions to 8-bit RGB: greyscale is replicated; CMYK goes through its ICC profile when it has
  one, else PIL's conversion (Adobe-inverted CMYK handled by PIL); alpha (RGBA, LA, palette with
  transparency) is composited on white; 16-bit data is scaled by its nominal range (/257), 32-bit
  integer data by 65535 when it fits 16 bits else by its own min..max; float data in [0, 1] is
  scaled by 255, other float data by its own min..max (NaN/inf become 0). Nothing is clipped.
  Conversions work in bands of rows, so their memory stays near the size of the output.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
import warnings

import numpy as np

from dataset.image_checks import SUPPORTED_FORMATS, ImageInfo, check_size, inspect_image, sniff_format
from dataset.reasons import InputRejected, Reason

__all__ = [
    "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE", "SUPPORTED_FORMATS", "ImageInfo", "content_id", "decode_image",
    "inspect_image", "safe_error_text", "sniff_format",
]

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MIN_SIDE = 32
_BAND_VALUES = 1 << 22  # samples converted per band of rows (16 MiB as float32)
_QUOTED = re.compile(r"""b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"|<[^<>]*>""")


def content_id(data: bytes) -> str:
    """The stable id of an input: sha256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def check_limits(max_pixels: int, min_side: int) -> None:
    if max_pixels <= 0:
        raise ValueError(f"`max_pixels` must be positive, got {max_pixels}.")
    if min_side < 1:
        raise ValueError(f"`min_side` must be at least 1, got {min_side}.")


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE, decoder=None
) -> np.ndarray:
    """Decode `data` to an (H, W, 3) uint8 sRGB array, upright; raise `InputRejected` otherwise.

    With `decoder` (a `dataset.decode_guard.ImageDecoder`) the pixels are decoded in its child process,
    bounded in time and memory; without, here, after the structural checks.
    """
    check_limits(max_pixels, min_side)
    if decoder is not None:
        return decoder.decode(data, max_pixels=max_pixels, min_side=min_side)
    info = inspect_image(data, max_pixels=max_pixels, min_side=min_side)
    try:
        return _decode_checked(data, info, max_pixels=max_pixels, min_side=min_side)
    except MemoryError:
        raise InputRejected(Reason.DECODE_LIMIT, "not enough memory to decode this image") from None


def _decode_checked(data: bytes, info: ImageInfo, *, max_pixels: int, min_side: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    fmt = info.format
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
        bomb = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        if bomb:
            raise InputRejected(Reason.TOO_LARGE, f"{fmt} header: {safe_error_text(bomb[0].message)}")
    except Image.DecompressionBombError as error:
        raise InputRejected(Reason.TOO_LARGE, f"{fmt} header: {safe_error_text(error)}") from None
    except UnidentifiedImageError:
        if fmt == "TIFF":
            return _decode_tiff_fallback(data, info, max_pixels=max_pixels, min_side=min_side)
        raise InputRejected(Reason.UNREADABLE, f"corrupt or truncated {fmt} header") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as error:
        raise _load_error(fmt, error) from None
    with image:
        check_size(fmt, *image.size, max_pixels=max_pixels, min_side=min_side)  # the size Pillow allocates
        try:
            image.load()
        except Image.DecompressionBombError as error:
            raise InputRejected(Reason.TOO_LARGE, f"{fmt}: {safe_error_text(error)}") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as error:
            raise _load_error(fmt, error) from None
        image = _apply_exif_orientation(image)
        try:
            return _to_rgb8(image)
        except ValueError as error:  # PIL has no conversion for this mode (LAB, HSV, ...)
            raise InputRejected(Reason.UNSUPPORTED_FORMAT, f"{fmt} pixel mode {image.mode} cannot be converted to RGB") from None


def safe_error_text(error: object, limit: int = 120) -> str:
    """A library's message with anything quoted (where libraries put file bytes) removed, printable, short."""
    text = str(error).splitlines()[0] if str(error) else ""
    text = _QUOTED.sub("…", text)
    text = "".join(c if " " <= c <= "~" or c == "…" else "?" for c in text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def _load_error(fmt: str, error: BaseException) -> InputRejected:
    message = str(error).lower()
    if "decompressed data too large" in message or "too much memory used in text chunks" in message:
        return InputRejected(Reason.TOO_LARGE, f"{fmt} metadata inflates past the decoder's limit")
    if isinstance(error, MemoryError) or "memory" in message:
        return InputRejected(Reason.DECODE_LIMIT, f"{fmt}: not enough memory to decode ({safe_error_text(error)})")
    if "truncated" in message or isinstance(error, EOFError):
        return InputRejected(Reason.TRUNCATED, f"{fmt} data ends early ({safe_error_text(error)})")
    return InputRejected(Reason.UNREADABLE, f"{fmt} data could not be decoded ({safe_error_text(error)})")


def _apply_exif_orientation(image):
    """Rotate/flip per the EXIF orientation tag; a corrupt EXIF block leaves the image as stored."""
    from PIL import ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on corrupt EXIF; we ignore such blocks
            orientation = image.getexif().get(0x0112, 1)
            if orientation not in (2, 3, 4, 5, 6, 7, 8):
                return image
            return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - any EXIF parse failure means "no usable orientation"
        return image


def _to_rgb8(image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _grey_to_rgb8(np.asarray(image), mode)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    if mode in ("RGB", "CMYK"):
        image = _to_srgb(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _bands(rows: int, values_per_row: int):
    """Row slices of about `_BAND_VALUES` samples each: conversions stay near the output's size in memory."""
    step = max(1, _BAND_VALUES // max(1, values_per_row))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for rows in _bands(rgba.shape[0], rgba.shape[1] * 4):
        band = rgba[rows].astype(np.float32)
        alpha = band[..., 3:4] / 255.0
        out[rows] = np.rint(band[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return out


def _to_srgb(image):
    """Convert through an embedded ICC profile to sRGB; images without one (or already sRGB) pass through."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception:  # noqa: BLE001 - a broken profile falls back to the plain conversion
        return image
    try:
        description = (ImageCms.getProfileDescription(profile) or "").lower()
    except Exception:  # noqa: BLE001 - a profile without a description is still usable
        description = ""
    if image.mode == "RGB" and "srgb" in description:
        return image
    try:
        return ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except Exception:  # noqa: BLE001 - a profile lcms cannot use falls back to the plain conversion
        return image


def _grey_to_rgb8(values: np.ndarray, mode: str) -> np.ndarray:
    to_bytes = _byte_scaler(values, mode)
    out = np.empty(values.shape[:2] + (3,), np.uint8)
    for rows in _bands(values.shape[0], values.shape[1]):
        out[rows] = to_bytes(values[rows])[..., None]
    return out


def _byte_scaler(values: np.ndarray, mode: str):
    """A function mapping a band of integer or float samples to uint8 by the whole image's range
    (nominal range for 16-bit; see the module docstring); NaN and inf become 0. Works in float32
    (float64 for float64 data): 8-bit output needs no more."""
    work = np.float64 if values.dtype.itemsize > 4 else np.float32
    if mode.startswith("I;16"):
        low, span = 0.0, 65535.0
    else:
        low, high = _finite_range(values)
        if low > high or (high == low and not _nominal(mode, low, high)):  # nothing finite, or constant
            return lambda band: np.zeros(band.shape, np.uint8)
        if _nominal(mode, low, high):
            low, span = 0.0, (1.0 if mode == "F" else 65535.0)
        else:
            span = high - low
    low, scale = work(low), work(255.0 / span)

    def to_bytes(band: np.ndarray) -> np.ndarray:
        band = band.astype(work)
        if band.dtype.kind == "f" and not np.isfinite(band).all():
            band[~np.isfinite(band)] = 0.0
        band -= low
        band *= scale
        np.clip(band, 0.0, 255.0, out=band)
        return np.rint(band, out=band).astype(np.uint8)

    return to_bytes


def _nominal(mode: str, low: float, high: float) -> bool:
    """Float data in [0, 1] and 32-bit integers that fit 16 bits keep their nominal range."""
    return (mode == "F" and low >= 0.0 and high <= 1.0) or (mode == "I" and low >= 0 and high <= 65535)


def _finite_range(values: np.ndarray) -> tuple[float, float]:
    """(min, max) over finite samples, band by band; (inf, -inf) when there is none."""
    low, high = np.inf, -np.inf
    for rows in _bands(values.shape[0], int(np.prod(values.shape[1:]))):
        band = values[rows]
        if band.dtype.kind == "f":
            finite = np.isfinite(band)
            if not finite.all():
                band = band[finite]
        if band.size:
            low, high = min(low, float(band.min())), max(high, float(band.max()))
    return low, high


def _decode_tiff_fallback(data: bytes, info: ImageInfo, *, max_pixels: int, min_side: int) -> np.ndarray:
    """TIFF variants PIL cannot open (float RGB, ...): pixels from OpenCV (libtiff).

    The size libtiff reads (first copy of each tag) was checked by `inspect_image` along with Pillow's
    (last copy); a TIFF whose headers give no size is refused here rather than decoded blind.
    """
    if not info.sizes:
        raise InputRejected(Reason.TRUNCATED, "TIFF header ends before the image size")
    import cv2

    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise _load_error("TIFF", error) from None
    if array is None:
        raise InputRejected(Reason.UNSUPPORTED_FORMAT, "TIFF variant (compression or sample format) not supported")
    check_size("TIFF", array.shape[1], array.shape[0], max_pixels=max_pixels, min_side=min_side)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # extra sample of a float/16-bit TIFF: dropped, documented as opaque
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV is BGR
    if array.dtype == np.uint8:
        rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
        return np.ascontiguousarray(rgb)
    mode = "I;16" if array.dtype == np.uint16 else ("F" if array.dtype.kind == "f" else "I")
    to_bytes = _byte_scaler(array, mode)
    out = np.empty(array.shape[:2] + (3,), np.uint8)
    for rows in _bands(array.shape[0], int(np.prod(array.shape[1:]))):
        band = to_bytes(array[rows])
        out[rows] = band if band.ndim == 3 else band[..., None]
    return out
