"""Painted anime eyes: sclera, a large graded iris, pupil, catchlights and a heavy upper lash line,
placed from the (warped) eye and iris landmarks and clipped to the eye opening."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from actors.stylize2d.offline import lines, regions
from actors.stylize2d.offline.filters import to_lab, to_rgb

SCLERA = np.array([0.97, 0.96, 0.95], np.float32)
HIGHLIGHT = np.array([1.0, 1.0, 1.0], np.float32)


def iris_colour(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The person's iris colour, RGB 0..1: the median of the darker half of the visible iris pixels
    (catchlights, sclera and lid shadow edges left out), enriched for painting along its own hue (never
    a new hue): chroma ×1.5, and at least 9 so a dark brown iris reads as brown, not grey."""
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for iris in (regions.IRIS_LEFT, regions.IRIS_RIGHT):
        centre = landmarks[iris[0], :2]
        radius = np.linalg.norm(landmarks[list(iris[1:]), :2] - centre, axis=1).mean()
        cv2.circle(mask, (int(round(centre[0])), int(round(centre[1]))), max(1, int(radius * 0.85)), 255, -1)
    eyes = regions.fill_mask((h, w), [regions.points(landmarks, regions.EYE_LEFT),
                                      regions.points(landmarks, regions.EYE_RIGHT)])
    pixels = crop[(mask > 0) & (eyes > 0)]
    if len(pixels) < 5:
        pixels = crop[mask > 0]
    lab = to_lab(pixels[None, :, :])[0]
    lab = lab[lab[:, 0] <= np.quantile(lab[:, 0], 0.6)]
    median = np.median(lab, axis=0)
    chroma = float(np.hypot(median[1], median[2]))
    scale = float(np.clip(max(1.5, 9.0 / chroma), 1.0, 4.0)) if chroma > 2.0 else 1.0
    scale = min(scale, 28.0 / chroma) if chroma > 2.0 else 1.0
    painted = np.array([np.clip(median[0], 22.0, 50.0), median[1] * scale, median[2] * scale], np.float32)
    return to_rgb(painted[None, None, :])[0, 0].astype(np.float32) / 255.0


def _eye_geometry(landmarks: np.ndarray, contour, iris) -> tuple[np.ndarray, np.ndarray, float, float]:
    pts = regions.points(landmarks, contour)
    centre = landmarks[iris[0], :2].astype(np.float32)
    iris_r = float(np.linalg.norm(landmarks[list(iris[1:]), :2] - centre, axis=1).mean())
    opening = float(pts[:, 1].max() - pts[:, 1].min())
    return pts, centre, iris_r, opening


@dataclass(frozen=True)
class EyeStyle:
    """How a style draws the eyes. Sizes are fractions of the eye opening (lid to lid) or iris radius."""

    iris_scale: tuple[float, float] = (1.25, 1.45)  # iris radii (x, y) / the photo's iris radius
    iris_min: tuple[float, float] = (0.42, 0.55)  # ... and at least these fractions of the opening
    lash_width: float = 0.3  # upper lash line width / opening
    wing: float = 0.8  # how far the lash line sweeps past the outer corner (0: no wing)
    lower_lash: float = 0.07  # lower lash line width / opening (outer half only)
    catchlights: bool = True
    lid_shadow: float = 0.18  # darkening of the sclera under the upper lid
    closed_below: float = 0.15  # opening / eye width under which the eye is drawn closed (lash line only)


ANIME_EYES = EyeStyle()


def _shade(rgb: np.ndarray, lightness: float, chroma: float) -> np.ndarray:
    """`rgb` (0..1) moved by `lightness` L* units with its chroma scaled by `chroma`: same hue."""
    lab = to_lab(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)[None, None, :])[0, 0]
    lab = np.array([np.clip(lab[0] + lightness, 2.0, 95.0), lab[1] * chroma, lab[2] * chroma], np.float32)
    return to_rgb(lab[None, None, :])[0, 0].astype(np.float32) / 255.0


def paint_eyes(colour: np.ndarray, landmarks: np.ndarray, iris_rgb: np.ndarray, line_colour: np.ndarray,
               style: EyeStyle = ANIME_EYES) -> np.ndarray:
    """Paint both eyes onto a float RGB image (returns a new image).

    The opening is the person's eye outline (landmarks, smoothed); the iris sits at their iris centre
    in their own colour, shaded dark at the top and light at the bottom (same hue), with a pupil,
    catchlights, and a lash line along their upper lid.
    """
    h, w = colour.shape[:2]
    out = colour.copy()
    iris_dark = _shade(iris_rgb, -14.0, 1.0)
    iris_light = _shade(iris_rgb, 16.0, 1.15)
    pupil_colour = _shade(iris_rgb, -30.0, 0.6)
    for contour, upper, lower, iris in (
        (regions.EYE_LEFT, regions.EYE_LEFT_UPPER, regions.EYE_LEFT_LOWER, regions.IRIS_LEFT),
        (regions.EYE_RIGHT, regions.EYE_RIGHT_UPPER, regions.EYE_RIGHT_LOWER, regions.IRIS_RIGHT),
    ):
        pts, centre, iris_r, opening = _eye_geometry(landmarks, contour, iris)
        closed = opening < style.closed_below * float(np.linalg.norm(pts[0] - pts[8]))
        # Work in a window around the eye (with room for the lash sweep).
        pad = int(np.ceil((0.6 + style.wing * 0.3) * opening + 8))
        x0, x1 = int(max(pts[:, 0].min() - pad, 0)), int(min(pts[:, 0].max() + pad, w))
        y0, y1 = int(max(pts[:, 1].min() - pad, 0)), int(min(pts[:, 1].max() + pad, h))
        if x1 <= x0 or y1 <= y0:
            continue
        window = (slice(y0, y1), slice(x0, x1))
        offset = np.array([x0, y0], np.float32)
        y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        opening_mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        outline = lines.smooth_curve(np.vstack([pts, pts[:1]]), 6) - offset
        cv2.fillPoly(opening_mask, [np.round(outline * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        inside = opening_mask.astype(np.float32) / 255.0
        # Sclera with a soft lid shadow at the top.
        top = pts[:, 1].min()
        lid_shadow = np.clip(1.0 - (y - top) / max(opening * 0.45, 1.0), 0.0, 1.0)
        sclera = SCLERA[None, None, :] * (1.0 - style.lid_shadow * lid_shadow[..., None])
        patch = out[window] * (1.0 - inside[..., None]) + sclera * inside[..., None]
        if closed:
            # A shut (or laughing) eye is its lid line: no white, no iris.
            inside = np.zeros_like(inside)
            patch = out[window].copy()
        # Iris: an ellipse, dark at the top, light at the bottom, with a darker rim.
        rx = max(iris_r * style.iris_scale[0], opening * style.iris_min[0])
        ry = max(iris_r * style.iris_scale[1], opening * style.iris_min[1])
        dx = (x - centre[0]) / rx
        dy = (y - centre[1]) / ry
        radius = np.sqrt(dx * dx + dy * dy)
        disc = np.clip((1.0 - radius) * rx, 0.0, 1.0) * inside
        t = np.clip((dy + 0.9) / 1.8, 0.0, 1.0)[..., None]
        iris_fill = iris_dark * (1.0 - t) + iris_light * t
        rim = np.clip((radius - 0.82) / 0.18, 0.0, 1.0)[..., None]
        iris_fill = iris_fill + (iris_dark * 0.6 - iris_fill) * rim
        patch = patch + (iris_fill - patch) * disc[..., None]
        # Pupil.
        pupil = np.clip((1.0 - np.sqrt((dx / 0.42) ** 2 + (dy / 0.46) ** 2)) * rx * 0.42, 0.0, 1.0) * inside
        patch = patch + (pupil_colour - patch) * pupil[..., None]
        # Catchlights: a large one upper-left, a small one lower-right.
        for (ox, oy, r) in ((-0.36, -0.38, 0.32), (0.36, 0.4, 0.13)) if style.catchlights else ():
            hx = (x - centre[0] - ox * rx) / (r * rx)
            hy = (y - centre[1] - oy * ry) / (r * rx)
            spot = np.clip((1.0 - np.sqrt(hx * hx + hy * hy)) * r * rx, 0.0, 1.0) * inside
            patch = patch + (HIGHLIGHT - patch) * spot[..., None]
        # Lashes: a heavy upper line along the lid, swept past the outer corner; a thin partial lower line.
        ink = np.zeros((y1 - y0, x1 - x0), np.uint8)
        upper_pts = regions.points(landmarks, upper) - offset
        outer = upper_pts[0]
        stroke = upper_pts
        if style.wing > 0:
            sweep = outer + (outer - upper_pts[1]) * style.wing + np.array([0.0, -0.15 * opening], np.float32)
            stroke = np.vstack([sweep, upper_pts])
        lines.tapered(ink, stroke, max(2.0, style.lash_width * opening), taper=0.3)
        if style.lower_lash > 0:
            lower_pts = regions.points(landmarks, lower) - offset
            lines.tapered(ink, lower_pts[4:], max(1.0, style.lower_lash * opening), taper=0.2)
        a = ink.astype(np.float32)[..., None] / 255.0
        out[window] = patch * (1.0 - a) + line_colour * a
    return out
