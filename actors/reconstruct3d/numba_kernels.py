"""The compiled kernels of `numba_render`: per-triangle setup, visibility on a 2×2 sample grid, per-pixel
resolve, and blended parts.

Conventions: screen points in pixels (x right, y down, pixel centres at +0.5); depth larger = nearer; a
triangle is front-facing when its signed screen area is negative (counter-clockwise seen from outside
becomes clockwise on a y-down screen). Materials are indices into the tables `numba_render` builds.

Attributes (normal, UV) are linear over a triangle on an orthographic screen, so `setup` stores each as
a value at the triangle's first corner plus its screen gradient (`RECORD` layout); shading a pixel is
then a few multiply-adds on one contiguous record instead of three vertex gathers.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

OPAQUE, MASK, BLEND, HIDDEN = 0, 1, 2, 3  # HIDDEN: an untextured MASK material below the cut-off
MASK_SOLID, MASK_CLEAR = 1, 2  # mask_classes: every sample passes / fails the alpha test
INSIDE_EPS = 1e-7  # barycentric tolerance: samples on a shared edge belong to both neighbours
CUTOFF_255 = 0.5 * 255.0  # view_scene.ALPHA_CUTOFF on the 0–255 texel scale
# Per-triangle record (float32): anchor x, y | normal at anchor (3), d/dx (3), d/dy (3) | uv at anchor (2), d/dx (2), d/dy (2)
X0, NORMAL, NORMAL_DX, NORMAL_DY, UV, UV_DX, UV_DY, RECORD = 0, 2, 5, 8, 11, 13, 15, 17
JIT = dict(cache=True, nogil=True, fastmath=True)


@njit(**JIT)
def setup(screen, faces, normals, uvs, uv_faces, per_face, texture, levels, level_count):
    """Per triangle: attribute record (F, RECORD) float32, signed area (F,) (0: degenerate) and mip level
    (F,) int32 (log2 of texels per pixel along the most stretched screen axis)."""
    count = faces.shape[0]
    records = np.zeros((count, RECORD), np.float32)
    areas = np.zeros(count, np.float64)
    lod = np.zeros(count, np.int32)
    for f in range(count):
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0 = screen[i0, 0], screen[i0, 1]
        ex1, ey1 = screen[i1, 0] - x0, screen[i1, 1] - y0
        ex2, ey2 = screen[i2, 0] - x0, screen[i2, 1] - y0
        area = ex1 * ey2 - ey1 * ex2
        if abs(area) < 1e-9:
            continue
        areas[f] = area
        # Barycentric weights of corners 1 and 2 relative to corner 0: w1 = (ey2 dx - ex2 dy) / area, w2 = (ex1 dy - ey1 dx) / area.
        w1dx, w1dy = ey2 / area, -ex2 / area
        w2dx, w2dy = -ey1 / area, ex1 / area
        records[f, X0] = x0
        records[f, X0 + 1] = y0
        for c in range(3):
            n0, n1, n2 = normals[i0, c], normals[i1, c], normals[i2, c]
            records[f, NORMAL + c] = n0
            records[f, NORMAL_DX + c] = (n1 - n0) * w1dx + (n2 - n0) * w2dx
            records[f, NORMAL_DY + c] = (n1 - n0) * w1dy + (n2 - n0) * w2dy
        a, b, c3 = uv_faces[f, 0], uv_faces[f, 1], uv_faces[f, 2]
        for c in range(2):
            t0, t1, t2 = uvs[a, c], uvs[b, c], uvs[c3, c]
            records[f, UV + c] = t0
            records[f, UV_DX + c] = (t1 - t0) * w1dx + (t2 - t0) * w2dx
            records[f, UV_DY + c] = (t1 - t0) * w1dy + (t2 - t0) * w2dy
        t = texture[per_face[f]]
        if t >= 0:
            width, height = levels[t, 0, 1], levels[t, 0, 2]
            dx = (records[f, UV_DX] * width) ** 2 + (records[f, UV_DX + 1] * height) ** 2
            dy = (records[f, UV_DY] * width) ** 2 + (records[f, UV_DY + 1] * height) ** 2
            span = max(dx, dy)
            if span > 1.0:
                lod[f] = min(int(math.floor(0.5 * math.log2(span) + 0.5)), level_count[t] - 1)
    return records, areas, lod


@njit(**JIT, inline="always")
def _texel(pixels, levels, texture, level, u, v):
    """Bilinear RGBA (0–255) of `texture` at mip `level`, UV (u, v) with v up; edges clamp."""
    offset, width, height = levels[texture, level, 0], levels[texture, level, 1], levels[texture, level, 2]
    x = min(max(u * width - 0.5, 0.0), width - 1.0)
    y = min(max((1.0 - v) * height - 0.5, 0.0), height - 1.0)
    x0, y0 = int(x), int(y)
    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
    fx, fy = x - x0, y - y0
    a = offset + (y0 * width + x0) * 4
    b = offset + (y0 * width + x1) * 4
    c = offset + (y1 * width + x0) * 4
    d = offset + (y1 * width + x1) * 4
    wa, wb, wc, wd = (1.0 - fx) * (1.0 - fy), fx * (1.0 - fy), (1.0 - fx) * fy, fx * fy
    return (wa * pixels[a] + wb * pixels[b] + wc * pixels[c] + wd * pixels[d],
            wa * pixels[a + 1] + wb * pixels[b + 1] + wc * pixels[c + 1] + wd * pixels[d + 1],
            wa * pixels[a + 2] + wb * pixels[b + 2] + wc * pixels[c + 2] + wd * pixels[d + 2],
            wa * pixels[a + 3] + wb * pixels[b + 3] + wc * pixels[c + 3] + wd * pixels[d + 3])


@njit(**JIT, inline="always")
def _span(a0, b0, c0, a1, b1, c1, a2, b2, c2, y, limit):
    """Inclusive column range [lo, hi] of sample centres x + 0.5 on row centre y where all three weights ≥ 0."""
    lo, hi = -1.0, limit + 1.0
    for a, b, c in ((a0, b0, c0), (a1, b1, c1), (a2, b2, c2)):
        value = b * y + c  # weight at x = 0
        if a > 0.0:
            lo = max(lo, (-INSIDE_EPS - value) / a)
        elif a < 0.0:
            hi = min(hi, (-INSIDE_EPS - value) / a)
        elif value < -INSIDE_EPS:
            return 0, -1
    return max(int(math.ceil(lo - 0.5)), 0), min(int(math.floor(hi - 0.5)), limit - 1)


@njit(**JIT)
def mask_classes(uvs, uv_faces, per_face, modes, texture, lod, pixels, levels):
    """Per triangle (F,) int8: for MASK triangles whose texels (at the mip level visibility reads, over
    the UV bounding box and one texel around it) are all above the alpha cut-off, MASK_SOLID; all below,
    MASK_CLEAR; else 0 (test each sample). Bilinear values are convex combinations of those texels, so
    the answer is the per-sample test's for every sample, at a fraction of its cost (a hair cap is
    solid but for its hairline)."""
    count = uv_faces.shape[0]
    classes = np.zeros(count, np.int8)
    for f in range(count):
        material = per_face[f]
        t = texture[material]
        if modes[material] != MASK or t < 0:
            continue
        level = max(lod[f] - 1, 0)  # as visibility reads it
        offset, width, height = levels[t, level, 0], levels[t, level, 1], levels[t, level, 2]
        u_lo = min(uvs[uv_faces[f, 0], 0], uvs[uv_faces[f, 1], 0], uvs[uv_faces[f, 2], 0])
        u_hi = max(uvs[uv_faces[f, 0], 0], uvs[uv_faces[f, 1], 0], uvs[uv_faces[f, 2], 0])
        v_lo = min(uvs[uv_faces[f, 0], 1], uvs[uv_faces[f, 1], 1], uvs[uv_faces[f, 2], 1])
        v_hi = max(uvs[uv_faces[f, 0], 1], uvs[uv_faces[f, 1], 1], uvs[uv_faces[f, 2], 1])
        x0 = min(max(int(math.floor(u_lo * width - 0.5)) - 1, 0), width - 1)
        x1 = min(max(int(math.ceil(u_hi * width - 0.5)) + 1, 0), width - 1)
        y0 = min(max(int(math.floor((1.0 - v_hi) * height - 0.5)) - 1, 0), height - 1)
        y1 = min(max(int(math.ceil((1.0 - v_lo) * height - 0.5)) + 1, 0), height - 1)
        lowest, highest = 255, 0
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                a = pixels[offset + (y * width + x) * 4 + 3]
                lowest, highest = min(lowest, a), max(highest, a)
        if lowest >= CUTOFF_255:
            classes[f] = MASK_SOLID
        elif highest < CUTOFF_255:
            classes[f] = MASK_CLEAR
    return classes


@njit(**JIT)
def visibility(screen, depth, faces, areas, records, per_face, modes, double_sided, texture, lod, pixels, levels, size,
               classes):
    """Nearest OPAQUE/MASK triangle per sample of the (2·size)² grid: (ids (-1: none), depths), flat row-major.
    classes: `mask_classes` (MASK triangles whose samples all pass or all fail skip the per-sample test)."""
    grid = 2 * size
    triangle = np.full(grid * grid, -1, np.int32)
    nearest = np.full(grid * grid, -np.inf, np.float32)
    for f in range(faces.shape[0]):
        material = per_face[f]
        mode = modes[material]
        area = areas[f]
        if mode >= BLEND or area == 0.0 or (area > 0.0 and not double_sided[material]):  # BLEND later; HIDDEN never
            continue
        if classes[f] == MASK_CLEAR:
            continue
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        # Barycentric planes on the sample grid (coordinates doubled), in float64.
        x0, y0 = 2.0 * screen[i0, 0], 2.0 * screen[i0, 1]
        x1, y1 = 2.0 * screen[i1, 0], 2.0 * screen[i1, 1]
        x2, y2 = 2.0 * screen[i2, 0], 2.0 * screen[i2, 1]
        scaled = 4.0 * area
        a0, b0, c0 = (y1 - y2) / scaled, (x2 - x1) / scaled, (x1 * y2 - y1 * x2) / scaled
        a1, b1, c1 = (y2 - y0) / scaled, (x0 - x2) / scaled, (x2 * y0 - y2 * x0) / scaled
        a2, b2, c2 = (y0 - y1) / scaled, (x1 - x0) / scaled, (x0 * y1 - y0 * x1) / scaled
        z0, z1, z2 = depth[i0], depth[i1], depth[i2]
        az = a0 * (z0 - z2) + a1 * (z1 - z2)
        bz = b0 * (z0 - z2) + b1 * (z1 - z2)
        cz = z2 + c0 * (z0 - z2) + c1 * (z1 - z2)
        row_lo = max(int(math.ceil(min(y0, y1, y2) - 0.5)), 0)
        row_hi = min(int(math.floor(max(y0, y1, y2) - 0.5)), grid - 1)
        masked = mode == MASK and texture[material] >= 0 and classes[f] != MASK_SOLID
        for row in range(row_lo, row_hi + 1):
            cy = row + 0.5
            lo, hi = _span(a0, b0, c0, a1, b1, c1, a2, b2, c2, cy, grid)
            zrow = bz * cy + cz + az * 0.5
            for column in range(lo, hi + 1):
                z = zrow + az * column
                index = row * grid + column
                if z <= nearest[index]:
                    continue
                if masked:
                    cx = column + 0.5
                    dx, dy = 0.5 * cx - records[f, X0], 0.5 * cy - records[f, X0 + 1]
                    u = records[f, UV] + records[f, UV_DX] * dx + records[f, UV_DY] * dy
                    v = records[f, UV + 1] + records[f, UV_DX + 1] * dx + records[f, UV_DY + 1] * dy
                    level = max(lod[f] - 1, 0)  # samples are twice as dense as pixels: one mip level sharper
                    if _texel(pixels, levels, texture[material], level, u, v)[3] < CUTOFF_255:
                        continue
                nearest[index] = z
                triangle[index] = f
    return triangle, nearest


@njit(**JIT, inline="always")
def _shade(f, x, y, records, areas, per_face, shading, texture, lod, pixels, levels, light, halfway, ambient, diffuse):
    """(r, g, b on 0–255 unclipped, alpha 0–1) of triangle f at pixel point (x, y)."""
    dx, dy = x - records[f, X0], y - records[f, X0 + 1]
    nx = records[f, NORMAL] + records[f, NORMAL_DX] * dx + records[f, NORMAL_DY] * dy
    ny = records[f, NORMAL + 1] + records[f, NORMAL_DX + 1] * dx + records[f, NORMAL_DY + 1] * dy
    nz = records[f, NORMAL + 2] + records[f, NORMAL_DX + 2] * dx + records[f, NORMAL_DY + 2] * dy
    scale = 1.0 / math.sqrt(max(nx * nx + ny * ny + nz * nz, 1e-24))
    if areas[f] > 0.0:  # a back face (double-sided material) is lit from its own side
        scale = -scale
    nx, ny, nz = nx * scale, ny * scale, nz * scale
    material = per_face[f]
    if texture[material] >= 0:
        u = records[f, UV] + records[f, UV_DX] * dx + records[f, UV_DY] * dy
        v = records[f, UV + 1] + records[f, UV_DX + 1] * dx + records[f, UV_DY + 1] * dy
        r, g, b, a = _texel(pixels, levels, texture[material], lod[f], u, v)
    else:
        r, g, b, a = 255.0, 255.0, 255.0, 255.0
    lambert = max(nx * light[0] + ny * light[1] + nz * light[2], 0.0)
    highlight = 0.0
    if lambert > 0.0 and shading[material, 4] > 0.0:
        highlight = max(nx * halfway[0] + ny * halfway[1] + nz * halfway[2], 0.0)
        for _ in range(int(shading[material, 5])):  # exponent 2^k by k squarings
            highlight *= highlight
        highlight *= 255.0 * shading[material, 4]
    level = ambient + diffuse * lambert
    return (r * shading[material, 0] * level + highlight, g * shading[material, 1] * level + highlight,
            b * shading[material, 2] * level + highlight, a / 255.0 * shading[material, 3])


@njit(**JIT)
def resolve(image, background, triangle, records, areas, per_face, shading, texture, lod, pixels, levels, light, halfway,
            ambient, diffuse):
    """Fill every pixel of `image`: shade each distinct triangle among a pixel's 4 samples once, at the
    centroid of its samples, and weight it by its share of them; `background` (r, g, b) keeps the rest."""
    size = image.shape[0]
    grid = 2 * size
    for py in range(size):
        for px in range(size):
            base = 2 * py * grid + 2 * px
            ids = (triangle[base], triangle[base + 1], triangle[base + grid], triangle[base + grid + 1])
            if ids[0] < 0 and ids[1] < 0 and ids[2] < 0 and ids[3] < 0:
                image[py, px, 0] = background[0]
                image[py, px, 1] = background[1]
                image[py, px, 2] = background[2]
                continue
            if ids[0] == ids[1] and ids[0] == ids[2] and ids[0] == ids[3]:  # inside one triangle: most pixels
                cr, cg, cb, _ = _shade(ids[0], px + 0.5, py + 0.5, records, areas, per_face, shading, texture, lod,
                                       pixels, levels, light, halfway, ambient, diffuse)
                image[py, px, 0] = min(cr, 255.0)
                image[py, px, 1] = min(cg, 255.0)
                image[py, px, 2] = min(cb, 255.0)
                continue
            r = g = b = 0.0
            covered = 0
            for k in range(4):
                f = ids[k]
                if f < 0 or (k > 0 and ids[0] == f) or (k > 1 and ids[1] == f) or (k > 2 and ids[2] == f):
                    continue
                count, sx, sy = 0, 0.0, 0.0
                for j in range(k, 4):
                    if ids[j] == f:
                        count += 1
                        sx += 0.25 + 0.5 * (j % 2)
                        sy += 0.25 + 0.5 * (j // 2)
                cr, cg, cb, _ = _shade(f, px + sx / count, py + sy / count, records, areas, per_face, shading, texture,
                                       lod, pixels, levels, light, halfway, ambient, diffuse)
                r += min(cr, 255.0) * count  # clamped per sample, as a framebuffer would
                g += min(cg, 255.0) * count
                b += min(cb, 255.0) * count
                covered += count
            rest = 4 - covered
            image[py, px, 0] = (r + rest * background[0]) * 0.25
            image[py, px, 1] = (g + rest * background[1]) * 0.25
            image[py, px, 2] = (b + rest * background[2]) * 0.25


@njit(**JIT)
def blend(image, nearest, order, screen, depth, faces, records, areas, per_face, shading, double_sided, texture, lod,
          pixels, levels, light, halfway, ambient, diffuse):
    """Composite BLEND triangles (in `order`, farthest first) over the image at pixel centres, hidden behind
    the nearest opaque sample of each pixel."""
    size = image.shape[0]
    grid = 2 * size
    for n in range(order.shape[0]):
        f = order[n]
        area = areas[f]
        if area == 0.0 or (area > 0.0 and not double_sided[per_face[f]]):
            continue
        i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
        x0, y0, x1, y1, x2, y2 = screen[i0, 0], screen[i0, 1], screen[i1, 0], screen[i1, 1], screen[i2, 0], screen[i2, 1]
        a0, b0, c0 = (y1 - y2) / area, (x2 - x1) / area, (x1 * y2 - y1 * x2) / area
        a1, b1, c1 = (y2 - y0) / area, (x0 - x2) / area, (x2 * y0 - y2 * x0) / area
        a2, b2, c2 = (y0 - y1) / area, (x1 - x0) / area, (x0 * y1 - y0 * x1) / area
        z0, z1, z2 = depth[i0], depth[i1], depth[i2]
        row_lo = max(int(math.ceil(min(y0, y1, y2) - 0.5)), 0)
        row_hi = min(int(math.floor(max(y0, y1, y2) - 0.5)), size - 1)
        for row in range(row_lo, row_hi + 1):
            cy = row + 0.5
            lo, hi = _span(a0, b0, c0, a1, b1, c1, a2, b2, c2, cy, size)
            for column in range(lo, hi + 1):
                cx = column + 0.5
                w0 = a0 * cx + b0 * cy + c0
                w1 = a1 * cx + b1 * cy + c1
                base = 2 * row * grid + 2 * column
                front = max(max(nearest[base], nearest[base + 1]), max(nearest[base + grid], nearest[base + grid + 1]))
                if w0 * z0 + w1 * z1 + (1.0 - w0 - w1) * z2 <= front:
                    continue
                cr, cg, cb, alpha = _shade(f, cx, cy, records, areas, per_face, shading, texture, lod, pixels, levels,
                                           light, halfway, ambient, diffuse)
                alpha = min(max(alpha, 0.0), 1.0)
                image[row, column, 0] = alpha * min(cr, 255.0) + (1.0 - alpha) * image[row, column, 0]
                image[row, column, 1] = alpha * min(cg, 255.0) + (1.0 - alpha) * image[row, column, 1]
                image[row, column, 2] = alpha * min(cb, 255.0) + (1.0 - alpha) * image[row, column, 2]


@njit(**JIT)
def to_uint8(image):
    """(H, W, 3) float32 0–255 → uint8, rounded and clipped, in one pass (numpy's clip + cast takes three)."""
    out = np.empty(image.shape, np.uint8)
    flat_in, flat_out = image.reshape(-1), out.reshape(-1)
    for i in range(flat_in.shape[0]):
        flat_out[i] = np.uint8(min(max(flat_in[i] + 0.5, 0.0), 255.0))
    return out
