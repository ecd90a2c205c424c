"""UV texture baking: project the aligned photo onto a `HeadMesh`'s UV layout, fill what it never saw.

Steps (all vectorised numpy / OpenCV):
1. Rasterise the mesh in UV space (texel -> triangle + barycentrics). This depends only on the
   layout, so a `TextureBaker` keeps it between meshes that share UVs (the canonical engine's do).
2. Each texel's point on the surface is projected into the photo with the same barycentrics over
   the corners' `image_points`. It counts as seen when its surface faces the camera, it is not
   behind another part of the head (a z-buffer of the mesh rendered in the photo's pixels, with a
   slack that grows with the triangle's depth slope), it lies inside the photo, the person mask
   says "person" there and it is above the chin (below it a photo shows collars and jaw shadow,
   not a neck). Confidence fades with the viewing angle.
3. Texels seen badly or not at all take the mirrored point (the vertex mirrored across the face's
   symmetry plane, with the same barycentrics) when the camera saw that one better.
4. The rest is filled, at a quarter of the resolution (the fill is smooth): the photo's colours
   spread a few centimetres beyond what was seen (a push-pull pyramid fill — the inpainting),
   fading into a procedural base — the photo's hair colour (median of the seen texels where the
   head is usually hair) over the top and back of the head, its median skin colour elsewhere
   (neck, ears), with a faint deterministic strand pattern in the hair.
5. Texels outside every triangle take the fill (which covers the whole square), and a gutter of a
   few texels around each chart copies the chart's nearest edge texel, so filtering across UV seams
   never mixes in another chart or the background.

Meshes may carry per-vertex hints in `params` (the canonical engine does): "mirror" (V,) vertex
ids, "hair" (V,) hair priors in [0, 1] and "face" (V,) 1 on the face; the photo then textures only
the face and the hair. Without them the mirror comes from a nearest-neighbour search on the
reflected vertices, the hair prior from the head's shape, and the photo textures whatever it saw.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from .mesh import HeadMesh, HeadTextures
from .raster import Raster, rasterize
from .render import sample_image

TEXTURE_SIZES = (256, 512, 1024, 2048)
DEFAULT_HAIR_RGB = np.array([38.0, 30.0, 26.0])  # used when the photo shows no hair region
GRAZING = (0.12, 0.45)  # facing cosine where confidence starts / is full
SPREAD_TEXELS_AT_1024 = 28.0  # how far the photo's colours bleed into the fill
GUTTER_AT_1024 = 6  # texels of edge padding around each chart
COARSE = 4  # smooth maps (fills, hair prior) are computed at 1/COARSE of the texture's resolution


@dataclass(frozen=True)
class _Layout:
    texel: np.ndarray  # (N,) flat ids of the texels some triangle covers
    triangle: np.ndarray  # (N,) the covering triangle
    weights: np.ndarray  # (N, 3) float32 barycentrics
    coarse: tuple[np.ndarray, np.ndarray, np.ndarray]  # the same at 1/COARSE resolution
    gutter: tuple[np.ndarray, np.ndarray]  # texels just outside the charts, and the chart texel nearest each


class TextureBaker:
    """Bakes textures of one size, remembering the UV rasters of the layouts it has seen."""

    def __init__(self, size: int = 1024, cache_layouts: int = 4):
        if size not in TEXTURE_SIZES:
            raise ValueError(f"texture size must be one of {TEXTURE_SIZES}, got {size}.")
        self.size = size
        self.cache_layouts = cache_layouts
        self._layouts: dict[bytes, _Layout] = {}
        self._strands: np.ndarray | None = None  # fixed hair-strand shading at 1/COARSE resolution

    def bake(
        self,
        mesh: HeadMesh,
        image: np.ndarray,
        mask: np.ndarray | None = None,
        skin_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """(size, size, 3) uint8 RGB texture (row 0 = v 1) for `mesh` from `image`, the aligned crop
        `mesh.image_points` refer to. mask: (H, W) person segmentation 0..255 (None: all person);
        skin_mask: (H, W) bool face skin, for the skin colour (None: the seen face texels)."""
        _check(mesh, image, mask, skin_mask)
        size = self.size
        layout = self._layout(mesh)
        points = np.asarray(mesh.image_points, dtype=np.float32)
        height, width = image.shape[:2]

        # Per-vertex attributes, then per texel on the triangles the photo may have seen (directly or
        # mirrored) and is allowed to texture.
        mirror = _mirror(mesh)
        facing = _vertex_facing(mesh, points, mesh.faces)
        prior = _photo_prior(mesh)
        direct_attributes = np.concatenate([points, facing[:, None], prior[:, None]], axis=1)
        mirror_attributes = direct_attributes[mirror, :4]  # the mirror image's position and facing
        best = np.maximum(facing, facing[mirror])[mesh.faces].max(axis=1)
        triangle_ok = (best > GRAZING[0]) & (prior[mesh.faces].max(axis=1) > 0)
        candidate = triangle_ok[layout.triangle]
        texel, weights, tri = layout.texel[candidate], layout.weights[candidate], layout.triangle[candidate]
        corners = mesh.faces[tri]
        direct_at = _interpolate(weights, direct_attributes, corners)
        mirror_at = _interpolate(weights, mirror_attributes, corners)

        zbuffer = _camera_zbuffer(points, mesh.faces, height, width)
        slack = _depth_slack(points, mesh.faces, 0.01 * float(np.ptp(points[:, 2]) or 1.0))
        usable = _usable_photo(image, mask, skin_mask)
        allowed = direct_at[:, 4]
        seen_direct = _visibility(direct_at[:, :3], zbuffer, slack[tri], usable) * _ramp(direct_at[:, 3]) * allowed
        mirror_slack = slack[_mirror_faces(mesh.faces, mirror)][tri]
        seen_mirror = _visibility(mirror_at[:, :3], zbuffer, mirror_slack, usable) * _ramp(mirror_at[:, 3]) * allowed
        seen_mirror *= 1.0 - seen_direct
        direct = sample_image(image, direct_at[:, 0] - 0.5, direct_at[:, 1] - 0.5)
        mirrored = sample_image(image, mirror_at[:, 0] - 0.5, mirror_at[:, 1] - 0.5)
        confidence = seen_direct + seen_mirror
        colour = direct * seen_direct[:, None] + mirrored * seen_mirror[:, None]
        colour /= np.maximum(confidence, 1e-6)[:, None]

        # The fill, at 1/COARSE resolution (it is smooth): hair over skin by the hair prior, and near
        # what was seen the photo's own colours spread outward. It covers every texel, so it also pads
        # beyond the charts.
        hair_map = self._coarse_map(layout, _hair_prior(mesh).astype(np.float32), mesh.faces)
        hair_texel = hair_map[_coarse_index(texel, size)]
        skin_rgb = _skin_colour(image, skin_mask, colour, confidence, hair_texel)
        hair_rgb = _hair_colour(direct, seen_direct, hair_texel)
        fill = self._coarse_fill(hair_map, hair_rgb, skin_rgb, texel, colour, confidence)

        # Paste the photo over the fill; copy the charts' edges a few texels outward (bilinear and
        # mipmapped lookups near a seam then never mix in another chart).
        texture = fill.reshape(-1, 3)
        texture[texel] += confidence[:, None] * (colour - texture[texel])
        outside, nearest = layout.gutter
        texture[outside] = texture[nearest]
        return np.clip(texture.reshape(size, size, 3) + 0.5, 0, 255).astype(np.uint8)

    def _coarse_fill(self, hair_map, hair_rgb, skin_rgb, texel, colour, confidence) -> np.ndarray:
        """(size, size, 3) float32: procedural hair/skin base, blended into the photo's spread colours."""
        small = self.size // COARSE
        if self._strands is None:
            rng = np.random.default_rng(7)
            noise = rng.standard_normal((small // 8, small // 2)).astype(np.float32)
            noise = cv2.resize(noise, (small, small), interpolation=cv2.INTER_CUBIC)
            self._strands = 1.0 + 0.07 * np.clip(noise, -2, 2).reshape(-1, 1)
        hair_rgb = hair_rgb.astype(np.float32)[None, :]
        skin_rgb = skin_rgb.astype(np.float32)[None, :]
        base = skin_rgb + hair_map[:, None] * (hair_rgb * self._strands - skin_rgb)

        cell = _coarse_index(texel, self.size)
        seen = np.bincount(cell, confidence, minlength=small * small) / COARSE**2
        photo = np.stack([np.bincount(cell, colour[:, c] * confidence, minlength=small * small) for c in range(3)], axis=1)
        photo /= np.maximum(seen * COARSE**2, 1e-6)[:, None]
        spread = push_pull(photo.reshape(small, small, 3).astype(np.float32), seen.reshape(small, small).astype(np.float32))
        unseen = (seen.reshape(small, small) < 0.5).astype(np.uint8)
        distance = cv2.distanceTransform(unseen, cv2.DIST_L2, 3).reshape(-1)
        near = np.exp(-distance / np.float32(SPREAD_TEXELS_AT_1024 * small / 1024))[:, None]
        fill = (base + near * (spread.reshape(-1, 3) - base)).reshape(small, small, 3)
        return cv2.resize(fill, (self.size, self.size), interpolation=cv2.INTER_LINEAR)

    def _coarse_map(self, layout: _Layout, values: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """((size / COARSE)²,) per-vertex `values` over the layout at low resolution, filled everywhere."""
        texel, triangle, weights = layout.coarse
        small = self.size // COARSE
        grid = np.zeros(small * small, np.float32)
        known = np.zeros(small * small, np.float32)
        grid[texel] = (weights * values[faces[triangle]]).sum(axis=1)
        known[texel] = 1.0
        return push_pull(grid.reshape(small, small, 1), known.reshape(small, small)).reshape(-1)

    def _layout(self, mesh: HeadMesh) -> _Layout:
        """Every covered texel's triangle and barycentrics, cached per UV layout."""
        uv_faces = mesh.uv_faces if mesh.uv_faces is not None else mesh.faces
        key = hashlib.blake2b(
            np.ascontiguousarray(mesh.uvs, dtype=np.float32).tobytes()
            + np.ascontiguousarray(uv_faces, dtype=np.int32).tobytes(),
            digest_size=16,
        ).digest()
        if key not in self._layouts:
            if len(self._layouts) >= self.cache_layouts:
                self._layouts.pop(next(iter(self._layouts)))
            raster = uv_raster(mesh.uvs, uv_faces, self.size)
            coarse = _covered_texels(uv_raster(mesh.uvs, uv_faces, self.size // COARSE))
            self._layouts[key] = _Layout(*_covered_texels(raster), coarse=coarse, gutter=_gutter(raster.covered))
        return self._layouts[key]


def _covered_texels(raster: Raster) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    texel = np.flatnonzero(raster.covered.reshape(-1))
    return texel, raster.triangle.reshape(-1)[texel], raster.barycentric.reshape(-1, 3)[texel].astype(np.float32)


def _gutter(covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids of uncovered texels within GUTTER texels of a chart, id of the nearest covered texel to each)."""
    size = covered.shape[0]
    width = max(2, GUTTER_AT_1024 * size // 1024)
    distance, labels = cv2.distanceTransformWithLabels(
        (~covered).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    label_to_texel = np.zeros(labels.max() + 1, np.int64)
    flat_labels = labels.reshape(-1)
    chart = np.flatnonzero(covered.reshape(-1))
    label_to_texel[flat_labels[chart]] = chart
    outside = np.flatnonzero((~covered.reshape(-1)) & (distance.reshape(-1) <= width))
    return outside, label_to_texel[flat_labels[outside]]


def bake_texture(
    mesh: HeadMesh,
    image: np.ndarray,
    size: int = 1024,
    mask: np.ndarray | None = None,
    skin_mask: np.ndarray | None = None,
) -> np.ndarray:
    """One-off `TextureBaker(size).bake(...)`; keep a baker for batches that share a UV layout."""
    return TextureBaker(size).bake(mesh, image, mask, skin_mask)


def uv_raster(uvs: np.ndarray, uv_faces: np.ndarray, size: int) -> Raster:
    """Rasterise UV triangles into a size×size texture (row 0 = v 1)."""
    uvs = np.asarray(uvs, dtype=np.float64)
    points = np.stack([uvs[:, 0] * size, (1.0 - uvs[:, 1]) * size], axis=1)
    return rasterize(points, uv_faces, size, size)


def push_pull(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Fill an (H, W, C) image where `weights` (H, W, in [0, 1]) is low from a pyramid of weighted
    averages: each level takes what it knows and the coarser level's estimate for the rest."""
    levels = []
    v = values.astype(np.float32) * weights[..., None]
    w = weights.astype(np.float32)
    while True:
        levels.append((v, w))
        h, wd = w.shape
        if h <= 1 and wd <= 1:
            break
        size = (max(wd // 2, 1), max(h // 2, 1))
        v = cv2.resize(v, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        w = cv2.resize(w, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0])
    v, w = levels[-1]
    estimate = v / np.maximum(w, 1e-8)[..., None]
    for v, w in reversed(levels[:-1]):
        h, wd = w.shape
        up = cv2.resize(estimate, (wd, h), interpolation=cv2.INTER_LINEAR).reshape(h, wd, -1)
        alpha = np.clip(w, 0.0, 1.0)[..., None]
        estimate = np.where(w[..., None] > 1e-8, v / np.maximum(w, 1e-8)[..., None], 0.0) * alpha + up * (1 - alpha)
    return estimate


def _coarse_index(texel: np.ndarray, size: int) -> np.ndarray:
    """Flat texel ids at full resolution -> flat ids of their cells at 1/COARSE resolution."""
    row, col = texel // size, texel % size
    return (row // COARSE) * (size // COARSE) + col // COARSE


def _camera_zbuffer(points: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest depth per photo pixel (back faces culled: on a closed mesh they are never nearest)."""
    return rasterize(points[:, :2], faces, height, width, depth=points[:, 2], cull="cw").depth


def _depth_slack(points: np.ndarray, faces: np.ndarray, base: float) -> np.ndarray:
    """Per triangle: how far behind the z-buffer a texel may lie and still count as seen — `base`
    plus the depth change across two pixels of the triangle's screen-space slope (steep at grazing
    angles, where a pixel's depth and a texel's disagree most)."""
    p = points[faces].astype(np.float64)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    safe = np.where(np.abs(det) > 1e-9, det, 1e-9)
    gx = (e1[:, 2] * e2[:, 1] - e2[:, 2] * e1[:, 1]) / safe
    gy = (e2[:, 2] * e1[:, 0] - e1[:, 2] * e2[:, 0]) / safe
    slope = np.minimum(np.hypot(gx, gy), 50.0)
    return (base + 2.0 * slope).astype(np.float32)


def _interpolate(weights: np.ndarray, values: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentric interpolation of per-vertex `values` (V, D) at each texel → (N, D) float32."""
    values = np.asarray(values, dtype=np.float32)
    out = weights[:, 0:1] * values[corners[:, 0]]
    out += weights[:, 1:2] * values[corners[:, 1]]
    out += weights[:, 2:3] * values[corners[:, 2]]
    return out


def _usable_photo(image: np.ndarray, mask: np.ndarray | None, skin_mask: np.ndarray | None) -> np.ndarray | None:
    """Photo pixels worth projecting: the person, above the bottom of the face skin (below the chin a
    photo shows jaw shadow and collars, not a neck the head could wear)."""
    if mask is None and skin_mask is None:
        return None
    usable = np.ones(image.shape[:2], bool) if mask is None else mask >= 128
    if skin_mask is not None and skin_mask.any():
        rows = np.flatnonzero(skin_mask.any(axis=1))
        usable[int(rows[-1]) + 1 :] = False
    return usable


def _mirror_faces(faces: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """For each triangle, the id of the triangle on its mirrored vertices (itself when there is none)."""
    count = int(faces.max()) + 1

    def key(tris):
        ordered = np.sort(tris.astype(np.int64), axis=1)
        return (ordered[:, 0] * count + ordered[:, 1]) * count + ordered[:, 2]

    own = key(faces)
    order = np.argsort(own)
    wanted = key(mirror[faces])
    position = np.clip(np.searchsorted(own, wanted, sorter=order), 0, len(own) - 1)
    found = own[order[position]] == wanted
    return np.where(found, order[position], np.arange(len(faces)))


def _visibility(xyz: np.ndarray, zbuffer: np.ndarray, tolerance: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    height, width = zbuffer.shape
    col = np.floor(xyz[:, 0]).astype(np.int64)
    row = np.floor(xyz[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    col, row = np.clip(col, 0, width - 1), np.clip(row, 0, height - 1)
    visible = inside & (xyz[:, 2] <= zbuffer[row, col] + tolerance)
    if mask is not None:
        visible &= mask[row, col]
    return visible.astype(np.float32)


def _facing(mesh: HeadMesh, points: np.ndarray, faces: np.ndarray | None = None) -> np.ndarray:
    """Per triangle: cosine between its outward normal and the direction to the camera (≤ 0: away).

    From areas alone (no assumption about the depth units): the projected area over the 3D area
    times the camera's pixels-per-metre squared, signed by the on-screen winding.
    """
    faces = mesh.faces if faces is None else faces
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    p = points[faces][:, :, :2]
    screen_area = (p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0])
    v = vertices[faces]
    world_area = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    pixels_per_unit = _pixels_per_unit(vertices, points)
    # Counter-clockwise from outside in a y-up world runs clockwise on the y-down screen: negative area.
    return -screen_area / np.maximum(world_area * pixels_per_unit**2, 1e-12)


def _vertex_facing(mesh: HeadMesh, points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per vertex: the area-weighted mean facing of its triangles (smooth across the surface)."""
    facing = _facing(mesh, points.astype(np.float64), faces)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    v = vertices[faces]
    area = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    total = np.zeros(len(vertices))
    weight = np.zeros(len(vertices))
    for k in range(3):
        total += np.bincount(faces[:, k], facing * area, minlength=len(vertices))
        weight += np.bincount(faces[:, k], area, minlength=len(vertices))
    return (total / np.maximum(weight, 1e-12)).astype(np.float32)


def _pixels_per_unit(vertices: np.ndarray, points: np.ndarray) -> float:
    """The camera's scale: least-squares affine map vertices -> image xy, root of its rows' norms' product."""
    design = np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, points[:, :2], rcond=None)
    rows = np.linalg.norm(solution[:3].T, axis=1)
    return float(np.sqrt(rows[0] * rows[1]))


def _ramp(cosine: np.ndarray) -> np.ndarray:
    low, high = GRAZING
    return np.clip((cosine - low) / (high - low), 0.0, 1.0)


def _mirror(mesh: HeadMesh) -> np.ndarray:
    mirror = mesh.params.get("mirror") if mesh.params else None
    if mirror is not None:
        mirror = np.asarray(mirror, dtype=np.int64)
        if mirror.shape == (len(mesh.vertices),) and mirror.min() >= 0 and mirror.max() < len(mesh.vertices):
            return mirror
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    return cKDTree(vertices).query(vertices * np.array([-1.0, 1.0, 1.0]))[1].astype(np.int64)


def _hair_prior(mesh: HeadMesh) -> np.ndarray:
    hair = mesh.params.get("hair") if mesh.params else None
    if hair is not None and np.shape(hair) == (len(mesh.vertices),):
        return np.asarray(hair, dtype=np.float64)
    # Fallback from the shape: the top of the head, and the back above the nape.
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    span = np.maximum(high - low, 1e-9)
    y = (vertices[:, 1] - low[1]) / span[1]
    z = (vertices[:, 2] - low[2]) / span[2]
    hairline = np.interp(z, [0.0, 0.15, 0.45, 1.0], [0.45, 0.5, 0.72, 0.8])
    return np.clip((y - hairline) / 0.06 + 0.5, 0.0, 1.0) * (z < 0.8)


def _photo_prior(mesh: HeadMesh) -> np.ndarray:
    """Per vertex, whether the photo may texture it: the face and the hair, not the skin around the
    neck and ears that a frontal photo shows only edge-on or not at all (needs `face` and `hair`
    params; without them everywhere)."""
    face = mesh.params.get("face") if mesh.params else None
    hair = mesh.params.get("hair") if mesh.params else None
    if face is None or hair is None or np.shape(face) != (len(mesh.vertices),) or np.shape(hair) != (len(mesh.vertices),):
        return np.ones(len(mesh.vertices), np.float32)
    return np.clip(np.maximum(np.asarray(face, np.float32), (np.asarray(hair, np.float32) - 0.3) / 0.4), 0.0, 1.0)


def _skin_colour(image, skin_mask, colour, confidence, hair) -> np.ndarray:
    if skin_mask is not None and skin_mask.any():
        return np.median(image[skin_mask.astype(bool)].reshape(-1, 3), axis=0).astype(np.float64)
    face = (confidence > 0.8) & (hair < 0.1)
    if face.sum() >= 50:
        return np.median(colour[face], axis=0)
    return np.median(image.reshape(-1, 3), axis=0).astype(np.float64)


def _hair_colour(direct, seen_direct, hair) -> np.ndarray:
    region = (seen_direct > 0.6) & (hair > 0.7)
    if region.sum() >= 100:
        return np.median(direct[region], axis=0)
    return DEFAULT_HAIR_RGB.copy()


def _check(mesh: HeadMesh, image: np.ndarray, mask, skin_mask) -> None:
    mesh.check_inputs()
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: lay them out first (actors.reconstruct3d.uv.ensure_uvs).")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}.")
    for name, extra in (("mask", mask), ("skin_mask", skin_mask)):
        if extra is not None and extra.shape != image.shape[:2]:
            raise ValueError(f"{name} must be {image.shape[:2]}, got {extra.shape}.")


class PhotoProjectionBaking:
    """`bake` for engines textured by projecting the photo (the canonical and FLAME engines): one
    `TextureBaker` per texture size, kept so UV rasters are reused from head to head."""

    def bake(self, mesh: HeadMesh, face, texture_size: int) -> HeadTextures:
        bakers = self.__dict__.setdefault("_bakers", {})
        if texture_size not in bakers:
            bakers[texture_size] = TextureBaker(texture_size)
        return HeadTextures.single(bakers[texture_size].bake(mesh, face.crop, face.mask, face.skin_mask))
