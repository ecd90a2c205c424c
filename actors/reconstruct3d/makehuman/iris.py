"""The iris colour of a photo, from MediaPipe's iris landmarks (468–477).

Per eye: the iris is the disc around its centre landmark (468 / 473) with the mean distance to its
four rim landmarks as radius. Only the pixels of the annulus between the pupil and the rim that lie
inside the eye opening (the 16-point eyelid contour) count, minus the brightest (catch-lights) and
darkest (lash shadow, pupil) fifth; the colour is their median over both eyes. An eye that is shut
or too small in the crop gives no pixels; with none at all the result is not `found` and carries a
dark brown, the most common iris colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# (iris centre, rim landmarks, eyelid contour) per eye; 468 is the eye on the image's left.
EYES = (
    (468, (469, 470, 471, 472), (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)),
    (473, (474, 475, 476, 477), (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)),
)
ANNULUS = (0.35, 0.9)  # share of the iris radius: inside the pupil's edge, short of the dark limbal ring
TRIM = (0.2, 0.8)  # luminance quantiles kept
MIN_PIXELS = 12
DEFAULT_IRIS_RGB = np.array([72.0, 48.0, 34.0], np.float32)  # dark brown


@dataclass(frozen=True)
class IrisSample:
    rgb: np.ndarray  # (3,) float32 sRGB 0..255
    found: bool
    pixels: int  # pixels the colour comes from


def measure_iris(crop: np.ndarray, landmarks: np.ndarray) -> IrisSample:
    """The median iris colour of both eyes in an aligned crop (see the module docstring)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < 478:
        raise ValueError(f"landmarks must be (478, 2 or 3) with the iris points, got {landmarks.shape}.")
    height, width = crop.shape[:2]
    chosen = []
    for centre, rim, lids in EYES:
        middle = landmarks[centre, :2]
        radius = float(np.linalg.norm(landmarks[list(rim), :2] - middle, axis=1).mean())
        if radius < 2.0:
            continue
        x0, y0 = max(int(middle[0] - radius) - 1, 0), max(int(middle[1] - radius) - 1, 0)
        x1, y1 = min(int(middle[0] + radius) + 2, width), min(int(middle[1] + radius) + 2, height)
        if x1 <= x0 or y1 <= y0:
            continue
        opening = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(opening, [np.round(landmarks[list(lids), :2] - (x0, y0)).astype(np.int32)], 1)
        rows, cols = np.mgrid[y0:y1, x0:x1]
        distance = np.hypot(cols + 0.5 - middle[0], rows + 0.5 - middle[1]) / radius
        inside = (opening > 0) & (distance >= ANNULUS[0]) & (distance <= ANNULUS[1])
        chosen.append(crop[y0:y1, x0:x1][inside].reshape(-1, 3).astype(np.float32))
    pixels = np.concatenate(chosen) if chosen else np.zeros((0, 3), np.float32)
    if len(pixels) < MIN_PIXELS:
        return IrisSample(DEFAULT_IRIS_RGB.copy(), False, len(pixels))
    luminance = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    low, high = np.quantile(luminance, TRIM)
    kept = pixels[(luminance >= low) & (luminance <= high)]
    return IrisSample(np.median(kept, axis=0).astype(np.float32), True, len(kept))
