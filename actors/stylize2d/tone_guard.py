"""Skin-tone guard: measure the avatar's skin against the input's and pull it back when it drifted.

Generative and stylising steps tend to lighten darker skin. The guard measures ITA° and Monk Skin Tone
on the avatar's skin (a landmark skin mask: the engine's landmarks, else landmarks re-detected on the
avatar, else the input's mask resized) and, when enabled and |ΔITA| exceeds the threshold, shifts the
avatar's skin in CIELAB by the median difference to the input's skin (L*, a*, b* offsets, so shading
is preserved), over a feathered face-and-neck skin region. A second pass runs if the first falls short.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.align.skin_mask import skin_mask_from_landmarks
from actors.metrics.skin_tone import ita_from_lab, mst_from_lab, skin_pixels_lab
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.skin_region import skin_region

MIN_SKIN_PIXELS = 64
MAX_PASSES = 2

LandmarksFn = Callable[[np.ndarray], "np.ndarray | None"]


@dataclass
class ToneReport:
    """Tones of one avatar (ITA° and MST): the input's, the avatar's as made (raw) and as written (out)."""

    ita_in: float
    mst_in: int
    ita_raw: float
    mst_raw: int
    ita_out: float
    mst_out: int
    correction: float  # ITA° change the guard applied (ita_out − ita_raw); 0 when it did not act
    mask_source: str = "engine"  # where the avatar's skin mask came from: engine / detected / input

    def to_dict(self) -> dict:
        return asdict(self)


def _tone(lab_pixels: np.ndarray) -> tuple[float, int]:
    return float(np.median(ita_from_lab(lab_pixels))), mst_from_lab(np.median(lab_pixels, axis=0))


def avatar_skin(avatar: StylizedImage, face: AlignedFace,
                landmarks_fn: LandmarksFn | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(skin mask, landmarks or None, source) on the avatar image."""
    image = avatar.image
    shape = image.shape[:2]
    candidates = []
    if avatar.landmarks is not None:
        candidates.append((np.asarray(avatar.landmarks, np.float32), "engine"))
    elif landmarks_fn is not None:
        detected = landmarks_fn(image)
        if detected is not None:
            candidates.append((np.asarray(detected, np.float32), "detected"))
    for landmarks, source in candidates:
        mask = skin_mask_from_landmarks(landmarks, shape)
        if mask.sum() >= MIN_SKIN_PIXELS:
            return mask, landmarks, source
    resized = cv2.resize(face.skin_mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool), None, "input"


def correction_weight(lab: np.ndarray, mask: np.ndarray, landmarks: np.ndarray | None,
                      skin_lab: np.ndarray) -> np.ndarray:
    """0..1 region to recolour: the skin of face and neck (or the grown mask without landmarks),
    always covering the measured mask."""
    scale = lab.shape[0] / 512.0
    strict = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5 * scale)
    if landmarks is None:
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((int(9 * scale) | 1,) * 2, np.uint8)).astype(np.float32)
        return np.maximum(cv2.GaussianBlur(grown, (0, 0), 4.0 * scale), strict)
    region = skin_region(lab, landmarks, skin_lab, feather=3.0 * scale)
    return np.maximum(region, strict * mask)


def shift_skin(image: np.ndarray, weight: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """uint8 RGB with `delta` (ΔL*, Δa*, Δb*) added where `weight` is 1 (blended where it is between)."""
    lab = cv2.cvtColor(image.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
    lab += weight[..., None] * np.asarray(delta, np.float32)[None, None, :]
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def guard_tone(
    avatar: StylizedImage,
    face: AlignedFace,
    *,
    threshold: float,
    enabled: bool,
    landmarks_fn: LandmarksFn | None = None,
) -> tuple[np.ndarray, ToneReport]:
    """(image to write, report). The image is the avatar's own unless the guard corrected it."""
    image = np.asarray(avatar.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"avatar.image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}.")
    if not threshold > 0:
        raise ValueError(f"`threshold` must be a positive ITA° difference, got {threshold}.")
    mask, landmarks, source = avatar_skin(avatar, face, landmarks_fn)
    if mask.sum() < MIN_SKIN_PIXELS:
        raise ValueError(f"No skin to measure on the avatar ({int(mask.sum())} pixels in the skin mask).")
    ita_in, mst_in = float(face.ita), int(face.mst)
    ita_raw, mst_raw = _tone(skin_pixels_lab(image, mask))
    report = ToneReport(ita_in, mst_in, ita_raw, mst_raw, ita_raw, mst_raw, 0.0, source)
    if not enabled or abs(ita_raw - ita_in) <= threshold:
        return image, report

    target = np.median(skin_pixels_lab(face.crop, face.skin_mask), axis=0)
    out = image
    for _ in range(MAX_PASSES):
        current_pixels = skin_pixels_lab(out, mask)
        current = np.median(current_pixels, axis=0)
        lab = cv2.cvtColor(out.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)
        weight = correction_weight(lab, mask, landmarks, current.astype(np.float32))
        out = shift_skin(out, weight, target - current)
        ita_out, mst_out = _tone(skin_pixels_lab(out, mask))
        if abs(ita_out - ita_in) <= threshold / 2:
            break
    report.ita_out, report.mst_out = ita_out, mst_out
    report.correction = ita_out - ita_raw
    return out, report
