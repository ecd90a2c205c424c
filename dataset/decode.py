"""Safe image decoding: bytes in, (H, W, 3) uint8 sRGB out, or `InputRejected` with a precise reason.

Policy (one place, so every job treats a file the same way):

- The format is sniffed from the bytes, never from the file name. Supported: JPEG, PNG, WebP, BMP,
  TIFF. Multi-frame files (APNG, animated WebP, multi-page TIFF) give their first frame.
- GIF is refused as `unsupported_format`: it is a palette animation format, not a photo format, and
  picking a frame would hide that from the user. HEIC/HEIF, AVIF, SVG, JPEG 2000, JPEG XL, PSD and
  PNM are `unsupported_format` too. Zero bytes is `unreadable`; anything else (text, HTML, PDF,
  video, random bytes) is `not_an_image`.
- Size is judged from the header before any pixel is decoded: more than `max_pixels` is
  `too_large`, a side shorter than `min_side` is `too_small`. PIL's own decompression-bomb guard
  (error and warning) is caught per call and reported as `too_large`; no global setting is changed
  (the warning is caught with `warnings.catch_warnings`, which Python scopes per process: decode
  from one thread per process, as Ray actors and tasks do).
- Data that ends early is `truncated`; a stream the decoder cannot make sense of is `unreadable`.
- EXIF orientation is applied (a corrupt EXIF block is ignored, not fatal). An embedded ICC
  profile other than sRGB is converted to sRGB (skin-tone measurements assume sRGB).
- Conversions to 8-bit RGB: greyscale is replicated; CMYK goes through its ICC profile when it has
  one, else PIL's conversion (Adobe-inverted CMYK handled by PIL); alpha (RGBA, LA, palette with
  transparency) is composited on white; 16-bit data is scaled by its nominal range (/257), 32-bit
  integer data by 65535 when it fits 16 bits else by its own min..max; float data in [0, 1] is
  scaled by 255, other float data by its own min..max (NaN/inf become 0). Nothing is clipped.
"""
from __future__ import annotations

import hashlib
import io
import struct
import warnings

import numpy as np

from dataset.reasons import InputRejected, Reason

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MIN_SIDE = 32

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")

_HEIF_BRANDS = {
    b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"hevx": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
    b"hevm": "HEIC", b"hevs": "HEIC", b"mif1": "HEIF", b"mif2": "HEIF", b"msf1": "HEIF",
    b"avif": "AVIF", b"avis": "AVIF",
}


def content_id(data: bytes) -> str:
    """The stable id of an input: sha256 of its bytes, hex."""
    return hashlib.sha256(data).hexdigest()


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


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE
) -> np.ndarray:
    """Decode `data` to an (H, W, 3) uint8 sRGB array, upright; raise `InputRejected` otherwise."""
    if max_pixels <= 0:
        raise ValueError(f"`max_pixels` must be positive, got {max_pixels}.")
    if min_side < 1:
        raise ValueError(f"`min_side` must be at least 1, got {min_side}.")
    if len(data) == 0:
        raise InputRejected(Reason.UNREADABLE, "empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise InputRejected(Reason.NOT_AN_IMAGE, f"not a recognised image format (starts with {data[:8]!r})")
    if fmt not in SUPPORTED_FORMATS:
        raise InputRejected(
            Reason.UNSUPPORTED_FORMAT, f"{fmt} images are not supported (supported: {', '.join(SUPPORTED_FORMATS)})"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        bomb = [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        if bomb:
            raise InputRejected(Reason.TOO_LARGE, f"{fmt} header: {bomb[0].message}")
    except Image.DecompressionBombError as error:
        raise InputRejected(Reason.TOO_LARGE, f"{fmt} header: {error}") from None
    except UnidentifiedImageError:
        if fmt == "TIFF":
            return _decode_tiff_fallback(data, max_pixels=max_pixels, min_side=min_side)
        raise InputRejected(Reason.UNREADABLE, f"corrupt or truncated {fmt} header") from None
    except OSError as error:
        raise _load_error(fmt, error) from None
    with image:
        _check_size(fmt, *image.size, max_pixels=max_pixels, min_side=min_side)
        try:
            image.load()
        except Image.DecompressionBombError as error:
            raise InputRejected(Reason.TOO_LARGE, f"{fmt}: {error}") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
            raise _load_error(fmt, error) from None
        image = _apply_exif_orientation(image)
        try:
            return _to_rgb8(image)
        except ValueError as error:  # PIL has no conversion for this mode (LAB, HSV, ...)
            raise InputRejected(Reason.UNSUPPORTED_FORMAT, f"{fmt} pixel mode {image.mode}: {error}") from None


def _check_size(fmt: str, width: int, height: int, *, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise InputRejected(
            Reason.TOO_LARGE, f"{fmt} header claims {width}x{height} = {width * height:,} pixels (limit {max_pixels:,})"
        )
    if min(width, height) < min_side:
        raise InputRejected(Reason.TOO_SMALL, f"{width}x{height} pixels: shorter side below {min_side}")


def _load_error(fmt: str, error: Exception) -> InputRejected:
    message = str(error)
    if "truncated" in message.lower() or isinstance(error, EOFError):
        return InputRejected(Reason.TRUNCATED, f"{fmt} data ends early: {message}")
    return InputRejected(Reason.UNREADABLE, f"{fmt} data could not be decoded: {message or type(error).__name__}")


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
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))
    if mode in ("RGB", "CMYK"):
        image = _to_srgb(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


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
    grey = _scale_to_unit(values, mode)
    grey8 = np.rint(grey * 255.0).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey8[..., None], 3, axis=2))


def _scale_to_unit(values: np.ndarray, mode: str) -> np.ndarray:
    """Map integer or float samples to [0, 1] by their nominal range (see the module docstring)."""
    values = values.astype(np.float64)
    if mode.startswith("I;16"):
        return values / 65535.0
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    if not finite.any():
        return np.zeros_like(values)
    low, high = float(values[finite].min()), float(values[finite].max())
    if mode == "F" and low >= 0.0 and high <= 1.0:
        return values
    if mode == "I" and low >= 0 and high <= 65535:
        return values / 65535.0
    if high == low:
        return np.zeros_like(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _decode_tiff_fallback(data: bytes, *, max_pixels: int, min_side: int) -> np.ndarray:
    """TIFF variants PIL cannot open (float RGB, ...): size from our own header read, pixels from OpenCV."""
    width, height = _tiff_size(data)
    _check_size("TIFF", width, height, max_pixels=max_pixels, min_side=min_side)
    import cv2

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputRejected(Reason.UNSUPPORTED_FORMAT, "TIFF variant (compression or sample format) not supported")
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # extra sample of a float/16-bit TIFF: dropped, documented as opaque
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV is BGR
    if array.dtype == np.uint8:
        rgb = array if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
        return np.ascontiguousarray(rgb)
    mode = "I;16" if array.dtype == np.uint16 else ("F" if array.dtype.kind == "f" else "I")
    unit = _scale_to_unit(array, mode)
    rgb8 = np.rint(unit * 255.0).astype(np.uint8)
    if rgb8.ndim == 2:
        rgb8 = np.repeat(rgb8[..., None], 3, axis=2)
    return np.ascontiguousarray(rgb8)


def _tiff_size(data: bytes) -> tuple[int, int]:
    """ImageWidth and ImageLength of the first IFD of a classic TIFF, without decoding anything."""
    try:
        order = "<" if data[:2] == b"II" else ">"
        if struct.unpack(order + "H", data[2:4])[0] != 42:
            raise InputRejected(Reason.UNSUPPORTED_FORMAT, "BigTIFF variant not supported")
        offset = struct.unpack(order + "I", data[4:8])[0]
        count = struct.unpack(order + "H", data[offset : offset + 2])[0]
        size: dict[int, int] = {}
        for index in range(count):
            entry = data[offset + 2 + 12 * index : offset + 14 + 12 * index]
            tag, kind, _, value = struct.unpack(order + "HHI4s", entry)
            if tag in (256, 257):
                size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[: 2 if kind == 3 else 4])[0]
        return size[256], size[257]
    except (struct.error, KeyError):
        raise InputRejected(Reason.TRUNCATED, "TIFF header ends before the image size") from None
