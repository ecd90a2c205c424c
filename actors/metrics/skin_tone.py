"""Skin-tone colour science: sRGB → CIELAB, ITA°, Monk Skin Tone (MST), ΔE2000.

ITA° = atan((L* − 50) / b*) · 180/π, the median over skin pixels after dropping highlights and
shadows. MST 1..10 is the nearest Monk swatch to the median skin colour in CIELAB under ΔE2000.
Functions take any (..., 3) uint8 or float array; nothing here allocates on a device.
"""
from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

MST_HEX = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")
MST_RGB = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in MST_HEX], dtype=np.uint8)
MST_LAB = rgb2lab(MST_RGB[None].astype(np.float64) / 255.0)[0]

ITA_BANDS = ((55.0, "very light"), (41.0, "light"), (28.0, "intermediate"), (10.0, "tan"), (-30.0, "brown"))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 0..255 or float 0..1) → CIELAB (D65), float64 with the same leading shape."""
    rgb = np.asarray(rgb)
    scaled = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return rgb2lab(scaled.reshape(-1, 1, 3)).reshape(rgb.shape)


def _srgb8_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(linear value of each 8-bit code, sRGB→XYZ matrix, D65 white): scikit-image's own constants."""
    from skimage.color.colorconv import xyz_from_rgb, xyz_tristimulus_values

    codes = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(codes > 0.04045, ((codes + 0.055) / 1.055) ** 2.4, codes / 12.92)
    return linear, np.asarray(xyz_from_rgb, np.float64), np.asarray(xyz_tristimulus_values(illuminant="D65", observer="2"), np.float64)


_LINEAR, _XYZ_FROM_RGB, _WHITE = _srgb8_tables()


def srgb8_to_lab(pixels: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 sRGB → (N, 3) float64 CIELAB, equal to `srgb_to_lab` (scikit-image's formulas and
    constants) but several times faster: the sRGB curve is a 256-entry table."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.shape[-1] != 3:
        raise ValueError(f"`pixels` must be (..., 3) uint8, got {pixels.dtype} {pixels.shape}.")
    xyz = (_LINEAR[pixels] @ _XYZ_FROM_RGB.T) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def ita_from_lab(lab: np.ndarray) -> np.ndarray:
    """ITA° per Lab triple (degrees). Uses atan2 so b* → 0 stays finite."""
    lab = np.asarray(lab, dtype=np.float64)
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2]))


def ita_band(ita: float) -> str:
    for lower, name in ITA_BANDS:
        if ita > lower:
            return name
    return "dark"


def skin_pixels_lab(image: np.ndarray, mask: np.ndarray, trim: float = 0.1) -> np.ndarray:
    """Lab values of the masked pixels with the brightest and darkest `trim` fraction (by L*) dropped."""
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape[:2]} must have the same size.")
    pixels = np.asarray(image)[np.asarray(mask).astype(bool)]
    if len(pixels) == 0:
        raise ValueError("The skin mask is empty: no pixels to measure.")
    lab = srgb_to_lab(pixels)
    lo, hi = np.quantile(lab[:, 0], [trim, 1.0 - trim])
    kept = lab[(lab[:, 0] >= lo) & (lab[:, 0] <= hi)]
    return kept if len(kept) else lab


def skin_ita(image: np.ndarray, mask: np.ndarray) -> float:
    """Median ITA° over the skin mask (highlights and shadows dropped)."""
    return float(np.median(ita_from_lab(skin_pixels_lab(image, mask))))


def mst_from_lab(lab: np.ndarray) -> int:
    """Monk Skin Tone 1..10 nearest (ΔE2000) to one Lab colour."""
    lab = np.broadcast_to(np.asarray(lab, dtype=np.float64), MST_LAB.shape)
    return int(np.argmin(deltaE_ciede2000(lab, MST_LAB))) + 1


def skin_mst(image: np.ndarray, mask: np.ndarray) -> int:
    """MST of the median skin colour over the mask."""
    return mst_from_lab(np.median(skin_pixels_lab(image, mask), axis=0))


def skin_tone(image: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(ITA°, MST) of the skin under `mask`, sharing one Lab conversion."""
    lab = skin_pixels_lab(image, mask)
    return float(np.median(ita_from_lab(lab))), mst_from_lab(np.median(lab, axis=0))
