"""Painted anime eyes: sclera, a large graded iris, pupil, catchlights and a heavy upper lash line,
placed from the (warped) eye and iris landmarks and clipped to the eye opening."""
from __future__ import annotations

import cv2
import numpy as np

from actors.stylize2d.offline import lines, regions
from actors.stylize2d.offline.filters import to_lab, to_rgb

SCLERA = np.array([0.97, 0.96, 0.95], np.float32)
HIGHLIGHT = np.array([1.0, 1.0, 1.0], np.float32)


def iris_colour(crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB (0..1) of the photo's irises, made a little more vivid for painting."""
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for iris in (regions.IRIS_LEFT, regions.IRIS_RIGHT):
        centre = landmarks[iris[0], :2]
        radius = np.linalg.norm(landmarks[list(iris[1:]), :2] - centre, axis=1).mean()
        cv2.circle(mask, (int(round(centre[0])), int(round(centre[1]))), max(1, int(radius * 0.8)), 255, -1)
    eyes = regions.fill_mask((h, w), [regions.points(landmarks, regions.EYE_LEFT),
                                      regions.points(landmarks, regions.EYE_RIGHT)])
    pixels = crop[(mask > 0) & (eyes > 0)]
    if len(pixels) < 5:
        pixels = crop[mask > 0]
    lab = to_lab(np.median(pixels, axis=0).astype(np.uint8)[None, None, :])[0, 0]
    # Vivid and mid-dark: anime irises read as colour, not as black.
    chroma = np.hypot(lab[1], lab[2])
    scale = max(1.0, 18.0 / max(chroma, 1e-3)) if chroma > 2.0 else 1.0
    lab = np.array([np.clip(lab[0], 28.0, 45.0), lab[1] * scale, lab[2] * scale], np.float32)
    return to_rgb(lab[None, None, :])[0, 0].astype(np.float32) / 255.0


def _eye_geometry(landmarks: np.ndarray, contour, iris) -> tuple[np.ndarray, np.ndarray, float, float]:
    pts = regions.points(landmarks, contour)
    centre = landmarks[iris[0], :2].astype(np.float32)
    iris_r = float(np.linalg.norm(landmarks[list(iris[1:]), :2] - centre, axis=1).mean())
    opening = float(pts[:, 1].max() - pts[:, 1].min())
    return pts, centre, iris_r, opening


def paint_eyes(colour: np.ndarray, landmarks: np.ndarray, iris_rgb: np.ndarray, line_colour: np.ndarray) -> np.ndarray:
    """Paint both eyes onto a float RGB image (returns a new image)."""
    h, w = colour.shape[:2]
    out = colour.copy()
    iris_dark = iris_rgb * 0.35
    iris_light = np.clip(iris_rgb * 1.6 + 0.08, 0.0, 1.0)
    for contour, upper, lower, iris in (
        (regions.EYE_LEFT, regions.EYE_LEFT_UPPER, regions.EYE_LEFT_LOWER, regions.IRIS_LEFT),
        (regions.EYE_RIGHT, regions.EYE_RIGHT_UPPER, regions.EYE_RIGHT_LOWER, regions.IRIS_RIGHT),
    ):
        pts, centre, iris_r, opening = _eye_geometry(landmarks, contour, iris)
        # Work in a window around the eye (with room for the lash sweep).
        pad = int(np.ceil(0.6 * opening + 6))
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
        sclera = SCLERA[None, None, :] * (1.0 - 0.18 * lid_shadow[..., None])
        patch = out[window] * (1.0 - inside[..., None]) + sclera * inside[..., None]
        # Iris: tall ellipse, dark at the top, bright at the bottom.
        rx = max(iris_r * 1.15, opening * 0.42)
        ry = max(iris_r * 1.3, opening * 0.55)
        dx = (x - centre[0]) / rx
        dy = (y - centre[1]) / ry
        disc = np.clip((1.0 - np.sqrt(dx * dx + dy * dy)) * rx, 0.0, 1.0) * inside
        t = np.clip((dy + 1.0) / 2.0, 0.0, 1.0)[..., None]
        iris_fill = iris_dark * (1.0 - t) + iris_light * t
        rim = np.clip((np.sqrt(dx * dx + dy * dy) - 0.85) / 0.15, 0.0, 1.0)[..., None]
        iris_fill = iris_fill * (1.0 - 0.6 * rim)
        patch = patch + (iris_fill - patch) * disc[..., None]
        # Pupil.
        pupil = np.clip((1.0 - np.sqrt((dx / 0.42) ** 2 + (dy / 0.48) ** 2)) * rx * 0.42, 0.0, 1.0) * inside
        patch = patch + (iris_dark * 0.4 - patch) * pupil[..., None]
        # Catchlights: a large one upper-left, a small one lower-right.
        for (ox, oy, r) in ((-0.38, -0.4, 0.34), (0.35, 0.42, 0.14)):
            hx = (x - centre[0] - ox * rx) / (r * rx)
            hy = (y - centre[1] - oy * ry) / (r * rx)
            spot = np.clip((1.0 - np.sqrt(hx * hx + hy * hy)) * r * rx, 0.0, 1.0) * inside
            patch = patch + (HIGHLIGHT - patch) * spot[..., None]
        # Lashes: heavy upper line swept past the outer corner, thin partial lower line.
        ink = np.zeros((y1 - y0, x1 - x0), np.uint8)
        upper_pts = regions.points(landmarks, upper) - offset
        outer = upper_pts[0]
        sweep = outer + (outer - upper_pts[1]) * 0.8 + np.array([0.0, -0.12 * opening], np.float32)
        lines.tapered(ink, np.vstack([sweep, upper_pts]), max(2.0, 0.22 * opening), taper=0.3)
        lower_pts = regions.points(landmarks, lower) - offset
        lines.tapered(ink, lower_pts[4:], max(1.0, 0.07 * opening), taper=0.2)
        a = ink.astype(np.float32)[..., None] / 255.0
        out[window] = patch * (1.0 - a) + line_colour * a
    return out
