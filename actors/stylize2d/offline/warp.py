"""Smooth, fold-free face warps built from landmark-placed displacement fields.

A warp is a sum of local fields F(p) = p + Σ D_i(p). Each field is small and smooth (its Jacobian
stays well below 1), so F is invertible: the backward map used to resample the image is found by the
Newton iteration on F(q) = p. Landmarks move through the forward map, so the warped image
comes with its own landmarks.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Magnify:
    """Scale around `centre` with a Gaussian falloff: D(p) = (amount_x, amount_y) ⊙ (p − c) · exp(−|p − c|²/r²).

    Positive amounts enlarge (eyes), negative shrink (nose, mouth). Fold-free while |amount| < 2.
    """

    centre: tuple[float, float]
    radius: float
    amount_x: float
    amount_y: float

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = x - self.centre[0], y - self.centre[1]
        falloff = np.exp(-(dx * dx + dy * dy) / (self.radius * self.radius))
        return self.amount_x * dx * falloff, self.amount_y * dy * falloff


@dataclass(frozen=True)
class Slim:
    """Pull the lower face towards its vertical axis (a softer, narrower jaw and a smaller chin).

    The pull grows from nothing at `top` to `amount` at `full` (a smoothstep in y), fades out well below
    `bottom` and away from the face sideways; `lift` raises the chin by that fraction of its depth below `full`.
    """

    axis_x: float
    top: float
    full: float
    bottom: float
    half_width: float
    amount: float
    lift: float

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.clip((y - self.top) / max(self.full - self.top, 1.0), 0.0, 1.0)
        ramp = t * t * (3.0 - 2.0 * t)
        below = np.maximum(y - self.bottom, 0.0) / self.half_width
        fade = np.exp(-below * below)
        side = (x - self.axis_x) / (1.6 * self.half_width)
        sideways = np.exp(-side * side)
        weight = ramp * fade * sideways
        depth = np.clip(y - self.full, 0.0, self.bottom - self.full)
        return -self.amount * (x - self.axis_x) * weight, -self.lift * depth * weight


class FaceWarp:
    """A sum of displacement fields with a forward map for points and a backward map for images."""

    def __init__(self, fields) -> None:
        self.fields = tuple(fields)

    def displacement(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total_x = np.zeros_like(x)
        total_y = np.zeros_like(y)
        for field in self.fields:
            dx, dy = field.displacement(x, y)
            total_x += dx
            total_y += dy
        return total_x, total_y

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Where points (n, 2+) go; extra columns (z) are carried unchanged."""
        out = np.array(points, dtype=np.float32, copy=True)
        dx, dy = self.displacement(out[:, 0].astype(np.float64), out[:, 1].astype(np.float64))
        out[:, 0] += dx.astype(np.float32)
        out[:, 1] += dy.astype(np.float32)
        return out

    def backward_map(self, shape: tuple[int, int], step: int = 4, iterations: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps (source x, source y for every output pixel).

        Solves F(q) = p by Newton's method (finite-difference Jacobian) on a grid every `step` pixels
        (the fields are smooth), then interpolates bilinearly to every pixel.
        """
        h, w = shape
        gh, gw = (h - 1) // step + 2, (w - 1) // step + 2
        py, px = np.mgrid[0:gh, 0:gw].astype(np.float64) * step
        dx, dy = self.displacement(px, py)
        qx, qy = px - dx, py - dy  # one fixed-point step as the starting guess
        eps = 0.25
        for _ in range(iterations):
            dx, dy = self.displacement(qx, qy)
            rx, ry = qx + dx - px, qy + dy - py
            ax, ay = self.displacement(qx + eps, qy)
            bx, by = self.displacement(qx, qy + eps)
            j11, j12 = 1.0 + (ax - dx) / eps, (bx - dx) / eps
            j21, j22 = (ay - dy) / eps, 1.0 + (by - dy) / eps
            det = j11 * j22 - j12 * j21
            qx = qx - (j22 * rx - j12 * ry) / det
            qy = qy - (j11 * ry - j21 * rx) / det
        if step == 1:
            return qx[:h, :w].astype(np.float32), qy[:h, :w].astype(np.float32)
        # Grid node (i, j) sits at pixel (i * step, j * step): sample the grid at pixel / step.
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) * np.float32(1.0 / step)
        map_x = cv2.remap(qx.astype(np.float32), xs, ys, cv2.INTER_LINEAR)
        map_y = cv2.remap(qy.astype(np.float32), xs, ys, cv2.INTER_LINEAR)
        return map_x, map_y

    def apply(self, image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], interpolation=cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.remap(image, maps[0], maps[1], interpolation, borderMode=cv2.BORDER_REFLECT)
