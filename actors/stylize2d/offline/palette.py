"""Flat colour for everything that is not skin (hair, clothes, glasses, jewellery): lightness bands
anchored on the region's own median and a k-means palette of the person's colours (fixed seed).
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline.filters import assign, kmeans_lab, sample_pixels

PALETTE_SIZE = 6  # free k-means colours besides the reserved skin colour


def palette_chroma(lab: np.ndarray, where: np.ndarray, skin: np.ndarray, punch: float,
                   size: int = PALETTE_SIZE) -> np.ndarray:
    """(h, w, 2) a*, b* posterised to a k-means palette of the person's colours (fixed seed).

    The skin's median colour is a reserved palette entry, so skin-coloured areas outside the face
    (ears, hands) land on the exact skin chroma instead of a nearby cluster mean. `punch` scales the
    chroma of the free entries (1 = as measured). Falls back to the input chroma when `where` is
    nearly empty.
    """
    if np.count_nonzero(where) <= size * 10:
        return np.ascontiguousarray(lab[..., 1:])
    samples = sample_pixels(lab, where, 3000, seed=0)
    centres = kmeans_lab(samples, size, fixed=np.asarray(skin, np.float32)[None, :], seed=0)
    # Cluster mostly on colour: lightness is banded separately.
    labels = assign(lab, centres, weights=(0.25, 1.0, 1.0))
    labels = cv2.medianBlur(labels, 7)
    chroma = centres[:, 1:].copy()
    chroma[1:] *= punch
    return chroma[labels]
