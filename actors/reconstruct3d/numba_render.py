"""Compiled CPU view renderer (numba): a visibility-buffer rasteriser with 4× coverage anti-aliasing.

Why this exists beside the GL renderer: on a CPU machine the GL path runs on Mesa's llvmpipe, which
shades every 4×4 pixel block a triangle touches; a head's ~20k triangles cover a few pixels each, so
most of that shading is thrown away, and multisampling doubles the cost again (`bench.reconstruct`).
Here each view is drawn in two passes that do only the work that shows:

1. Visibility: every front-facing triangle (back faces too for double-sided materials) is scan-converted
   on a 2×2 sample grid per pixel with a depth test (depth is a plane over the triangle: one multiply-add
   per sample), keeping the nearest triangle per sample. MASK materials test their texture's alpha per
   sample (bilinear), so eyelash strands and the hairline cut out exactly; triangles whose
   texels are all above (or all below) the cut-off skip the test (most of a hair cap).
2. Resolve: per pixel, each distinct triangle among its 4 samples is shaded once, at the centroid of
   the samples it owns, and weighted by its share of the samples (the background takes the rest): the
   anti-aliasing of 4× MSAA at the shading cost of ~1 sample per pixel.
3. BLEND parts are drawn last, triangles sorted back to front, at pixel centres, depth-tested against
   the nearest opaque sample of the pixel, and composited over.

Textures are sampled bilinearly from a box-filtered mip pyramid; orthographic views make UV derivatives
constant over a triangle, so each triangle's mip level comes from its screen-to-UV Jacobian. Shading is
the shared model of `view_scene` (ambient + Lambert + roughness-scaled Blinn-Phong, colours in sRGB).
The kernels compile on first use (cached on disk by numba), and hold no state between calls: safe in
Ray workers and after fork.
"""
from __future__ import annotations

import cv2
import numpy as np

from .view_scene import ALPHA_CUTOFF, AMBIENT, DIFFUSE, HALFWAY, LIGHT, ViewScene, project, specular_terms, srgb_encode, yaw_rotation

MODE_CODES = {"OPAQUE": 0, "MASK": 1, "BLEND": 2, "HIDDEN": 3}  # as in numba_kernels


class NumbaViewRenderer:
    """Renders `ViewScene`s to (size, size, 3) uint8 views on the CPU with compiled kernels."""

    def __init__(self, size: int, background=(238, 238, 238)):
        self.size = size
        self.background = tuple(background)

    def render(self, scene: ViewScene, yaws) -> list[np.ndarray]:
        """One (size, size, 3) uint8 RGB view per yaw (degrees), in order."""
        from . import numba_kernels as kernels  # numba compiles (or loads its cache) on first use

        materials = _MaterialTable(scene)
        uvs, uv_faces = (scene.uvs, scene.uv_faces) if scene.uvs is not None else (
            np.zeros((1, 2), np.float32), np.zeros_like(scene.faces))
        uvs = np.ascontiguousarray(uvs, dtype=np.float32)
        uv_faces = np.ascontiguousarray(uv_faces, dtype=np.int32)
        faces = np.ascontiguousarray(scene.faces, dtype=np.int32)
        blend_faces = np.flatnonzero(materials.modes[materials.per_face] == MODE_CODES["BLEND"])
        light, halfway = LIGHT.astype(np.float32), HALFWAY.astype(np.float32)
        ambient, diffuse = np.float32(AMBIENT), np.float32(DIFFUSE)
        background = np.asarray(self.background, np.float32)
        views = []
        for yaw in yaws:
            screen, camera = project(scene.vertices, yaw, self.size, scene.framing)
            screen = np.ascontiguousarray(screen, dtype=np.float64)
            depth = np.ascontiguousarray(camera[:, 2], dtype=np.float32)  # larger = nearer
            normals = np.ascontiguousarray(scene.normals @ yaw_rotation(yaw).T.astype(np.float32), dtype=np.float32)
            records, areas, lod = kernels.setup(screen, faces, normals, uvs, uv_faces, materials.per_face,
                                                materials.texture, materials.levels, materials.level_count)
            image = np.empty((self.size, self.size, 3), np.float32)  # resolve fills every pixel
            classes = kernels.mask_classes(uvs, uv_faces, materials.per_face, materials.modes, materials.texture, lod,
                                           materials.pixels, materials.levels)
            sample_tri, sample_depth = kernels.visibility(
                screen, depth, faces, areas, records, materials.per_face, materials.modes, materials.double_sided,
                materials.texture, lod, materials.pixels, materials.levels, self.size, classes)
            kernels.resolve(image, background, sample_tri, records, areas, materials.per_face, materials.shading, materials.texture,
                            lod, materials.pixels, materials.levels, light, halfway, ambient, diffuse)
            if len(blend_faces):
                order = blend_faces[np.argsort(depth[faces[blend_faces]].mean(axis=1), kind="stable")]  # far first
                kernels.blend(image, sample_depth, order.astype(np.int32), screen, depth, faces, records, areas,
                              materials.per_face, materials.shading, materials.double_sided, materials.texture, lod,
                              materials.pixels, materials.levels, light, halfway, ambient, diffuse)
            views.append(kernels.to_uint8(image))
        return views


class _MaterialTable:
    """The scene's parts flattened into arrays the kernels read: per-face material index, per-material
    mode/culling/shading constants, and every texture's mip pyramid packed into one RGBA byte array."""

    def __init__(self, scene: ViewScene):
        count = len(scene.parts)
        self.per_face = np.zeros(len(scene.faces), np.int32)
        self.modes = np.zeros(count, np.int32)
        self.double_sided = np.zeros(count, np.bool_)
        self.texture = np.full(count, -1, np.int32)
        self.shading = np.zeros((count, 6), np.float32)  # tint r, g, b (sRGB), opacity, specular weight, log2 exponent
        images, chunks, levels, offset = {}, [], [], 0
        for index, part in enumerate(scene.parts):
            self.per_face[part.start:part.stop] = index
            material = part.material
            self.modes[index] = MODE_CODES[material.alpha_mode]
            if material.alpha_mode == "MASK" and part.image is None and material.base_color[3] < ALPHA_CUTOFF:
                self.modes[index] = MODE_CODES["HIDDEN"]  # every texel of it is cut away
            self.double_sided[index] = material.double_sided
            weight, exponent = specular_terms(material)
            self.shading[index] = (*srgb_encode(np.asarray(material.base_color[:3])), material.base_color[3], weight,
                                   np.log2(exponent))  # the kernel raises to 2^k by k squarings
            if part.image is None:
                continue
            if id(part.image) not in images:
                images[id(part.image)] = len(images)
                texture_levels = []
                for level in _mip_pyramid(part.image):
                    height, width = level.shape[:2]
                    texture_levels.append((offset, width, height))
                    chunks.append(level.reshape(-1))
                    offset += level.size
                levels.append(texture_levels)
            self.texture[index] = images[id(part.image)]
        depth = max((len(t) for t in levels), default=1)
        self.levels = np.zeros((max(len(levels), 1), depth, 3), np.int64)  # (texture, level) -> offset, width, height
        for t, texture_levels in enumerate(levels):
            for l in range(depth):
                self.levels[t, l] = texture_levels[min(l, len(texture_levels) - 1)]
        self.level_count = np.array([len(t) for t in levels] or [1], np.int32)
        self.pixels = np.concatenate(chunks) if chunks else np.zeros(4, np.uint8)


def _mip_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """RGBA uint8 levels, each half the last (area-averaged), down to 1×1."""
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2RGBA)
    levels = [np.ascontiguousarray(image)]
    while max(levels[-1].shape[:2]) > 1:
        height, width = levels[-1].shape[:2]
        levels.append(cv2.resize(levels[-1], (max(width // 2, 1), max(height // 2, 1)), interpolation=cv2.INTER_AREA))
    return levels
