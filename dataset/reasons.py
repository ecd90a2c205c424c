"""Status and reason codes carried by every output row.

Every input photo ends in exactly one row. `status` says whether it went through; `reason` says
why not (empty for `ok`). Codes are short, stable strings: reports and tests group by them.
"""
from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    OK = "ok"
    REJECTED = "rejected"  # the input itself is unusable (bad file, no face, ...)
    FAILED = "failed"  # the input was fine but a processing stage raised


class Reason(str, Enum):
    # Reading and decoding.
    UNREADABLE = "unreadable"  # cannot be read (I/O error, broken archive member, zero bytes)
    NOT_AN_IMAGE = "not_an_image"  # bytes are not an image in a supported format
    UNSUPPORTED_FORMAT = "unsupported_format"  # an image format we have no decoder for (HEIC, SVG)
    TRUNCATED = "truncated"  # an image whose data ends early
    TOO_SMALL = "too_small"  # smaller than the minimum side length
    TOO_LARGE = "too_large"  # more pixels, bytes or inflated metadata than the decompression-bomb guards allow
    DECODE_LIMIT = "decode_limit"  # decoding would take (or took) more time or memory than its budget (scan bombs)
    UNSAFE_PATH = "unsafe_path"  # a name that may not be used: escapes its folder, a link, a special file, a NUL byte
    # Faces.
    NO_FACE = "no_face"
    FACE_TOO_SMALL = "face_too_small"
    LANDMARKS_FAILED = "landmarks_failed"  # a face was detected but the mesh could not be fitted
    # Generation.
    ENGINE_ERROR = "engine_error"
    RECONSTRUCTION_ERROR = "reconstruction_error"
    INTERNAL_ERROR = "internal_error"


class InputRejected(Exception):
    """An input that cannot be processed, with a reason code and a human-readable detail."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
