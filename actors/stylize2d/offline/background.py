"""Backgrounds behind the person: seeded per style, composited through the segmentation mask."""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline.filters import to_float, wide_blur

# Curated backdrop colours per style (sRGB 0..1): the seed picks one and jitters it slightly.
PALETTES = {
    "anime": ((0.99, 0.86, 0.80), (0.82, 0.90, 0.99), (0.86, 0.96, 0.88), (0.95, 0.88, 0.99), (0.99, 0.95, 0.80)),
    "cartoon": ((0.98, 0.80, 0.25), (0.35, 0.75, 0.95), (0.95, 0.45, 0.45), (0.55, 0.85, 0.55), (0.70, 0.55, 0.95)),
    "realistic": ((0.55, 0.60, 0.66), (0.62, 0.57, 0.52), (0.45, 0.52, 0.50), (0.60, 0.55, 0.62), (0.50, 0.55, 0.62)),
    "sketch": ((0.98, 0.96, 0.91), (0.97, 0.96, 0.94), (0.98, 0.95, 0.89)),
}


def pick_colour(style: str, rng: np.random.Generator) -> np.ndarray:
    """One backdrop colour for `style`, chosen and jittered by `rng`."""
    palette = PALETTES[style]
    base = np.array(palette[int(rng.integers(len(palette)))], np.float32)
    return np.clip(base + rng.uniform(-0.03, 0.03, 3).astype(np.float32), 0.0, 1.0)


def vertical_gradient(shape: tuple[int, int], top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 gradient from `top` to `bottom`."""
    h, w = shape
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    column = top[None, None, :] * (1.0 - t) + bottom[None, None, :] * t
    return np.broadcast_to(column, (h, w, 3)).copy()


def radial_glow(shape: tuple[int, int], centre: tuple[float, float], radius: float, inner: np.ndarray,
                outer: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: `inner` at `centre` fading to `outer` at `radius`."""
    h, w = shape
    y, x = np.ogrid[0:h, 0:w]
    r = np.sqrt(((x - centre[0]) ** 2 + (y - centre[1]) ** 2).astype(np.float32)) / radius
    t = np.clip(r, 0.0, 1.0)[..., None]
    return inner[None, None, :] * (1.0 - t) + outer[None, None, :] * t


def paper(shape: tuple[int, int], tint: np.ndarray, rng: np.random.Generator, grain: float = 0.035) -> np.ndarray:
    """Drawing paper: `tint` with a fine seeded grain and a faint fibre texture."""
    h, w = shape
    noise = rng.standard_normal((h, w)).astype(np.float32)
    fine = cv2.GaussianBlur(noise, (0, 0), 0.8)
    fibre = cv2.GaussianBlur(noise, (0, 0), sigmaX=3.0, sigmaY=1.5)
    texture = 1.0 + grain * (0.6 * fine / (fine.std() + 1e-6) + 0.4 * fibre / (fibre.std() + 1e-6))
    return np.clip(tint[None, None, :] * texture[..., None], 0.0, 1.0)


def person_alpha(mask: np.ndarray, feather: float = 2.0) -> np.ndarray:
    """0..1 float32 alpha from a 0..255 segmentation mask, slightly feathered."""
    alpha = to_float(mask) if mask.dtype == np.uint8 else mask.astype(np.float32)
    # Harden the soft segmentation edge a little, then feather by a fixed amount.
    alpha = np.clip((alpha - 0.35) / 0.4, 0.0, 1.0)
    return cv2.GaussianBlur(alpha, (0, 0), feather) if feather > 0 else alpha


def composite(person: np.ndarray, backdrop: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Float RGB: `person` over `backdrop` through `alpha`."""
    return backdrop + (person - backdrop) * alpha[..., None]


def fill_from(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: `image` blurred using only pixels where `weight` is high.

    Used to blur a background without the person bleeding into it.
    """
    w = wide_blur(weight, sigma)[..., None]
    blurred = wide_blur(image * weight[..., None], sigma)
    return blurred / np.maximum(w, 1e-4)


def bokeh(image: np.ndarray, alpha: np.ndarray, sigma: float = 12.0) -> np.ndarray:
    """The photo's own background, blurred as by a wide aperture, with the person removed first."""
    return fill_from(image, np.clip(1.0 - alpha, 0.0, 1.0) ** 2, sigma)
