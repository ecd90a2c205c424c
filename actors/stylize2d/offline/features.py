"""The person's own lips, found in the photo inside the landmark lip contours and redrawn as a clean flat
shape: a drawn style keeps their shape and colour instead of pasting a generic mouth.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from actors.stylize2d.offline import regions


@dataclass(frozen=True)
class Shape:
    """A soft mask (float32 0..1) placed at `origin` (x, y) in the image, with one Lab colour."""

    alpha: np.ndarray
    origin: tuple[int, int]
    colour: np.ndarray

    def paint(self, lab: np.ndarray, opacity: float = 1.0) -> None:
        """Fill the shape with its colour on a float Lab image (in place)."""
        x0, y0 = self.origin
        h, w = self.alpha.shape
        window = lab[y0:y0 + h, x0:x0 + w]
        a = (self.alpha * opacity)[..., None]
        window += (self.colour[None, None, :] - window) * a


def _window(pts: np.ndarray, pad: float, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = shape
    x0, y0 = np.floor(pts.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + pad).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def lip_shape(lab: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray) -> Shape | None:
    """The lips (outer contour minus the mouth opening) in their own median colour, never lighter
    than the skin; None when the lips are outside the image or closed to a line."""
    outer = regions.points(landmarks, regions.LIPS_OUTER)
    inner = regions.points(landmarks, regions.LIPS_INNER)
    x0, y0, x1, y1 = _window(outer, 4, lab.shape[:2])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    offset = np.array([x0, y0], np.float32)
    size = (y1 - y0, x1 - x0)
    outside = regions.fill_mask(size, [outer - offset])
    opening = regions.fill_mask(size, [inner - offset])
    lips = (outside > 0) & (opening == 0)
    if lips.sum() < 8:
        return None
    colour = np.median(lab[y0:y1, x0:x1][lips], axis=0).astype(np.float32)
    colour[0] = min(colour[0], float(skin_lab[0]) - 2.0)
    return Shape(alpha=regions.feather(cv2.subtract(outside, opening), 0.8), origin=(x0, y0), colour=colour)
