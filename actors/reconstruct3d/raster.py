"""A vectorised triangle rasteriser (numpy): which triangle covers each pixel, with barycentrics and depth.

Shared by the UV-space baker (no depth test: UV triangles do not overlap), the camera visibility
test of the baker and the view renderer (nearest triangle wins). Pixels are sampled at their centres
(x + 0.5, y + 0.5), x right, y down. Scanline rasterisation, vectorised: for every (triangle, row)
pair the span of pixel centres inside the triangle comes from its three barycentric planes, so only
covered pixels are ever generated; triangles are processed in chunks so memory stays bounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 400_000  # (triangle, scanline) pairs per chunk
INSIDE_EPS = 1e-7  # barycentric tolerance: pixels on a shared edge belong to both neighbours


@dataclass
class Raster:
    triangle: np.ndarray  # (H, W) int32: covering triangle, -1 where none
    barycentric: np.ndarray  # (H, W, 3) float32: weights of the triangle's three corners (0 where none)
    depth: np.ndarray  # (H, W) float32: interpolated depth, +inf where none

    @property
    def covered(self) -> np.ndarray:
        return self.triangle >= 0


def rasterize(
    points: np.ndarray,
    faces: np.ndarray,
    height: int,
    width: int,
    depth: np.ndarray | None = None,
    cull: str | None = None,
) -> Raster:
    """Rasterise triangles given in pixel coordinates.

    points: (V, 2) x, y in pixels. faces: (F, 3) indices into `points`. depth: (V,) per-vertex depth
    (smaller = nearer); with it the nearest triangle wins each pixel, without it triangles must not
    overlap (a later triangle overwrites an earlier one). cull: None, "cw" or "ccw" — drop triangles
    whose corners run clockwise / counter-clockwise on screen (y down).
    """
    points = np.asarray(points, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be (V, 2), got {points.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {faces.shape}.")
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}×{width}.")
    if cull not in (None, "cw", "ccw"):
        raise ValueError(f"cull must be None, 'cw' or 'ccw', got {cull!r}.")
    if depth is not None:
        depth = np.asarray(depth, dtype=np.float64)
        if depth.shape != (len(points),):
            raise ValueError(f"depth must be ({len(points)},), got {depth.shape}.")

    p0, p1, p2 = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    area = (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0])
    keep = np.abs(area) > 1e-12
    if cull == "cw":  # on a y-down screen a positive signed area runs clockwise
        keep &= area < 0
    elif cull == "ccw":
        keep &= area > 0
    # Barycentric weight i as a plane over the screen: w_i = A_i x + B_i y + C_i.
    safe_area = np.where(keep, area, 1.0)
    coeff_a = np.stack([p1[:, 1] - p2[:, 1], p2[:, 1] - p0[:, 1], p0[:, 1] - p1[:, 1]], axis=1) / safe_area[:, None]
    coeff_b = np.stack([p2[:, 0] - p1[:, 0], p0[:, 0] - p2[:, 0], p1[:, 0] - p0[:, 0]], axis=1) / safe_area[:, None]
    coeff_c = np.stack(
        [p1[:, 0] * p2[:, 1] - p1[:, 1] * p2[:, 0], p2[:, 0] * p0[:, 1] - p2[:, 1] * p0[:, 0], p0[:, 0] * p1[:, 1] - p0[:, 1] * p1[:, 0]],
        axis=1,
    ) / safe_area[:, None]
    ys = np.stack([p0[:, 1], p1[:, 1], p2[:, 1]], axis=1)
    y0 = np.clip(np.ceil(ys.min(axis=1) - 0.5), 0, height).astype(np.int64)
    y1 = np.clip(np.floor(ys.max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    rows_per_triangle = np.where(keep, np.maximum(y1 - y0 + 1, 0), 0)

    hit_pixel, hit_triangle, hit_weights, hit_depth = [], [], [], []
    for chunk in _chunks(rows_per_triangle):
        # Scanlines: each (triangle, row) pair and the span of pixel centres inside the triangle.
        tri_row = np.repeat(chunk, rows_per_triangle[chunk])
        if tri_row.size == 0:
            continue
        starts = np.cumsum(rows_per_triangle[chunk]) - rows_per_triangle[chunk]
        row = y0[tri_row] + np.arange(tri_row.size) - np.repeat(starts, rows_per_triangle[chunk])
        slope = coeff_a[tri_row]  # (R, 3): d w_i / dx
        offset = coeff_b[tri_row] * (row + 0.5)[:, None] + coeff_c[tri_row]  # w_i at x = 0
        bound = (-INSIDE_EPS - offset) / np.where(slope != 0, slope, 1.0)  # w_i >= -eps  <=>  x >=/<= bound
        lo = np.max(np.where(slope > 0, bound, -np.inf), axis=1)
        hi = np.min(np.where(slope < 0, bound, np.inf), axis=1)
        flat_out = ((slope == 0) & (offset < -INSIDE_EPS)).any(axis=1)
        x_start = np.maximum(np.ceil(np.maximum(lo, -1.0) - 0.5), 0).astype(np.int64)
        x_end = np.minimum(np.floor(np.minimum(hi, width + 1.0) - 0.5), width - 1).astype(np.int64)
        span = np.where(flat_out, 0, np.maximum(x_end - x_start + 1, 0))
        # Pixels of every span: w0, w1 and depth are linear along the row; w2 = 1 - w0 - w1.
        pixel_row = np.repeat(np.arange(tri_row.size), span)
        if pixel_row.size == 0:
            continue
        span_starts = np.cumsum(span) - span
        px = x_start[pixel_row] + np.arange(pixel_row.size) - np.repeat(span_starts, span)
        cx = (px + 0.5).astype(np.float32)
        slope32, offset32 = slope.astype(np.float32), offset.astype(np.float32)
        w0 = slope32[:, 0][pixel_row] * cx + offset32[:, 0][pixel_row]
        w1 = slope32[:, 1][pixel_row] * cx + offset32[:, 1][pixel_row]
        hit_pixel.append(row[pixel_row] * width + px)
        hit_triangle.append(tri_row[pixel_row])
        hit_weights.append((w0, w1))
        if depth is not None:
            corner_depth = depth[faces[tri_row]]  # (R, 3)
            depth_slope = (slope * corner_depth).sum(axis=1).astype(np.float32)
            depth_offset = (offset * corner_depth).sum(axis=1).astype(np.float32)
            hit_depth.append(depth_slope[pixel_row] * cx + depth_offset[pixel_row])

    triangle = np.full(height * width, -1, dtype=np.int32)
    barycentric = np.zeros((height * width, 3), dtype=np.float32)
    depth_buffer = np.full(height * width, np.inf, dtype=np.float32)
    if hit_pixel:
        pixel = np.concatenate(hit_pixel)
        tri = np.concatenate(hit_triangle)
        w0 = np.concatenate([w[0] for w in hit_weights])
        w1 = np.concatenate([w[1] for w in hit_weights])
        if depth is not None:
            z = np.concatenate(hit_depth)
            np.minimum.at(depth_buffer, pixel, z)
            nearest = z <= depth_buffer[pixel]  # ties (a shared edge) keep either triangle
            pixel, tri, w0, w1 = pixel[nearest], tri[nearest], w0[nearest], w1[nearest]
        triangle[pixel] = tri
        barycentric[pixel, 0] = w0
        barycentric[pixel, 1] = w1
        barycentric[pixel, 2] = 1.0 - w0 - w1
    return Raster(
        triangle=triangle.reshape(height, width),
        barycentric=barycentric.reshape(height, width, 3),
        depth=depth_buffer.reshape(height, width),
    )


def _chunks(counts: np.ndarray):
    """Split triangle indices into runs whose scanline counts sum to about CHUNK_ROWS."""
    boundaries = np.searchsorted(np.cumsum(counts), np.arange(CHUNK_ROWS, counts.sum() + CHUNK_ROWS, CHUNK_ROWS))
    start = 0
    for end in np.unique(np.minimum(boundaries + 1, len(counts))):
        if end > start:
            yield np.arange(start, end)
            start = end
    if start < len(counts):
        yield np.arange(start, len(counts))
