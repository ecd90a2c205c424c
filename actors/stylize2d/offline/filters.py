"""Shared image operations for the offline styles: CIELAB round trips, edge-preserving smoothing,
XDoG line art, and CIELAB quantisation (lightness bands, k-means palettes) that keeps the skin tone.

Everything works on one core in a few tens of milliseconds at 512² (see bench/stylize.py).
"""
from __future__ import annotations

import cv2
import numpy as np


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 CIELAB (D65; L* 0..100)."""
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 CIELAB → uint8 RGB (clipped)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_float(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) * (1.0 / 255.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blend(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend float images; `alpha` is (h, w) or (h, w, 1) in 0..1."""
    if alpha.ndim == 2 and under.ndim == 3:
        alpha = alpha[..., None]
    return under + (over - under) * alpha


def flatten(rgb: np.ndarray, smoothness: float = 80.0, sigma_color: float = 5.0, scale: float = 0.5) -> np.ndarray:
    """Edge-preserving flattening: the fast global smoother (weighted least squares) at `scale`,
    brought back to full size by a guided filter so that edges stay crisp.

    `smoothness` (λ) sets how far flat areas spread; `sigma_color` how strong an edge must be to stop them.
    """
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale != 1 else rgb
    small = cv2.ximgproc.fastGlobalSmootherFilter(small, small, smoothness, sigma_color)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) if scale != 1 else small
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.ximgproc.guidedFilter(gray, up, 3, 40.0)


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur for large `sigma`: done at a reduced size (the result is smooth anyway), 4-16x cheaper."""
    if sigma < 3.0:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    factor = 4 if sigma >= 8.0 else 2
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def xdog_lines(gray: np.ndarray, sigma: float = 1.5, k: float = 1.6, tau: float = 0.01, phi: float = 60.0) -> np.ndarray:
    """Line art by the extended difference of Gaussians (Winnemöller et al. 2012): 0..1, 0 = ink.

    XDoG soft-thresholds D = G_σ − G_kσ with T = 1 + tanh(φ · (D + tau)) below −tau. This is its
    edge-only form (no sharpening term), so it inks the dark side of edges and never fills flat dark
    areas: hair and dark clothes keep their colour. `tau` is the edge contrast (0..1 intensity) below
    which nothing is drawn; larger `sigma` gives thicker, fewer lines; larger `phi` crisper ones.
    """
    g = gray.astype(np.float32) / 255.0 if gray.dtype == np.uint8 else gray.astype(np.float32)
    edge = cv2.GaussianBlur(g, (0, 0), sigma) - cv2.GaussianBlur(g, (0, 0), sigma * k)
    return np.clip(1.0 + np.tanh(phi * (edge + tau)), 0.0, 1.0).astype(np.float32)


def median_lab(lab: np.ndarray, mask: np.ndarray, trim: float = 0.1) -> np.ndarray:
    """Median Lab over a mask, brightest and darkest `trim` fractions (by L*) dropped."""
    selected = np.asarray(mask).astype(bool)
    if not selected.any():
        raise ValueError("median_lab: the mask is empty.")
    planes = [np.ascontiguousarray(lab[..., c])[selected] for c in range(3)]
    lo, hi = np.quantile(planes[0], [trim, 1.0 - trim])
    kept = (planes[0] >= lo) & (planes[0] <= hi)
    if not kept.any():
        kept = np.ones_like(kept)
    return np.array([np.median(plane[kept]) for plane in planes], np.float32)


def _sq_distance(planes, centre, weights) -> np.ndarray:
    """Weighted squared distance of per-channel planes to one centre (channel-wise, no small-axis reductions)."""
    return sum(w * (plane - c) ** 2 for plane, c, w in zip(planes, centre, weights))


def kmeans_lab(samples: np.ndarray, k: int, fixed: np.ndarray, seed: int, iterations: int = 12) -> np.ndarray:
    """Lab centres: `fixed` (kept as given) plus `k` free centres fitted to `samples` by Lloyd's k-means.

    Free centres start by farthest-point sampling from a seeded pick, so the palette is the same for the
    same inputs and seed. Returns (len(fixed) + k, 3) float32.
    """
    fixed = np.asarray(fixed, np.float32).reshape(-1, 3)
    samples = np.asarray(samples, np.float32)
    if k <= 0 or len(samples) == 0:
        return fixed
    planes = [np.ascontiguousarray(samples[:, c]) for c in range(3)]
    ones = (1.0, 1.0, 1.0)
    rng = np.random.default_rng(seed)
    free = [samples[rng.integers(len(samples))]]
    nearest = np.min([_sq_distance(planes, c, ones) for c in [*fixed, free[0]]], axis=0)
    for _ in range(k - 1):
        free.append(samples[int(np.argmax(nearest))])
        nearest = np.minimum(nearest, _sq_distance(planes, free[-1], ones))
    free = np.array(free, np.float32)
    for _ in range(iterations):
        centres = np.concatenate([fixed, free])
        labels = np.argmin([_sq_distance(planes, c, ones) for c in centres], axis=0)
        for j in range(k):
            members = labels == len(fixed) + j
            if members.any():
                free[j] = [plane[members].mean() for plane in planes]
    return np.concatenate([fixed, free]).astype(np.float32)


def assign(lab: np.ndarray, centres: np.ndarray, weights=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Index of the nearest centre per pixel (weighted Lab distance), uint8 (h, w)."""
    planes = [np.ascontiguousarray(lab[..., c]) for c in range(3)]
    best = None
    labels = np.zeros(lab.shape[:2], np.uint8)
    for i, centre in enumerate(np.asarray(centres, np.float32)):
        d = _sq_distance(planes, centre, weights)
        if best is None:
            best = d
            continue
        closer = d < best
        best = np.where(closer, d, best)
        labels[closer] = i
    return labels


def band_lightness(lightness: np.ndarray, anchor: float, step: float, clean: int = 9,
                   lowest=-8, highest=8) -> np.ndarray:
    """Toon shading: L* snapped to bands `step` apart, one band centred on `anchor`.

    Anchoring a band on the skin's median L* keeps that median where it was. Band numbers are clipped
    to [lowest, highest] (per pixel when arrays are given, e.g. base and shadow only on skin). A median
    filter of size `clean` (full-size pixels) on the band map removes islands, so bands form large calm
    shapes. The band map is built at half size (the input is smooth) and comes back with soft,
    antialiased borders.
    """
    h, w = lightness.shape
    half = cv2.resize(lightness, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    low = lowest[::2, ::2][: h // 2, : w // 2] if isinstance(lowest, np.ndarray) else lowest
    high = highest[::2, ::2][: h // 2, : w // 2] if isinstance(highest, np.ndarray) else highest
    bands = np.clip(np.floor((half - anchor) / step + 0.5), low, high)
    index = np.clip(bands + 128, 0, 255).astype(np.uint8)
    size = (clean // 2) | 1
    if size > 1:
        index = cv2.medianBlur(index, size)
    snapped = (anchor + step * (index.astype(np.float32) - 128.0)).astype(np.float32)
    return cv2.resize(snapped, (w, h), interpolation=cv2.INTER_LINEAR)


def drifting_steps(values: np.ndarray, step: float, drift: float, clean: int = 5) -> np.ndarray:
    """`values` posterised into flat steps `step` apart (`band_lightness` about 0) whose levels drift by
    `drift` steps along the image diagonal.

    Fixed levels give the painted skin a comb of lightness values: the median over a region then snaps
    to the nearest tooth, by up to half a step, and which tooth depends on the region's outline (on a
    face near L* 50, 2.5 L* is 9 ITA°). Levels that drift smoothly across the image leave every step
    flat and every pixel within half a step of `values` (the drift is less than a step per 100 px at 2),
    and fill the comb in, so a median no longer depends on which outline one draws.
    """
    if drift <= 0:
        return band_lightness(values, 0.0, step, clean=clean)
    h, w = values.shape
    diagonal = (np.arange(h, dtype=np.float32)[:, None] + np.arange(w, dtype=np.float32)[None, :]) / float(h + w)
    phase = (diagonal * (drift * step)).astype(np.float32)
    return phase + band_lightness(np.ascontiguousarray(values - phase), 0.0, step, clean=clean)


def sample_pixels(lab: np.ndarray, mask: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Up to `count` Lab pixels from under `mask`, drawn with a seeded generator."""
    pixels = lab[np.asarray(mask).astype(bool)]
    if len(pixels) <= count:
        return pixels
    rng = np.random.default_rng(seed)
    return pixels[rng.choice(len(pixels), count, replace=False)]


def remove_specks(ink: np.ndarray, min_area: int, threshold: float = 0.5) -> np.ndarray:
    """Drop isolated ink blobs smaller than `min_area` pixels from a 0..1 ink layer (0 = ink)."""
    binary = (ink < threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_area
    small[0] = False
    if not small.any():
        return ink
    return np.where(small[labels], 1.0, ink).astype(np.float32)


def detail_weight(lab: np.ndarray, sigma: float, low: float, high: float) -> np.ndarray:
    """0..1 weight of strong local structure: how far each pixel stands out from its surroundings
    (ΔE to a Gaussian of `sigma`, a* b* at half weight), ramped from `low` to `high`.

    Thin high-contrast things (glasses frames, a bindi, jewellery, nostrils, a moustache edge) score
    high; soft shading and fine skin texture do not. Flat styles keep the photo's colour there.
    """
    blurred = cv2.GaussianBlur(lab, (0, 0), sigma)
    diff = lab - blurred
    distance = np.sqrt(diff[..., 0] ** 2 + 0.25 * (diff[..., 1] ** 2 + diff[..., 2] ** 2))
    return np.clip((distance - low) / (high - low), 0.0, 1.0).astype(np.float32)
