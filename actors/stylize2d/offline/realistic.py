"""`realistic`: a portrait retouch that keeps the person recognisable.

Frequency-separated skin smoothing on the skin mask only (texture is reduced, never erased), gentle
eye and teeth brightening, a touch of lip colour, and a seeded studio backdrop behind the person.
"""
from __future__ import annotations

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, regions
from actors.stylize2d.offline.filters import blend, to_float, to_lab, to_rgb, to_uint8


def skin_weight(face: AlignedFace) -> np.ndarray:
    """Soft 0..1 weight of the skin to retouch (the skin mask, feathered inwards)."""
    hard = face.skin_mask.astype(np.uint8) * 255
    hard = cv2.erode(hard, np.ones((5, 5), np.uint8))
    return regions.feather(hard, 5.0)


def smooth_skin(rgb: np.ndarray, weight: np.ndarray, keep: float) -> np.ndarray:
    """Frequency separation: an edge-aware base plus `keep` × the texture layer where `weight` is 1.

    Only the box around the skin is filtered; the rest of the image is returned as it was.
    """
    image = to_float(rgb)
    ys, xs = np.nonzero(weight > 0.01)
    if len(ys) == 0:
        return image
    margin = 16
    y0, y1 = max(ys.min() - margin, 0), min(ys.max() + margin + 1, image.shape[0])
    x0, x1 = max(xs.min() - margin, 0), min(xs.max() + margin + 1, image.shape[1])
    box = np.ascontiguousarray(image[y0:y1, x0:x1])
    base = cv2.ximgproc.guidedFilter(box, box, 10, 0.004)
    # Even out blotches in the base with a wider, still edge-aware pass.
    base = cv2.bilateralFilter(base, 9, 0.06, 6.0)
    smoothed = base + keep * (box - base)
    out = image.copy()
    out[y0:y1, x0:x1] = blend(box, smoothed, weight[y0:y1, x0:x1])
    return out


def brighten_eyes(lab: np.ndarray, landmarks: np.ndarray, amount: float) -> None:
    """Lift L* inside the eye openings and sharpen the irises a little (in place)."""
    h, w = lab.shape[:2]
    eyes = regions.fill_mask((h, w), [regions.points(landmarks, regions.EYE_LEFT),
                                      regions.points(landmarks, regions.EYE_RIGHT)])
    soft = regions.feather(eyes, 1.5)
    detail = lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 2.0)
    lab[..., 0] += soft * (amount * 6.0 + amount * 0.6 * detail)


def whiten_teeth(lab: np.ndarray, landmarks: np.ndarray, amount: float) -> None:
    """Inside the inner lip contour, make bright (tooth) pixels whiter and less yellow (in place)."""
    h, w = lab.shape[:2]
    mouth = regions.fill_mask((h, w), [regions.points(landmarks, regions.LIPS_INNER)])
    soft = regions.feather(mouth, 1.0)
    bright = np.clip((lab[..., 0] - 45.0) / 20.0, 0.0, 1.0)
    weight = soft * bright * amount
    lab[..., 0] += weight * 8.0
    lab[..., 2] -= weight * 0.5 * np.maximum(lab[..., 2], 0.0)
    lab[..., 1] -= weight * 0.3 * np.maximum(lab[..., 1], 0.0)


def enrich_lips(lab: np.ndarray, landmarks: np.ndarray, amount: float) -> None:
    """A little more lip chroma (in place)."""
    h, w = lab.shape[:2]
    lips = regions.fill_mask((h, w), [regions.points(landmarks, regions.LIPS_OUTER)])
    lips = cv2.subtract(lips, regions.fill_mask((h, w), [regions.points(landmarks, regions.LIPS_INNER)]))
    soft = regions.feather(lips, 2.0) * amount
    lab[..., 1] *= 1.0 + 0.15 * soft
    lab[..., 2] *= 1.0 + 0.05 * soft


def portrait_backdrop(face: AlignedFace, alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photo's background out of focus, graded toward a seeded studio tone with a soft light behind the head."""
    h, w = face.crop.shape[:2]
    blurred = background.bokeh(to_float(face.crop), alpha, sigma=14.0)
    colour = background.pick_colour("realistic", rng)
    centre = (float(face.landmarks[168, 0]), float(face.landmarks[168, 1]) - 0.1 * h)
    studio = background.radial_glow((h, w), centre, 0.9 * w, np.clip(colour * 1.2, 0, 1), colour * 0.7)
    return 0.55 * blurred + 0.45 * studio


def render(face: AlignedFace, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, landmarks): the retouched portrait; the geometry does not move."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    keep = float(np.clip(1.0 - 0.45 * amount, 0.3, 0.85))
    smoothed = smooth_skin(face.crop, skin_weight(face), keep)
    lab = to_lab(to_uint8(smoothed))
    brighten_eyes(lab, face.landmarks, amount)
    whiten_teeth(lab, face.landmarks, amount)
    enrich_lips(lab, face.landmarks, amount)
    person = to_float(to_rgb(lab))
    alpha = background.person_alpha(face.mask, feather=2.0)
    out = background.composite(person, portrait_backdrop(face, alpha, rng), alpha)
    return to_uint8(out), face.landmarks.copy()
