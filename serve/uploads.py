"""Checks on an uploaded photo before anything decodes it: size, type from the bytes, pixel count.

The type is sniffed from the leading bytes (the file name and the client's Content-Type are ignored),
and the pixel count is read from the image header, so a decompression bomb is refused without
allocating its pixels.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from dataset.reasons import Reason

# (signature test, media type, file extension, Pillow format name)
_FORMATS = (
    (lambda b: b.startswith(b"\xff\xd8\xff"), "image/jpeg", "jpg", "JPEG"),
    (lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"), "image/png", "png", "PNG"),
    (lambda b: len(b) >= 12 and b[:4] == b"RIFF" and b[8:12] == b"WEBP", "image/webp", "webp", "WEBP"),
)
SUPPORTED_TYPES = tuple(media for _, media, _, _ in _FORMATS)


class UploadRejected(Exception):
    """An upload refused before processing: HTTP status, a stable code and a readable detail."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class UploadInfo:
    media_type: str
    extension: str
    width: int
    height: int


def sniff_media_type(data: bytes) -> tuple[str, str, str] | None:
    """(media type, extension, Pillow format) from the leading bytes, or None when not a supported image."""
    for matches, media, extension, pil_format in _FORMATS:
        if matches(data[:16]):
            return media, extension, pil_format
    return None


def inspect_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> UploadInfo:
    """Validate an upload; raise `UploadRejected` (413 size, 415 type, 422 header/pixels) or return its facts."""
    if len(data) > max_bytes:
        raise UploadRejected(413, Reason.TOO_LARGE.value, f"The photo is {len(data)} bytes; the limit is {max_bytes} bytes.")
    if not data:
        raise UploadRejected(422, Reason.UNREADABLE.value, "The photo is empty (0 bytes).")
    sniffed = sniff_media_type(data)
    if sniffed is None:
        raise UploadRejected(
            415,
            Reason.NOT_AN_IMAGE.value,
            f"The bytes are not a supported image; send one of {', '.join(SUPPORTED_TYPES)} (the file name is ignored).",
        )
    media_type, extension, pil_format = sniffed
    readings = _check_structure(data)
    width, height = max([_header_size(data, pil_format), *readings], key=lambda size: size[0] * size[1])
    if width * height > max_pixels:
        raise UploadRejected(
            422,
            Reason.TOO_LARGE.value,
            f"The image header declares {width}x{height} = {width * height} pixels; the limit is {max_pixels}.",
        )
    return UploadInfo(media_type, extension, width, height)


def _check_structure(data: bytes) -> tuple[tuple[int, int], ...]:
    """The decoding guard's header checks (`dataset.image_checks`): scan bombs, chunk bombs (422 with the
    guard's reason code: `too_large`, `decode_limit`, ...); returns every size a decoder may read."""
    import sys

    from dataset.image_checks import inspect_image
    from dataset.reasons import InputRejected

    try:
        return inspect_image(data, max_pixels=sys.maxsize, min_side=1).sizes  # sizes are judged by the caller
    except InputRejected as rejected:
        raise UploadRejected(422, rejected.reason.value, f"The photo was refused before decoding: {rejected.detail}.") from None


def _header_size(data: bytes, pil_format: str) -> tuple[int, int]:
    """Width and height from the header only (Pillow's `open` is lazy: it parses headers, not pixels)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=[pil_format]) as image:
            return int(image.width), int(image.height)
    except Image.DecompressionBombError as error:  # Pillow's own hard limit, far above ours
        raise UploadRejected(422, Reason.TOO_LARGE.value, f"The image header declares too many pixels ({error}).") from None
    except Exception as error:  # noqa: BLE001 - any header parse failure means an unreadable file
        from dataset.decode import safe_error_text  # never quotes the file's bytes

        raise UploadRejected(
            422, Reason.UNREADABLE.value, f"The {pil_format} header cannot be read: {safe_error_text(error)}"
        ) from None
