"""Source → crop similarity from the landmarks and the template (`actors.align.template`).

Two methods:
  "eyes" (the default): the eye line sets the rotation, the midpoint of the iris centres goes to the
      template's eye midpoint, and the scale makes the 3D distance between the iris centres equal the
      template's 150 px (at 512). On a frontal face both iris centres land on their template points
      exactly; a turned head keeps its size (the 3D distance does not shrink with yaw) instead of
      being blown up. The mouth lands where the face's proportions put it: the mouth-to-eye distance
      varies ±20 % between people (Grace Hopper's is 1.07× her eye distance, the template's 0.87×).
  "least_squares": Umeyama's similarity over the three template points (both iris centres and the
      mouth centre). Eyes and mouth share the error: ~9 px per point on the package photo of Grace
      Hopper, so eyes are not held to the template.
"""
from __future__ import annotations

import numpy as np

from actors.align.template import CROP_SIZE, LEFT_IRIS, MOUTH_CORNERS, RIGHT_IRIS, TEMPLATE_POINTS
from actors.align.warp import estimate_similarity

METHODS = ("eyes", "least_squares")


def template_points(crop_size: int) -> np.ndarray:
    """(3, 2) template points (image-left eye, image-right eye, mouth) for a `crop_size` crop."""
    return TEMPLATE_POINTS.astype(np.float64) * (crop_size / CROP_SIZE)


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2) image-left iris centre, image-right iris centre, mouth centre — the template's order."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    mouth = landmarks[list(MOUTH_CORNERS), :2].mean(axis=0)
    return np.stack([landmarks[LEFT_IRIS, :2], landmarks[RIGHT_IRIS, :2], mouth])


def eye_similarity(landmarks: np.ndarray, crop_size: int) -> np.ndarray:
    """(2, 3) similarity of the "eyes" method for (478, 3) landmarks."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    target = template_points(crop_size)
    left, right = landmarks[LEFT_IRIS], landmarks[RIGHT_IRIS]
    distance_3d = float(np.linalg.norm(right - left))
    if distance_3d <= 1e-6:
        raise ValueError("the iris centres coincide: no alignment is defined.")
    scale = float(np.linalg.norm(target[1] - target[0])) / distance_3d
    dx, dy = right[:2] - left[:2]
    tx, ty = target[1] - target[0]
    angle = np.arctan2(ty, tx) - np.arctan2(dy, dx)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    translation = (target[0] + target[1]) / 2.0 - linear @ ((left[:2] + right[:2]) / 2.0)
    return np.hstack([linear, translation[:, None]])


def source_to_crop(landmarks: np.ndarray, crop_size: int, method: str = "eyes") -> np.ndarray:
    """(2, 3) similarity from source pixels to crop pixels; `method` as in the module doc."""
    if method == "eyes":
        return eye_similarity(landmarks, crop_size)
    if method == "least_squares":
        return estimate_similarity(anchor_points(landmarks), template_points(crop_size))
    raise ValueError(f"Unknown alignment method {method!r}: choose from {METHODS}.")
