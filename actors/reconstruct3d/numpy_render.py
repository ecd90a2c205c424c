"""The numpy reference view renderer: slow (seconds for 7 views) but written with no shared rasterising code.

It is the first renderer of this project, extended to multi-part heads, and serves two purposes: the
independent check the faster renderers are tested against (same scene, same shading model, a different
rasteriser: `raster.rasterize`), and the last resort when neither compiled renderer can run.

Per view at `supersample`× resolution: the nearest OPAQUE triangle per pixel, then MASK parts in a
separate layer (alpha-tested, kept where nearer), then BLEND parts as one more layer composited over
(nearest blended triangle only: no sorting), and an area-averaging reduction (anti-aliasing).
"""
from __future__ import annotations

import cv2
import numpy as np

from .raster import rasterize
from .view_scene import (ALPHA_CUTOFF, AMBIENT, DIFFUSE, HALFWAY, LIGHT, ViewScene, project, specular_terms, srgb_encode,
                         yaw_rotation)


class NumpyViewRenderer:
    """Renders `ViewScene`s to (size, size, 3) uint8 views with the vectorised numpy rasteriser."""

    def __init__(self, size: int, supersample: int = 2, background=(238, 238, 238)):
        self.size = size
        self.supersample = supersample
        self.background = tuple(background)

    def render(self, scene: ViewScene, yaws) -> list[np.ndarray]:
        return [self._view(scene, yaw) for yaw in yaws]

    def _view(self, scene: ViewScene, yaw: float) -> np.ndarray:
        full = self.size * self.supersample
        screen, camera = project(scene.vertices, yaw, full, scene.framing)
        normals = scene.normals.astype(np.float64) @ yaw_rotation(yaw).T
        corners = screen[scene.faces]
        area = ((corners[:, 1, 0] - corners[:, 0, 0]) * (corners[:, 2, 1] - corners[:, 0, 1])
                - (corners[:, 1, 1] - corners[:, 0, 1]) * (corners[:, 2, 0] - corners[:, 0, 0]))
        part_of = np.zeros(len(scene.faces), np.int32)
        for index, part in enumerate(scene.parts):
            part_of[part.start:part.stop] = index
        double_sided = np.array([p.material.double_sided for p in scene.parts], bool)
        drawn = (area < 0) | (double_sided[part_of] & (area != 0))  # front faces (y-down screen), or both sides
        mode = np.array([p.material.alpha_mode for p in scene.parts])[part_of]

        image = np.empty((full, full, 3), np.float64)
        image[:] = self.background
        depth = np.full((full, full), np.inf)  # smaller = nearer
        for layer in ("OPAQUE", "MASK", "BLEND"):
            chosen = np.flatnonzero(drawn & (mode == layer))
            if not len(chosen):
                continue
            raster = rasterize(screen, scene.faces[chosen], full, full, depth=-camera[:, 2])
            hit = raster.covered & (raster.depth < depth)
            triangle = chosen[raster.triangle[hit]]
            colour, alpha = self._shade(scene, triangle, raster.barycentric[hit], normals, area, part_of)
            if layer == "MASK":
                keep = alpha >= ALPHA_CUTOFF
                rows, cols = np.nonzero(hit)
                hit = np.zeros_like(hit)
                hit[rows[keep], cols[keep]] = True
                colour, alpha = colour[keep], np.ones(keep.sum())
            if layer == "BLEND":
                image[hit] = alpha[:, None] * colour + (1 - alpha[:, None]) * image[hit]
            else:
                image[hit] = colour
                depth[hit] = raster.depth[hit]
        if self.supersample > 1:
            image = cv2.resize(image.astype(np.float32), (self.size, self.size), interpolation=cv2.INTER_AREA)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def _shade(scene: ViewScene, triangle, weights, normals, area, part_of) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) colour (0–255, clipped) and (N,) alpha of the given triangles at the given barycentrics."""
        weights = weights[:, :, None].astype(np.float64)
        normal = (weights * normals[scene.faces[triangle]]).sum(axis=1)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
        normal[area[triangle] > 0] *= -1  # back faces of double-sided parts are lit from their own side
        lambert = np.clip(normal @ LIGHT, 0.0, 1.0)
        colour = np.empty((len(triangle), 3))
        alpha = np.empty(len(triangle))
        for index, part in enumerate(scene.parts):
            mine = part_of[triangle] == index
            if not mine.any():
                continue
            material = part.material
            texel = np.full((mine.sum(), 4), 255.0)
            if part.image is not None:
                uv = (weights[mine] * scene.uvs[scene.uv_faces[triangle[mine]]]).sum(axis=1)
                texel[:, :part.image.shape[2]] = sample_texture(part.image, uv)
            tint = srgb_encode(np.asarray(material.base_color[:3]))
            weight, exponent = specular_terms(material)
            highlight = np.where(lambert[mine] > 0, weight * np.clip(normal[mine] @ HALFWAY, 0, 1) ** exponent, 0.0)
            shade = AMBIENT + DIFFUSE * lambert[mine]
            colour[mine] = np.clip(texel[:, :3] * tint * shade[:, None] + 255.0 * highlight[:, None], 0, 255)
            alpha[mine] = texel[:, 3] / 255.0 * material.base_color[3]
        return colour, alpha


def sample_texture(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear texture lookup at (N, 2) UVs (v up) → (N, C) float32."""
    height, width = texture.shape[:2]
    return sample_image(texture, uv[:, 0] * width - 0.5, (1.0 - uv[:, 1]) * height - 0.5)


def sample_image(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of an (H, W, C) image at pixel coordinates (x, y are pixel centres) → (N, C) float32."""
    count = len(x)
    row = 4096  # cv2.remap maps must stay below 32767 on each side
    padded = -(-max(count, 1) // row) * row
    map_x = np.zeros(padded, np.float32)
    map_y = np.zeros(padded, np.float32)
    map_x[:count], map_y[:count] = x, y
    sampled = cv2.remap(image, map_x.reshape(-1, row), map_y.reshape(-1, row), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(padded, -1)[:count].astype(np.float32)
