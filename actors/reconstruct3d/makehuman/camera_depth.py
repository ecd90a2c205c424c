"""The nearest depth per crop pixel of a posed head (a compiled z-buffer, for the baker's visibility test).

The same answer as `raster.rasterize(points[:, :2], faces, h, w, depth=points[:, 2], cull="cw").depth`
(pixel centres at +0.5, triangles running clockwise on the y-down screen dropped, smaller depth
nearer, +inf where nothing is drawn), at a fraction of the cost: the numpy rasteriser builds every
(triangle, row) span as arrays, this one walks the triangles' bounding boxes in a compiled loop
(~10k triangles on a 512² crop: a few ms). Compiled on first use, cached on disk by numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

INSIDE_EPS = 1e-7  # as raster.INSIDE_EPS: pixels on a shared edge belong to both neighbours


def camera_depth(points: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) float32 nearest depth. points: (V, 3) crop x, y and depth; faces: (F, 3)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    faces = np.ascontiguousarray(faces, dtype=np.int64)
    if points.ndim != 2 or points.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"points must be (V, 3) and faces (F, 3), got {points.shape} and {faces.shape}.")
    if faces.size and (faces.min() < 0 or faces.max() >= len(points)):
        raise ValueError("faces index points that do not exist.")
    return _zbuffer(points, faces, int(height), int(width))


@njit(cache=True, nogil=True)
def _zbuffer(points, faces, height, width):
    depth = np.full((height, width), np.inf, np.float32)
    for f in range(faces.shape[0]):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0, z0 = points[i0, 0], points[i0, 1], points[i0, 2]
        x1, y1, z1 = points[i1, 0], points[i1, 1], points[i1, 2]
        x2, y2, z2 = points[i2, 0], points[i2, 1], points[i2, 2]
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        if area >= -1e-12:  # clockwise on screen (or degenerate): culled
            continue
        col0 = max(int(np.ceil(min(x0, x1, x2) - 0.5)), 0)
        col1 = min(int(np.floor(max(x0, x1, x2) - 0.5)), width - 1)
        row0 = max(int(np.ceil(min(y0, y1, y2) - 0.5)), 0)
        row1 = min(int(np.floor(max(y0, y1, y2) - 0.5)), height - 1)
        inverse = 1.0 / area
        # Barycentric weights are planes over the screen: w = a·x + b·y + c, stepped along each row.
        a0, b0 = (y1 - y2) * inverse, (x2 - x1) * inverse
        a1, b1 = (y2 - y0) * inverse, (x0 - x2) * inverse
        c0 = (x1 * y2 - y1 * x2) * inverse
        c1 = (x2 * y0 - y2 * x0) * inverse
        for row in range(row0, row1 + 1):
            cy = row + 0.5
            w0 = a0 * (col0 + 0.5) + b0 * cy + c0
            w1 = a1 * (col0 + 0.5) + b1 * cy + c1
            for col in range(col0, col1 + 1):
                w2 = 1.0 - w0 - w1
                if w0 >= -INSIDE_EPS and w1 >= -INSIDE_EPS and w2 >= -INSIDE_EPS:
                    z = w0 * z0 + w1 * z1 + w2 * z2
                    if z < depth[row, col]:
                        depth[row, col] = z
                w0 += a0
                w1 += a1
    return depth
