"""Facial hair on the lower face, found by its texture: a drawn style keeps it instead of painting it as skin.

A beard, a moustache or stubble is darker than the skin and, in the photo, full of fine strands. In a
flattened photo it is a smooth darker patch, and a cel style judging skin by colour alone (hair of the
skin's hue is skin in shadow, see `cel.head_skin_weight`) painted it as grey skin: the beard was lost,
which costs likeness and, where the painted skin was lighter than the hair, tone. Below the nose and
inside the face oval, a pixel darker than the median skin in the flattened photo and fine-textured in the
photo itself is facial hair. Skin in smooth shadow and the lips are not.
"""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline import cel, regions

DARKER = 6.0  # L* below the median skin at which a pixel starts to count (fully at twice this)
TEXTURE = 2.0  # local L* standard deviation (σ 1.5 px, averaged over σ 4 px) at which strands start to
# count (fully at twice this); smooth skin, even in shadow, stays under it
BLUR_REACH = 32  # px around the lower face that its blurs read (σ 1.5, 4, 1.5 and 2 chained: 28 px)
NOSE_BASE = 2  # mesh point below the nose tip: the zone starts at its height (a moustache lies below it)


def check_inputs(flat: np.ndarray, photo: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray) -> None:
    """Raise one precise ValueError per broken rule."""
    if flat.ndim != 3 or flat.shape[2] != 3 or photo.shape != flat.shape:
        raise ValueError(f"`flat` and `photo` must be the same (H, W, 3) Lab, got {flat.shape} and {photo.shape}.")
    if np.asarray(landmarks).ndim != 2 or len(landmarks) < 478:
        raise ValueError(f"`landmarks` must be (478, 2 or 3), got {np.asarray(landmarks).shape}.")
    if np.asarray(skin_lab).shape != (3,):
        raise ValueError(f"`skin_lab` must be one Lab colour (3,), got {np.asarray(skin_lab).shape}.")


def facial_hair_weight(flat: np.ndarray, photo: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """(H, W) float32 0..1: facial hair on the lower face.

    flat: the flattened photo (Lab), photo: the photo itself (Lab, same size), landmarks: 478 points
    in their pixels, skin_lab: the median skin colour."""
    check_inputs(flat, photo, landmarks, skin_lab)
    h, w = flat.shape[:2]
    lm = np.asarray(landmarks, np.float32)[:, :2]
    zone = np.zeros((h, w), np.uint8)
    cv2.fillPoly(zone, [np.round(lm[list(regions.FACE_OVAL)]).astype(np.int32)], 1)
    zone[: max(int(lm[NOSE_BASE, 1]), 0)] = 0
    weight = np.zeros((h, w), np.float32)
    box = regions.bounding_box(zone)
    if box is None:
        return weight
    # Only the lower face's box, grown by the blurs' reach, is worked on (a hot path: every anime avatar).
    rows, cols = (slice(max(span.start - BLUR_REACH, 0), min(span.stop + BLUR_REACH, size))
                  for span, size in zip(box, (h, w)))
    lightness = np.ascontiguousarray(photo[rows, cols, 0], np.float32)
    mean = cv2.GaussianBlur(lightness, (0, 0), 1.5)
    spread = np.sqrt(np.maximum(cv2.GaussianBlur(lightness * lightness, (0, 0), 1.5) - mean * mean, 0.0))
    strands = np.clip((cv2.GaussianBlur(spread, (0, 0), 4.0) - TEXTURE) / TEXTURE, 0.0, 1.0)
    below = float(skin_lab[0]) - cv2.GaussianBlur(np.ascontiguousarray(flat[rows, cols, 0], np.float32), (0, 0), 2.0)
    darker = np.clip((below - DARKER) / DARKER, 0.0, 1.0)
    hair = cv2.GaussianBlur((zone[rows, cols] * darker * strands).astype(np.float32), (0, 0), 1.5)
    lips = cel.feature_mask(lm - np.array([cols.start, rows.start], np.float32), hair.shape, cel.LIPS)
    weight[rows, cols] = hair * (1.0 - lips)
    return weight
