"""Face-skin mask from the 478 MediaPipe landmarks: face oval minus eyes, brows, lips and nostrils.

Works on any image the landmarks belong to (aligned crops, avatars). The contours are MediaPipe's
`FACEMESH_*` connection sets chained into closed polygons (a test checks every consecutive pair is
one of MediaPipe's edges), so this module needs no MediaPipe import.
"""
from __future__ import annotations

import cv2
import numpy as np

# Closed polygons, in drawing order. "Right" is the subject's right (image left on a photo).
FACE_OVAL = (10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
             377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338)
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
# Brows: the lower line outer → inner, then the upper line inner → outer.
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
# Lower nose, ala to ala through the subnasale: covers both nostrils.
NOSTRILS = (115, 48, 64, 98, 97, 2, 326, 327, 294, 278, 344)

EXCLUDED = (RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW, OUTER_LIPS, NOSTRILS)
RIGHT_IRIS, LEFT_IRIS = 468, 473  # iris centres: the face's scale reference


def _polygon(landmarks: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    return np.round(landmarks[list(indices), :2]).astype(np.int32)


def _disk(radius: int) -> np.ndarray:
    size = 2 * radius + 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def skin_mask_from_landmarks(
    landmarks: np.ndarray,
    shape: tuple[int, ...],
    feature_margin: float = 0.06,
    oval_margin: float = 0.04,
) -> np.ndarray:
    """Boolean (H, W) mask of face skin.

    landmarks: (478, ≥2) x, y in the pixels of an image of `shape` ((H, W) or (H, W, C)).
    feature_margin: how far eyes, brows, lips and nostrils are grown (lashes, lid shadows, lip line),
        and oval_margin: how far the oval is shrunk (hairline, background at the jaw), both as
        fractions of the inter-ocular distance.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] != 478 or landmarks.shape[1] < 2:
        raise ValueError(f"landmarks must be (478, 2 or 3), got {landmarks.shape}.")
    if not np.isfinite(landmarks[:, :2]).all():
        raise ValueError("landmarks contain NaN or infinite values.")
    if len(shape) < 2 or shape[0] <= 0 or shape[1] <= 0:
        raise ValueError(f"shape must start with a positive (H, W), got {tuple(shape)}.")
    height, width = int(shape[0]), int(shape[1])
    inter_ocular = float(np.linalg.norm(landmarks[RIGHT_IRIS, :2] - landmarks[LEFT_IRIS, :2]))

    oval = np.zeros((height, width), np.uint8)
    cv2.fillPoly(oval, [_polygon(landmarks, FACE_OVAL)], 255)
    shrink = int(round(oval_margin * inter_ocular))
    if shrink > 0:
        oval = cv2.erode(oval, _disk(shrink))

    features = np.zeros((height, width), np.uint8)
    cv2.fillPoly(features, [_polygon(landmarks, indices) for indices in EXCLUDED], 255)
    grow = int(round(feature_margin * inter_ocular))
    if grow > 0:
        features = cv2.dilate(features, _disk(grow))
    return (oval > 0) & (features == 0)
