"""Open a closed mouth in an aligned face crop (test helper): drop the jaw, show the mouth's inside.

Below the lips' meeting line the face is pulled down by a smooth field (largest at the chin's
centre, zero at the mouth corners and above the line, fading out under the chin), so the lower lip
and chin move down intact; the gap that opens is painted as a dark mouth with a row of upper teeth.
"""
from __future__ import annotations

import cv2
import numpy as np

UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_INSIDE, TEETH = (45, 18, 20), (225, 220, 205)


def open_mouth(crop: np.ndarray, landmarks: np.ndarray, opening: float = 0.6) -> np.ndarray:
    """`crop` with its mouth opened by `opening` × the mouth's width at the centre."""
    height, width = crop.shape[:2]
    points = np.asarray(landmarks, dtype=np.float64)[:, :2]
    line = 0.5 * (points[list(UPPER_INNER)] + points[list(LOWER_INNER)])
    order = np.argsort(line[:, 0])
    left, right = points[78, 0], points[308, 0]
    centre, half = 0.5 * (left + right), 0.5 * (right - left)
    drop = opening * 2.0 * half
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    lips = np.interp(xs, line[order, 0], line[order, 1])
    below = ys - lips
    spread = half + 0.9 * np.clip(below, 0.0, None)
    weight = np.clip(1.0 - np.abs(xs - centre) / spread, 0.0, 1.0) ** 0.7
    chin = points[152, 1]
    fade = np.where(ys <= chin, 1.0, np.clip(1.0 - (ys - chin) / (1.2 * drop), 0.0, 1.0))
    source_y = ys - np.where(below > 0, drop * weight * fade, 0.0)
    out = cv2.remap(crop, xs.astype(np.float32), source_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gap = (below > 0) & (source_y < lips)
    teeth = gap & (below < 0.22 * drop) & (np.abs(xs - centre) < 0.75 * half)
    out[gap] = MOUTH_INSIDE
    out[teeth] = TEETH
    edge = cv2.GaussianBlur(gap.astype(np.float32), (5, 5), 1.2)
    soft = (edge > 0.05) & (edge < 0.95)
    out[soft] = cv2.GaussianBlur(out, (3, 3), 0.8)[soft]
    return out
