"""Face regions from MediaPipe's 478 landmarks, as index lists and as masks in crop pixels.

"Image-left" is the eye on the left of the picture (the subject's right eye on an unmirrored photo).
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.skin_region import FACE_OVAL, fill_landmark_hull

# Lower face contour, ear to ear through the chin.
JAW = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454)
CHIN = 152

# Eye contours, corner to corner along the upper lid, then back along the lower lid.
EYE_LEFT_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_LEFT_LOWER = (133, 155, 154, 153, 145, 144, 163, 7, 33)
EYE_RIGHT_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_RIGHT_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
EYE_LEFT = EYE_LEFT_UPPER + EYE_LEFT_LOWER[1:-1]
EYE_RIGHT = EYE_RIGHT_UPPER + EYE_RIGHT_LOWER[1:-1]
EYE_LEFT_OUTER, EYE_LEFT_INNER = 33, 133
EYE_RIGHT_OUTER, EYE_RIGHT_INNER = 263, 362

IRIS_LEFT = (468, 469, 470, 471, 472)  # centre first
IRIS_RIGHT = (473, 474, 475, 476, 477)

# Brows as upper/lower landmark pairs, inner end to outer end (their midpoints trace the brow).
BROW_LEFT_MID = ((107, 55), (66, 65), (105, 52), (63, 53), (70, 46))
BROW_RIGHT_MID = ((336, 285), (296, 295), (334, 282), (293, 283), (300, 276))

LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)

NOSE_TIP = 4
NOSE_WINGS = (64, 294)  # alar base, image-left and image-right


def points(landmarks: np.ndarray, indices) -> np.ndarray:
    """(n, 2) float32 x, y of the given landmark indices."""
    return np.asarray(landmarks, dtype=np.float32)[list(indices), :2]


def fill_mask(shape: tuple[int, int], polygons) -> np.ndarray:
    """uint8 0/255 mask with the given polygons filled (hard edges; feather them where needed)."""
    mask = np.zeros(shape, np.uint8)
    for poly in polygons:
        cv2.fillPoly(mask, [np.round(np.asarray(poly, np.float32)).astype(np.int32)], 255)
    return mask


def face_area(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/255: the face oval and the hull of every landmark (`fill_landmark_hull`: turned heads)."""
    mask = fill_mask(shape, [points(landmarks, FACE_OVAL)])
    fill_landmark_hull(mask, landmarks)
    return mask


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """A 0..1 float32 soft version of a 0/255 (or bool) mask."""
    soft = np.asarray(mask, np.float32)
    if soft.max() > 1.0:
        soft = soft / 255.0
    if sigma > 0:
        soft = cv2.GaussianBlur(soft, (0, 0), sigma)
    return soft


def eye_width(landmarks: np.ndarray) -> float:
    """Mean eye width (corner to corner) in pixels."""
    lm = np.asarray(landmarks, np.float32)
    left = np.linalg.norm(lm[EYE_LEFT_OUTER, :2] - lm[EYE_LEFT_INNER, :2])
    right = np.linalg.norm(lm[EYE_RIGHT_OUTER, :2] - lm[EYE_RIGHT_INNER, :2])
    return float((left + right) / 2)


def face_width(landmarks: np.ndarray) -> float:
    """Cheek-to-cheek width (landmarks 234 and 454) in pixels."""
    lm = np.asarray(landmarks, np.float32)
    return float(np.linalg.norm(lm[234, :2] - lm[454, :2]))


def inner_face(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """0..1 soft weight of the face oval from a little above the brows down (a fringe above is hair).

    Flat styles keep the photo's own flat colour here for whatever is not skin (glasses, teeth,
    facial hair, a bindi), instead of shading it as hair or clothes.
    """
    lm = np.asarray(landmarks, np.float32)
    face = face_area(lm, shape)
    brow_y = int(np.clip(min(lm[105, 1], lm[334, 1]) - 0.3 * eye_width(lm), 0, shape[0]))
    face[:brow_y] = 0
    return feather(face, 3.0)


def bounding_box(weight: np.ndarray, floor: float = 0.01) -> tuple[slice, slice] | None:
    """(rows, columns) slices of the box around `weight` > `floor`, or None when there is none: work
    on a feature's box instead of the whole image."""
    ys, xs = np.nonzero(weight > floor)
    if len(ys) == 0:
        return None
    return slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1)
