"""Clean strokes drawn from landmarks (eyelids, brows, nose, mouth, jaw) and the person's outline.

Layers are float32 0..1 with 0 = ink, ready to multiply or to use as ink coverage.
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline import regions

SUPERSAMPLE = 4  # sub-pixel precision for cv2 drawing (shift bits = 2)


def _polyline(canvas: np.ndarray, pts: np.ndarray, thickness: float, closed: bool = False) -> None:
    scaled = np.round(np.asarray(pts, np.float32) * SUPERSAMPLE).astype(np.int32)
    cv2.polylines(canvas, [scaled], closed, 255, max(1, int(round(thickness))), cv2.LINE_AA, shift=2)


def smooth_curve(pts: np.ndarray, samples: int = 24) -> np.ndarray:
    """A Catmull-Rom curve through `pts` (n, 2), `samples` points per segment."""
    pts = np.asarray(pts, np.float32)
    if len(pts) < 3:
        return pts
    padded = np.concatenate([pts[:1] * 2 - pts[1:2], pts, pts[-1:] * 2 - pts[-2:-1]])
    t = np.linspace(0.0, 1.0, samples, endpoint=False, dtype=np.float32)[:, None]
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(pts[-1:])
    return np.concatenate(out)


def tapered(canvas: np.ndarray, pts: np.ndarray, width: float, taper: float = 0.35) -> None:
    """Draw a brush stroke along a smooth curve through `pts`: `width` in the middle, thinning to
    `taper` × width at both ends (one antialiased filled polygon)."""
    curve = smooth_curve(pts, 8)
    if len(curve) < 2:
        return
    tangent = np.gradient(curve, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-6)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    t = np.linspace(0.0, 1.0, len(curve), dtype=np.float32)[:, None]
    half = 0.5 * width * (taper + (1.0 - taper) * np.sin(np.pi * t))
    outline = np.concatenate([curve + normal * half, (curve - normal * half)[::-1]])
    cv2.fillPoly(canvas, [np.round(outline * SUPERSAMPLE).astype(np.int32)], 255, cv2.LINE_AA, shift=2)


def face_strokes(landmarks: np.ndarray, shape: tuple[int, int], weight: float = 2.0,
                 eyes: bool = True, jaw: bool = True, nose: bool = True, brows: bool = True) -> np.ndarray:
    """Ink layer with upper eyelids, brow centre lines, the lip parting, the nose base and the jaw."""
    canvas = np.zeros(shape, np.uint8)
    lm = np.asarray(landmarks, np.float32)
    if eyes:
        for upper in (regions.EYE_LEFT_UPPER, regions.EYE_RIGHT_UPPER):
            tapered(canvas, regions.points(lm, upper), 1.6 * weight, taper=0.4)
    for pairs in (regions.BROW_LEFT_MID, regions.BROW_RIGHT_MID) if brows else ():
        mid = np.array([(lm[a, :2] + lm[b, :2]) / 2 for a, b in pairs], np.float32)
        tapered(canvas, mid, 1.1 * weight, taper=0.3)
    tapered(canvas, regions.points(lm, regions.LIPS_INNER_UPPER), 1.1 * weight, taper=0.25)
    if nose:
        base = regions.points(lm, (98, 97, 2, 326, 327))
        tapered(canvas, base, 0.9 * weight, taper=0.2)
    if jaw:
        tapered(canvas, regions.points(lm, regions.JAW[2:-2]), 1.0 * weight, taper=0.1)
    return 1.0 - canvas.astype(np.float32) / 255.0


def chin_stroke(landmarks: np.ndarray, gray: np.ndarray, weight: float = 2.0) -> np.ndarray:
    """Ink layer with the chin line (the middle of the jaw, which stays on the face outline even when
    the head is turned), drawn only where the image has an edge there: a chin hidden by hands, a
    beard or a collar gets no line across them."""
    canvas = np.zeros(gray.shape[:2], np.uint8)
    tapered(canvas, regions.points(landmarks, regions.JAW[6:-6]), weight, taper=0.1)
    g = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    smooth = cv2.GaussianBlur(g, (0, 0), 2.0)
    edge = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    support = np.clip((cv2.dilate(edge, np.ones((7, 7), np.uint8)) - 0.04) / 0.08, 0.0, 1.0)
    return 1.0 - canvas.astype(np.float32) / 255.0 * support


def silhouette(alpha: np.ndarray, width: int = 3) -> np.ndarray:
    """Ink layer with an outline just outside the person's mask."""
    inside = (alpha > 0.5).astype(np.uint8)
    band = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))) - inside
    return 1.0 - np.clip(cv2.GaussianBlur(band.astype(np.float32), (0, 0), 0.7) * 1.3, 0.0, 1.0)
