"""The whole visible skin of the face and neck, for recolouring (not for measuring).

Tone is measured on the strict skin mask (face oval minus eyes, brows, lips, nostrils). Recolouring
only that mask would leave a seam at the forehead, ears and neck, so styles and the tone guard paint a
wider, soft region: the face oval and the neck below the jaw, where the colour is close to the
measured skin colour.
"""
from __future__ import annotations

import cv2
import numpy as np

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
JAW_SIDES = (132, 361)  # where the neck band starts on each side
HOLES = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),  # eye openings
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95),  # mouth opening
)


def fill_landmark_hull(mask: np.ndarray, landmarks: np.ndarray) -> None:
    """In place: 255 over the convex hull of every landmark (on a turned head it holds the visible cheek
    and nose that the face oval's far side, running behind the nose, leaves out)."""
    points = np.round(np.asarray(landmarks, np.float32)[:, :2]).astype(np.int32)
    cv2.fillConvexPoly(mask, cv2.convexHull(points), 255)


def fill_neck_band(mask: np.ndarray, landmarks: np.ndarray, inset: float) -> None:
    """In place: 255 from the jaw's sides (JAW_SIDES) down to the bottom of the image, `inset` px in from
    each side (negative: that far beyond it)."""
    left, right = np.asarray(landmarks, np.float32)[list(JAW_SIDES), :2]
    bottom = mask.shape[0] + 1
    band = np.array([[left[0] + inset, left[1]], [right[0] - inset, right[1]],
                     [right[0] - inset, bottom], [left[0] + inset, bottom]], np.float32)
    cv2.fillPoly(mask, [np.round(band).astype(np.int32)], 255)


def face_and_neck(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/255 prior: the face oval, slightly grown, and the hull of every landmark, plus a neck band
    below the jaw, minus the eye and mouth openings.

    The hull matters on a turned head: there the far side of the oval runs behind the nose and bends
    inward, and the visible cheek and nose in front of it would otherwise count as not-face (a style
    would paint them as background). On a frontal face the oval already holds every landmark.
    """
    lm = np.asarray(landmarks, np.float32)[:, :2]
    h, w = shape
    prior = np.zeros((h, w), np.uint8)
    oval = lm[list(FACE_OVAL)]
    centre = oval.mean(axis=0)
    cv2.fillPoly(prior, [np.round(centre + (oval - centre) * 1.04).astype(np.int32)], 255)
    fill_landmark_hull(prior, lm)
    left, right = lm[JAW_SIDES[0]], lm[JAW_SIDES[1]]
    fill_neck_band(prior, lm, inset=0.12 * float(right[0] - left[0]))
    for hole in HOLES:
        cv2.fillPoly(prior, [np.round(lm[list(hole)]).astype(np.int32)], 0)
    return prior


def skin_region(lab: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray,
                person: np.ndarray | None = None, chroma_tolerance: float | None = None,
                lightness_tolerance: float = 32.0, feather: float = 3.0) -> np.ndarray:
    """0..1 float32 weight of pixels that are skin: inside the face-and-neck prior, close in chroma
    (a*, b*) and not too far in L* from `skin_lab` (the measured median skin colour).

    `person` (0..1 or 0..255) limits the region to the person's segmentation when given. The chroma
    tolerance defaults to 35% of the skin's own chroma (at least 10), as shading shifts a* b* with it.
    """
    h, w = lab.shape[:2]
    if chroma_tolerance is None:
        chroma_tolerance = max(10.0, 0.35 * float(np.hypot(skin_lab[1], skin_lab[2])))
    prior = face_and_neck(landmarks, (h, w)).astype(np.float32) / 255.0
    a, b = np.ascontiguousarray(lab[..., 1]), np.ascontiguousarray(lab[..., 2])
    chroma = np.sqrt((a - skin_lab[1]) ** 2 + (b - skin_lab[2]) ** 2)
    lightness = np.abs(lab[..., 0] - skin_lab[0])
    close = np.clip(1.0 - (chroma - chroma_tolerance) / chroma_tolerance, 0.0, 1.0)
    close *= np.clip(1.0 - (lightness - lightness_tolerance) / 10.0, 0.0, 1.0)
    weight = prior * close
    if person is not None:
        p = np.asarray(person, np.float32)
        weight *= p / 255.0 if p.max() > 1.0 else p
    if feather > 0:
        # Soft borders, but thin structures that are clearly not skin (glasses frames) stay out.
        weight = np.minimum(cv2.GaussianBlur(weight, (0, 0), feather), close)
    return weight
