"""`cartoon`: a toon-shaded comic look — smooth flat colour in a few lightness bands, clean ink lines
(edges plus landmark-drawn features), and a pop-art halftone backdrop.

Lightness bands are anchored on the person's median skin L*; hair and clothes take their a*, b* from a
k-means palette (fixed seed) with the skin's median colour reserved, and the skin's chroma is pulled
toward that median, so the skin keeps its tone while the shading becomes graphic.
"""
from __future__ import annotations

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, lines
from actors.stylize2d.offline.filters import (
    assign, band_lightness, flatten, kmeans_lab, median_lab, remove_specks, sample_pixels, to_float, to_lab,
    to_rgb, to_uint8, wide_blur, xdog_lines,
)
from actors.stylize2d.skin_region import skin_region

INK = np.array([0.12, 0.09, 0.08], np.float32)
PALETTE_SIZE = 6  # free k-means colours besides the reserved skin colour


def halftone(shape: tuple[int, int], darkness: np.ndarray, period: int = 7, angle: float = 45.0) -> np.ndarray:
    """0..1 dot screen (0 = dot): dots grow with `darkness` (0..1), on a rotated grid."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = np.deg2rad(angle)
    u = (x * np.cos(theta) + y * np.sin(theta)) / period
    v = (-x * np.sin(theta) + y * np.cos(theta)) / period
    du, dv = u - np.round(u), v - np.round(v)
    distance = np.sqrt(du * du + dv * dv)  # 0 at a dot centre, ~0.7 at the cell corner
    radius = 0.55 * np.sqrt(np.clip(darkness, 0.0, 1.0))
    return np.clip((distance - radius) * period, 0.0, 1.0)


def pop_backdrop(face: AlignedFace, rng: np.random.Generator) -> np.ndarray:
    """A flat seeded colour with a halftone burst radiating from behind the head."""
    h, w = face.crop.shape[:2]
    colour = background.pick_colour("cartoon", rng)
    centre = (float(face.landmarks[168, 0]), float(face.landmarks[168, 1]))
    y, x = np.ogrid[0:h, 0:w]
    r = np.sqrt(((x - centre[0]) ** 2 + (y - centre[1]) ** 2).astype(np.float32)) / (0.75 * w)
    dots = halftone((h, w), np.clip(r - 0.25, 0.0, 1.0) * 0.5, period=10, angle=30.0)
    light = np.clip(colour * 1.1 + 0.06, 0.0, 1.0)
    return light[None, None, :] * dots[..., None] + (colour * 0.82)[None, None, :] * (1.0 - dots[..., None])


def palette_chroma(lab: np.ndarray, where: np.ndarray, skin: np.ndarray, amount: float) -> np.ndarray:
    """(h, w, 2) a*, b* posterised to a k-means palette of the person's colours (fixed seed).

    The skin's median colour is a reserved palette entry, so skin-coloured areas outside the face
    (ears, hands) land on the exact skin chroma instead of a nearby cluster mean.
    """
    samples = sample_pixels(lab, where, 3000, seed=0)
    centres = kmeans_lab(samples, PALETTE_SIZE, fixed=skin[None, :], seed=0)
    # Cluster mostly on colour: lightness is banded separately.
    labels = assign(lab, centres, weights=(0.25, 1.0, 1.0))
    labels = cv2.medianBlur(labels, 7)
    chroma = centres[:, 1:].copy()
    chroma[1:] *= 1.0 + 0.25 * amount  # punchier palette; the reserved skin entry stays as measured
    return chroma[labels]


def toon_colour(face: AlignedFace, flat: np.ndarray, amount: float) -> np.ndarray:
    """Lab image: banded lightness (skin: base and shadow only), palette chroma, calm skin chroma."""
    lab = to_lab(flat)
    skin = median_lab(to_lab(face.crop), face.skin_mask)
    skin_weight = skin_region(lab, face.landmarks, skin, face.mask)
    soft = cv2.GaussianBlur(lab, (0, 0), 1.0)
    # Skin: base and shadow bands only. Hair and clothes: wider bands of a broader shading, so the
    # shapes stay large.
    # The shadow step scales with the skin's lightness so dark skin keeps readable shading, not black.
    step = float(np.clip(0.22 * skin[0], 6.0, 16.0))
    skin_bands = band_lightness(soft[..., 0], float(skin[0]), step=step, clean=11, lowest=-1, highest=0)
    broad = wide_blur(soft, 4.0)
    other_bands = band_lightness(broad[..., 0], float(skin[0]), step=24.0, clean=15)
    banded = other_bands + (skin_bands - other_bands) * np.clip(skin_weight * 2.0, 0.0, 1.0)
    out = np.empty_like(lab)
    # Keep a little of the smooth gradient under the bands so large areas do not look dead flat.
    out[..., 0] = 0.75 * banded + 0.25 * soft[..., 0]
    person = (face.mask > 127) & (skin_weight < 0.5)
    chroma = palette_chroma(broad, person, skin, amount) if person.sum() > PALETTE_SIZE * 10 else broad[..., 1:]
    calm = skin[None, None, 1:] + 0.3 * (soft[..., 1:] - skin[None, None, 1:])
    out[..., 1:] = chroma + (calm - chroma) * skin_weight[..., None]
    return out


def render(face: AlignedFace, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, landmarks): the toon portrait; the geometry does not move."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    alpha = background.person_alpha(face.mask, feather=1.0)
    flat = flatten(face.crop, smoothness=60.0 + 40.0 * amount, sigma_color=5.0)
    colour = to_float(to_rgb(toon_colour(face, flat, amount)))
    gray = cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY)
    edges = remove_specks(xdog_lines(gray, sigma=1.3, k=1.7, tau=0.012 / amount, phi=80.0), min_area=30)
    edges = 1.0 - (1.0 - edges) * (alpha > 0.5)
    ink = np.minimum(edges, lines.face_strokes(face.landmarks, colour.shape[:2], weight=2.2))
    ink = np.minimum(ink, lines.silhouette(alpha, width=3))
    colour = colour * ink[..., None] + INK * (1.0 - ink[..., None])
    out = background.composite(colour, pop_backdrop(face, rng), alpha)
    return to_uint8(out), face.landmarks.copy()
