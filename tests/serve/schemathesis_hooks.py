"""Schemathesis hooks for the contract test (`SCHEMATHESIS_HOOKS=tests.serve.schemathesis_hooks`).

The schema says the `photo` part is a JPEG, PNG or WebP image (multipart `encoding`); schemathesis
cannot draw a real image from that, so each media type gets a strategy over real images of that type
built here: a face photo, a photo without a face, and small and odd-sized pictures.
"""
from __future__ import annotations

import io

import numpy as np
import schemathesis
from hypothesis import strategies as st


def _images(fmt: str) -> list[bytes]:
    from PIL import Image
    from skimage import data

    pictures = [data.astronaut()[::4, ::4], np.full((48, 64, 3), 200, np.uint8),
                np.random.default_rng(0).integers(0, 255, (33, 257, 3), dtype=np.uint8)]
    out = []
    for rgb in pictures:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


for media_type, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/webp", "WEBP")):
    schemathesis.openapi.media_type(media_type, st.sampled_from(_images(fmt)))
