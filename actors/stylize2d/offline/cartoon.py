"""`cartoon`: a toon-shaded comic portrait — flat colour regions, bold ink lines, a slight exaggeration
(eyes a little larger, nose and mouth a little smaller) and a pop-art halftone backdrop.

Closer to the photo than `anime`: the skin is the person's median skin colour with their own shading
posterised into flat steps (`cel.shade_skin`; the photo's light at the scale of a cheek kept under the
steps, so the tone holds over any face region), their real eyes under a bold lid line, and the ink comes
from the photo's own edges. Hair and clothes are lightness bands with a k-means palette of the person's
own colours. Inside the face, what is not skin (glasses, facial hair, teeth, a bindi, jewellery) keeps
its flat photo colour.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, cel, lines, regions
from actors.stylize2d.offline.anime import toon_layers
from actors.stylize2d.offline.filters import (
    band_lightness, detail_weight, remove_specks, to_float, to_rgb, to_uint8,
    wide_blur, xdog_lines,
)
from actors.stylize2d.offline.palette import palette_chroma

INK = np.array([0.12, 0.09, 0.08], np.float32)


@dataclass(frozen=True)
class Look:
    """The cartoon look's knobs, tuned against SFace identity on real photos (tests/actors/stylize2d)."""

    skin: cel.SkinShading = field(default_factory=lambda: cel.SkinShading(
        tone_step=12.0, shadow_share=0.2, light_share=0.0, sigma=2.0,
        detail=1.0, detail_sigma=1.5, chroma=0.6, poster_step=5.0, chroma_step=4.0, poster_drift=2.0,
        light_sigma=12.0, light=1.0, light_colour=1.0))
    warp: float = 0.15  # the anime warp, scaled down to a slight exaggeration
    band_step: float = 12.0  # L* step of the hair and clothes bands
    band_detail: float = 0.25  # share of the smooth L* kept under the bands
    palette_punch: float = 1.25  # chroma gain of the hair and clothes palette
    line_tau: float = 0.018  # XDoG threshold (lower: more ink)
    stroke_weight: float = 2.0  # px: landmark strokes (lids, nose base, lip parting, chin)


LOOK = Look()


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


def pop_backdrop(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A flat seeded colour with a halftone burst radiating from behind the head."""
    h, w = shape
    colour = background.pick_colour("cartoon", rng)
    centre = (float(landmarks[168, 0]), float(landmarks[168, 1]))
    y, x = np.ogrid[0:h, 0:w]
    r = np.sqrt(((x - centre[0]) ** 2 + (y - centre[1]) ** 2).astype(np.float32)) / (0.75 * w)
    dots = halftone((h, w), np.clip(r - 0.25, 0.0, 1.0) * 0.5, period=10, angle=30.0)
    light = np.clip(colour * 1.1 + 0.06, 0.0, 1.0)
    return light[None, None, :] * dots[..., None] + (colour * 0.82)[None, None, :] * (1.0 - dots[..., None])


def band_colour(lab: np.ndarray, where: np.ndarray, skin: np.ndarray, look: Look = LOOK) -> np.ndarray:
    """(h, w, 3) Lab for hair and clothes: L* in bands anchored on the skin's L*, a palette of the
    person's own colours (the skin colour reserved in it)."""
    soft = cv2.GaussianBlur(lab, (0, 0), 1.0)
    broad = wide_blur(soft, 4.0)
    banded = band_lightness(broad[..., 0], float(skin[0]), step=look.band_step, clean=15)
    out = np.empty_like(lab)
    out[..., 0] = banded + look.band_detail * (soft[..., 0] - banded)
    out[..., 1:] = palette_chroma(broad, where > 0.5, skin, look.palette_punch)
    return out


def ink(flat_rgb: np.ndarray, landmarks: np.ndarray, alpha: np.ndarray, amount: float, look: Look = LOOK) -> np.ndarray:
    """0..1 ink (0 = ink): the photo's own edges, the lids, nose base, lip parting and chin, the outline."""
    h, w = alpha.shape
    gray = cv2.cvtColor(flat_rgb, cv2.COLOR_RGB2GRAY)
    edges = remove_specks(xdog_lines(gray, sigma=1.3, k=1.7, tau=look.line_tau / amount, phi=80.0), min_area=30)
    edges = 1.0 - (1.0 - edges) * (alpha > 0.5)
    strokes = lines.face_strokes(landmarks, (h, w), weight=look.stroke_weight, brows=False, jaw=False)
    strokes = np.minimum(strokes, lines.chin_stroke(landmarks, gray, weight=look.stroke_weight))
    return np.minimum(np.minimum(edges, strokes), lines.silhouette(alpha, width=3))


def render(face: AlignedFace, rng: np.random.Generator, strength: float,
           look: Look = LOOK) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, warped landmarks): the toon portrait."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    h, w = face.crop.shape[:2]
    # 1. A slight exaggeration: the photo, its masks and landmarks warped together; flat colour; the skin.
    base = toon_layers(face, amount * look.warp, 40.0 + 30.0 * amount, 5.0)
    mask, skin_mask, landmarks = base.mask, base.skin_mask, base.landmarks
    photo, flat, lab, skin, solid = base.photo, base.flat, base.lab, base.skin, base.solid
    # 2. Posterised skin from the median skin colour, banded hair and clothes, and the flat photo
    #    colour for what is not skin inside the face.
    out = band_colour(lab, base.person * (1.0 - solid), skin, look)
    inner = regions.inner_face(landmarks, (h, w))
    out += (lab - out) * inner[..., None]
    cel.paint_skin(out, lab, base.weight, solid, skin, look.skin, photo)
    keep = detail_weight(lab, 4.0, 6.0, 14.0) * inner
    out += (lab - out) * keep[..., None]
    sparkle = detail_weight(photo, 2.0, 16.0, 28.0) * inner
    out += (photo - out) * sparkle[..., None]
    cel.recentre_skin(out, skin_mask, skin, solid)
    colour = to_float(to_rgb(out))
    # 3. Ink and backdrop.
    alpha = background.person_alpha(mask, feather=1.0)
    drawn = ink(flat, landmarks, alpha, amount, look)
    colour = colour * drawn[..., None] + INK * (1.0 - drawn[..., None])
    out_rgb = background.composite(colour, pop_backdrop(landmarks, (h, w), rng), alpha)
    return to_uint8(out_rgb), landmarks
