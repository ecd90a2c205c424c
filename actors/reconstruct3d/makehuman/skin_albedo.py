"""The person's skin colour with the photo's lighting taken out, and the lighting itself.

A photo's skin is albedo × shading. The shading estimate is the skin's luminance smoothed at the
scale of the lighting (a normalised Gaussian over the skin mask, in log space, a fraction of the
inter-ocular distance wide, spread over the whole crop by a push-pull fill), relative to its median
over the skin: 1 where the skin is lit as usual, < 1 in shadow, > 1 in a highlight. Dividing it out
(in linear RGB, all channels alike, so hue and chroma stay) leaves an albedo whose median is the
skin's median colour under its typical light — not a shadowed colour, and no lighter than the
photo's own skin (the median is kept). The same shading map delights the photo where it is projected
onto the face, so face, scalp, ears and neck share one tone.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..bake import push_pull

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # linear-light luminance (Rec. 709 / sRGB primaries)
SHADING_SIGMA_IOD = 0.45  # lighting scale: Gaussian sigma as a share of the inter-ocular distance
SHADING_LIMITS = (0.35, 2.5)  # the shading map stays within these factors of the median light
SHADING_DOWNSAMPLE = 8  # the shading map is computed at this fraction of the crop's resolution
TRIM = (0.1, 0.9)  # luminance quantiles of the skin kept for the colour (drops specular spots and pores' shade)
LEFT_IRIS, RIGHT_IRIS = 468, 473


@dataclass(frozen=True)
class SkinAlbedo:
    """The skin's colour without shading, and the crop's shading map."""

    rgb: np.ndarray  # (3,) float32 sRGB 0..255
    linear: np.ndarray  # (3,) float32 linear RGB 0..1
    shading: np.ndarray  # (H, W) float32: relative light on the crop (1 = the skin's median)


def check_inputs(crop: np.ndarray, skin_mask: np.ndarray, landmarks: np.ndarray) -> None:
    """Pure: one ValueError per broken rule."""
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"crop must be (H, W, 3) uint8 RGB, got {crop.shape} {crop.dtype}.")
    if np.shape(skin_mask) != crop.shape[:2]:
        raise ValueError(f"skin_mask must be {crop.shape[:2]}, got {np.shape(skin_mask)}.")
    if np.count_nonzero(skin_mask) < 50:
        raise ValueError("skin_mask has fewer than 50 pixels: no skin to measure.")
    if np.shape(landmarks)[0] <= RIGHT_IRIS:
        raise ValueError(f"landmarks must include the iris centres ({RIGHT_IRIS + 1} rows), got {np.shape(landmarks)}.")


def measure_skin_albedo(crop: np.ndarray, skin_mask: np.ndarray, landmarks: np.ndarray) -> SkinAlbedo:
    """The skin albedo and shading map of an aligned crop (see the module docstring)."""
    check_inputs(crop, skin_mask, landmarks)
    skin = np.asarray(skin_mask, dtype=bool)
    linear = srgb_to_linear(crop)
    luminance = np.maximum(linear @ LUMA, 1e-4)
    inter_ocular = float(np.linalg.norm(np.asarray(landmarks)[LEFT_IRIS, :2] - np.asarray(landmarks)[RIGHT_IRIS, :2]))
    shading = shading_map(np.log(luminance), skin, max(SHADING_SIGMA_IOD * inter_ocular, 2.0))
    albedo = linear[skin] / shading[skin][:, None]
    brightness = albedo @ LUMA
    low, high = np.quantile(brightness, TRIM)
    kept = albedo[(brightness >= low) & (brightness <= high)]
    colour = np.median(kept if len(kept) else albedo, axis=0).astype(np.float32)
    return SkinAlbedo(rgb=(linear_to_srgb(colour) * 255.0).astype(np.float32), linear=colour, shading=shading)


def shading_map(log_luminance: np.ndarray, skin: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32 smooth relative shading: masked Gaussian of log luminance over the skin, filled
    beyond it, exponentiated relative to its median over the skin, clamped to SHADING_LIMITS.
    Computed at 1/SHADING_DOWNSAMPLE of the resolution (it is smooth) and resized back."""
    height, width = skin.shape
    small = (max(width // SHADING_DOWNSAMPLE, 1), max(height // SHADING_DOWNSAMPLE, 1))
    weight = cv2.resize(skin.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    values = cv2.resize(log_luminance.astype(np.float32) * skin, small, interpolation=cv2.INTER_AREA)
    sigma = max(sigma / SHADING_DOWNSAMPLE, 0.5)
    numerator = cv2.GaussianBlur(values, (0, 0), sigma)
    denominator = cv2.GaussianBlur(weight, (0, 0), sigma)
    confident = np.clip(denominator / max(float(denominator.max()), 1e-6) * 4.0, 0.0, 1.0)
    smooth = np.where(denominator > 1e-4, numerator / np.maximum(denominator, 1e-4), 0.0).astype(np.float32)
    filled = cv2.resize(push_pull(smooth[..., None], confident)[..., 0], (width, height), interpolation=cv2.INTER_LINEAR)
    relative = filled - np.median(filled[skin])
    return np.clip(np.exp(relative), *SHADING_LIMITS).astype(np.float32)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 0..255 through a table, or float 0..1) → linear light, float32 0..1 (IEC 61966-2-1)."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return _DECODE[rgb]
    value = rgb.astype(np.float32)
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light 0..1 → sRGB float32 0..1."""
    value = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(value <= 0.0031308, 12.92 * value, 1.055 * value ** (1 / 2.4) - 0.055).astype(np.float32)


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear light 0..1 → sRGB uint8 through a 16k-entry table (exact to the nearest code but in the
    darkest ~0.1 % of the range, where a table step is under one code)."""
    index = np.clip(np.asarray(linear, dtype=np.float32) * (ENCODE_STEPS - 1) + 0.5, 0, ENCODE_STEPS - 1).astype(np.int32)
    return _ENCODE[index]


ENCODE_STEPS = 16384
_DECODE = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)  # read-only tables
_ENCODE = np.clip(linear_to_srgb(np.linspace(0.0, 1.0, ENCODE_STEPS, dtype=np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
_DECODE.setflags(write=False)
_ENCODE.setflags(write=False)
