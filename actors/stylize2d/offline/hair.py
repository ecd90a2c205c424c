"""Hair as drawn hair: the person's hair silhouette (segmentation around the face, minus skin, connected
to the crown), flat-shaded in two tones of their own median hair colour.
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline import cel, regions
from actors.stylize2d.offline.filters import wide_blur


def hair_weight(person: np.ndarray, skin_weight: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """0..1 weight of hair (or headwear): on the person, not skin, not the face below the brows, and
    connected to what lies above the brows (long hair falls to the shoulders, clothes do not start
    above the brows). Soft-edged."""
    h, w = skin_weight.shape
    lm = np.asarray(landmarks, np.float32)[:, :2]
    p = np.asarray(person, np.float32)
    p = p / 255.0 if p.max() > 1.0 else p
    candidate = (p > 0.5) & (skin_weight < 0.5)
    face = regions.face_area(lm, (h, w)) > 0
    brow_y = int(np.clip(min(lm[105, 1], lm[334, 1]), 0, h))
    face[:brow_y] = False
    candidate &= ~face
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros((h, w), np.float32)
    top = np.unique(labels[:brow_y][candidate[:brow_y]])
    hair = np.isin(labels, top[top > 0])
    return cv2.GaussianBlur(hair.astype(np.float32), (0, 0), 2.0)


def hair_colour(lab: np.ndarray, weight: np.ndarray, detail: float) -> np.ndarray | None:
    """(h, w, 3) Lab of flat-shaded hair in the person's median hair colour, or None when there is too
    little hair to shade: a base tone and a shadow tone (same a*, b*) placed by the photo's broad
    shading (the darker third of the hair), `detail` of the flattened L* kept under them (strands)."""
    inside = weight > 0.5
    if inside.sum() < 400:
        return None
    median = np.median(lab[::2, ::2][inside[::2, ::2]], axis=0).astype(np.float32)
    spread = float(np.clip(0.22 * median[0], 5.0, 12.0))
    shadow = median.copy()
    shadow[0] = max(median[0] - spread, 3.0)
    tones = cel.SkinTones(shadow=shadow, base=median, light=median)
    shading = wide_blur(lab[..., 0], 12.0)
    index = cel.clean_index(cel.tone_index(shading, weight, 0.35, 0.0, softness=2.0), 15)
    out = np.empty_like(lab)
    base = cel.tone_lightness(index, tones)
    out[..., 0] = base + detail * (lab[..., 0] - base)
    out[..., 1:] = median[None, None, 1:] + 0.3 * (lab[..., 1:] - median[None, None, 1:])
    return out
