"""Ears the person segmentation half-saw, given back to the person mask by their colour.

Selfie segmentation is unsure of a lit ear in front of a bright background (blinds, a window, a pale
wall): it returns a speckle of mid confidences there, and every style that draws the person's outline
then draws the ear as broken fragments, or as background. Beside the face, at ear height, a pixel the
segmenter half-saw becomes person when its colour is nearer to the face's own skin than to the sure
background around it, and it touches the person (with the small gaps between such pixels). Nothing else
moves: sure pixels, and everything away from the ears, keep the segmenter's confidence.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree

from actors.align.skin_mask import FACE_OVAL

# Oval points (image left, image right): temple, the side at the eyes, and the earlobe's height.
EAR_SIDES = ((127, 234, 132), (356, 454, 361))
OUTWARD = 0.25  # face widths beyond the oval's side that an ear may reach
INWARD = 0.03  # ... and within it (the oval sits a little inside the face's true edge)
ABOVE = 0.15  # face widths above the temple point that an ear's top may reach
BELOW = 0.06  # ... and below the earlobe's point
UNSURE = (0.05, 0.95)  # segmentation confidences that count as half-seen
SURE_BACKGROUND = 0.02  # at most this confidence: background, sampled around the ear for its colours
SAMPLES = 600  # colour samples kept per class (nearest-sample distance, a fixed stride: deterministic)
MIN_SAMPLES = 20  # fewer skin or background samples than this: nothing to decide with, the side is left as it is


def check_inputs(crop: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, skin_mask: np.ndarray) -> None:
    """Raise one precise ValueError per broken rule."""
    crop, mask, skin_mask = np.asarray(crop), np.asarray(mask), np.asarray(skin_mask)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"`crop` must be (H, W, 3) uint8 RGB, got {crop.dtype} {crop.shape}.")
    if mask.dtype != np.uint8 or mask.shape != crop.shape[:2]:
        raise ValueError(f"`mask` must be {crop.shape[:2]} uint8 (0..255), got {mask.dtype} {mask.shape}.")
    if skin_mask.shape != crop.shape[:2]:
        raise ValueError(f"`skin_mask` must be {crop.shape[:2]}, got {skin_mask.shape}.")
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 2 or landmarks.shape[0] < 478 or landmarks.shape[1] < 2:
        raise ValueError(f"`landmarks` must be (478, 2 or 3), got {landmarks.shape}.")


def recover_ears(crop: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, skin_mask: np.ndarray) -> np.ndarray:
    """(H, W) uint8 person mask: `mask` (0..255) with the half-seen ear pixels of either side made person.

    crop: the aligned RGB photo; landmarks: its 478 points; skin_mask: the face's skin (the colours an
    ear is compared with). Returns a new array; `mask` itself is not changed.
    """
    check_inputs(crop, mask, landmarks, skin_mask)
    points = np.asarray(landmarks, np.float64)[:, :2]
    lab = cv2.cvtColor(np.asarray(crop), cv2.COLOR_RGB2Lab).astype(np.float32)
    skin = _samples(lab[np.asarray(skin_mask, bool)])
    out = np.asarray(mask).copy()
    if len(skin) < MIN_SAMPLES:
        return out
    oval = np.zeros(out.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(points[list(FACE_OVAL)]).astype(np.int32)], 1)
    for window in ear_windows(points, out.shape):
        _recover_side(out, lab, skin, oval, window)
    return out


def ear_windows(landmarks: np.ndarray, shape: tuple[int, ...]) -> list[tuple[slice, slice]]:
    """(rows, cols) boxes where the ears may be, image left then right (one left out when it lies
    outside the image): beside the face at ear height, from above the temple to below the earlobe."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    width = float(np.linalg.norm(points[EAR_SIDES[1][1]] - points[EAR_SIDES[0][1]]))
    windows = (_ear_window(points, side, sign, width, tuple(shape[:2])) for sign, side in zip((-1.0, 1.0), EAR_SIDES))
    return [window for window in windows if window is not None]


def _ear_window(points: np.ndarray, side: tuple[int, int, int], outward_sign: float, width: float,
                shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """Rows from above the temple to below the earlobe; columns from just inside the oval's side to
    OUTWARD face widths beyond it. None when it lies outside the image."""
    temple, middle, lobe = points[list(side)]
    top = int(np.floor(min(temple[1], lobe[1]) - ABOVE * width))
    bottom = int(np.ceil(max(temple[1], lobe[1]) + BELOW * width))
    edge = float(middle[0])
    if outward_sign < 0:
        left, right = edge - OUTWARD * width, edge + INWARD * width
    else:
        left, right = edge - INWARD * width, edge + OUTWARD * width
    rows = slice(max(top, 0), min(bottom, shape[0]))
    cols = slice(max(int(np.floor(left)), 0), min(int(np.ceil(right)), shape[1]))
    if rows.stop - rows.start < 2 or cols.stop - cols.start < 2:
        return None
    return rows, cols


def _recover_side(out: np.ndarray, lab: np.ndarray, skin: np.ndarray, oval: np.ndarray,
                  window: tuple[slice, slice]) -> None:
    """In place on `out`: the half-seen, skin-coloured pixels of `window` that touch the person."""
    probability = out[window].astype(np.float32) / 255.0
    colours = lab[window]
    # Sure background in open areas only: the pixels the segmenter missed inside a speckled ear are not it.
    open_background = cv2.erode((probability <= SURE_BACKGROUND).astype(np.uint8),
                                cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
    background = _samples(colours[open_background])
    unsure = (probability > UNSURE[0]) & (probability < UNSURE[1]) & (oval[window] == 0)
    if len(background) < MIN_SAMPLES or not unsure.any():
        return
    # Compared with the face's own skin only (its shadows included): a half-seen pixel of background colour
    # keeps the segmenter's confidence.
    candidates = colours[unsure]
    ear = np.zeros(unsure.shape, np.uint8)
    ear[unsure] = _nearest(candidates, skin) < _nearest(candidates, background)
    sure = probability >= UNSURE[1]
    # The gaps the segmenter left between an ear's fragments (it was sure of nothing there) close with them.
    ear = cv2.morphologyEx(ear, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    ear &= ~sure
    _, labels = cv2.connectedComponents((ear | sure).astype(np.uint8), connectivity=8)
    touching = np.unique(labels[sure])
    added = ear & np.isin(labels, touching[touching > 0])
    out[window] = np.where(added, 255, out[window]).astype(np.uint8)


def _samples(colours: np.ndarray) -> np.ndarray:
    """At most SAMPLES rows of `colours` (N, 3), every k-th: deterministic."""
    colours = np.asarray(colours, np.float32).reshape(-1, 3)
    step = max(1, int(np.ceil(len(colours) / SAMPLES)))
    return colours[::step]


def _nearest(colours: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """(N,) distance (ΔE76: OpenCV's 8-bit Lab with L* scaled back to 0..100) from each colour to its
    nearest sample."""
    scale = np.array([100.0 / 255.0, 1.0, 1.0], np.float32)
    distance, _ = cKDTree(samples * scale).query(colours * scale, k=1)
    return distance
