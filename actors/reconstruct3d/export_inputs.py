"""What both head writers (`gltf.py`, `obj.py`) take: checked inputs, PNG bytes, vertices split per UV.

A bare (H, W, 3) albedo stands for `HeadTextures.single(albedo)`, the one textured material of the
canonical and FLAME engines, so their call sites need no `HeadTextures`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .mesh import HeadMesh, HeadTextures, MeshPart
from dataset.images import encode_png

ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")
# Material and image names become MTL tokens and PNG file names: no spaces, no path separators.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
RESERVED_NODE_NAMES = ("avatar", "head_mesh")  # the scene root and skinned mesh node of a rigged GLB


def as_textures(textures: HeadTextures | np.ndarray) -> HeadTextures:
    """`textures` itself, or a bare albedo wrapped as the single textured skin material."""
    return textures if isinstance(textures, HeadTextures) else HeadTextures.single(np.asarray(textures))


def used_parts(mesh: HeadMesh) -> list[MeshPart]:
    """The parts that have triangles (an empty part has nothing to draw)."""
    return [part for part in mesh.part_list() if part.stop > part.start]


def used_images(mesh: HeadMesh, textures: HeadTextures) -> list[str]:
    """Names of the images the drawn parts' materials use, in order of first use."""
    names = [textures.materials[part.material].texture for part in used_parts(mesh)]
    return list(dict.fromkeys(name for name in names if name is not None))


def encode_images(mesh: HeadMesh, textures: HeadTextures | np.ndarray) -> dict[str, bytes]:
    """PNG bytes of every image the mesh's materials use: encode once, pass to both writers."""
    textures = as_textures(textures)
    check_export_inputs(mesh, textures)
    return {name: encode_png(textures.images[name], fast=True) for name in used_images(mesh, textures)}


def merge_encoded(encoded: Mapping[str, bytes] | None, png: bytes | None) -> dict[str, bytes]:
    """`encoded`, with the legacy `png=` argument (the skin albedo already encoded) folded in."""
    merged = dict(encoded or {})
    if png is not None:
        merged.setdefault("skin", png)
    return merged


def check_export_inputs(mesh: HeadMesh, textures: HeadTextures, encoded: Mapping[str, bytes] | None = None) -> None:
    """Every rule a writer relies on, one ValueError each (pure: reads, never changes its inputs)."""
    mesh.check_inputs()
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: lay them out first (actors.reconstruct3d.uv.ensure_uvs).")
    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no triangles.")
    for part in used_parts(mesh):
        if part.material not in textures.materials:
            raise ValueError(f"part {part.name!r} uses material {part.material!r}, which HeadTextures does not define.")
    for name in dict.fromkeys(part.material for part in used_parts(mesh)):
        material = textures.materials[name]
        if NAME_PATTERN.fullmatch(name) is None:
            raise ValueError(f"material name {name!r} must match {NAME_PATTERN.pattern} (it becomes an MTL token).")
        if material.alpha_mode not in ALPHA_MODES:
            raise ValueError(f"material {name!r}: alpha_mode must be one of {ALPHA_MODES}, got {material.alpha_mode!r}.")
        if len(material.base_color) != 4 or not all(0.0 <= c <= 1.0 for c in material.base_color):
            raise ValueError(f"material {name!r}: base_color must be 4 values in [0, 1], got {material.base_color}.")
        if not (0.0 <= material.roughness <= 1.0 and 0.0 <= material.metallic <= 1.0):
            raise ValueError(f"material {name!r}: roughness and metallic must be in [0, 1].")
        if material.texture is not None and material.texture not in textures.images:
            raise ValueError(f"material {name!r} uses image {material.texture!r}, which HeadTextures does not hold.")
    for name in used_images(mesh, textures):
        if NAME_PATTERN.fullmatch(name) is None:
            raise ValueError(f"image name {name!r} must match {NAME_PATTERN.pattern} (it becomes a file name).")
        _check_image(f"image {name!r}", textures.images[name])
    unknown = set(encoded or {}) - set(textures.images)
    if unknown:
        raise ValueError(f"encoded PNGs for images HeadTextures does not hold: {sorted(unknown)}.")
    names = list(mesh.morph_targets)
    if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError("morph target names must be distinct, non-empty strings.")
    if mesh.skin is not None:
        joints = list(mesh.skin.joint_names)
        if len(set(joints)) != len(joints) or not all(isinstance(n, str) and n for n in joints):
            raise ValueError("joint names must be distinct, non-empty strings (clients find bones by name).")
        taken = set(joints) & set(RESERVED_NODE_NAMES)
        if taken:
            raise ValueError(f"joint names {sorted(taken)} are taken by the GLB's own nodes {RESERVED_NODE_NAMES}.")


@dataclass(frozen=True)
class CornerSplit:
    """Vertices split so each carries one UV: split vertex i is original vertex `vertex_ids[i]` with UV
    `uv_ids[i]`; `triangles` index split vertices. Per-vertex data (normals, skin weights, morph
    offsets) follows the split by indexing with `vertex_ids`."""

    vertex_ids: np.ndarray  # (N,) int64, ascending
    uv_ids: np.ndarray  # (N,) int64
    triangles: np.ndarray  # (F, 3) int64


def split_corners(mesh: HeadMesh) -> CornerSplit:
    """One split vertex per distinct (vertex, UV) pair over all triangle corners (glTF has no
    per-corner UVs), ordered by vertex, then UV.

    Most vertices carry one UV, so only the corners of seam vertices (those with several) are
    sorted; the rest is numbered by a running count (O(F): a full sort of every corner costs more
    than the whole GLB assembly of a 20k-vertex head).
    """
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: lay them out first (actors.reconstruct3d.uv.ensure_uvs).")
    corner_vertex = mesh.faces.reshape(-1).astype(np.int64)
    corner_uv = mesh.uv_faces.reshape(-1).astype(np.int64)
    num_vertices, num_uvs = len(mesh.vertices), max(len(mesh.uvs), 1)
    some_uv = np.full(num_vertices, -1, dtype=np.int64)
    some_uv[corner_vertex] = corner_uv  # one of each vertex's UVs (the last written)
    seam = np.zeros(num_vertices, dtype=bool)
    seam[corner_vertex[corner_uv != some_uv[corner_vertex]]] = True
    at_seam = seam[corner_vertex]
    seam_keys, seam_pair = np.unique(corner_vertex[at_seam] * num_uvs + corner_uv[at_seam], return_inverse=True)
    seam_vertex = seam_keys // num_uvs
    rank = np.arange(len(seam_keys)) - np.searchsorted(seam_vertex, seam_vertex)  # 0, 1, ... per seam vertex

    count = np.zeros(num_vertices, dtype=np.int64)
    count[corner_vertex] = 1
    count[seam] = 0
    count += np.bincount(seam_vertex, minlength=num_vertices)
    start = np.cumsum(count) - count  # first split vertex of each vertex
    uv_ids = np.empty(int(count.sum()), dtype=np.int64)
    plain = (count == 1) & ~seam
    uv_ids[start[plain]] = some_uv[plain]
    uv_ids[start[seam_vertex] + rank] = seam_keys % num_uvs
    triangles = start[corner_vertex]
    triangles[at_seam] += rank[seam_pair]
    return CornerSplit(np.repeat(np.arange(num_vertices, dtype=np.int64), count), uv_ids, triangles.reshape(-1, 3))


def vertex_normal_sums(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float64 sums of the area-weighted face normals around each vertex (not normalised)."""
    coordinates = np.asarray(vertices, dtype=np.float64).T[:, faces.T]  # (xyz, corner, F)
    face_normals = face_normals_xyz(coordinates)
    corners = faces.T.reshape(-1)
    return np.stack([np.bincount(corners, np.tile(face_normals[c], 3), minlength=len(vertices)) for c in range(3)], axis=1)


def face_normals_xyz(coordinates: np.ndarray) -> np.ndarray:
    """(3, F) area-weighted normals of triangles given as (xyz, corner, F) coordinates. (Coordinate-major
    arrays keep every product contiguous: several times faster than np.cross on (F, 3) rows.)"""
    a = coordinates[:, 1] - coordinates[:, 0]
    b = coordinates[:, 2] - coordinates[:, 0]
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _check_image(label: str, image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8 or image.size == 0:
        shape = getattr(image, "shape", None)
        raise ValueError(f"{label} must be (H, W, 3) uint8 RGB or (H, W, 4) uint8 RGBA, got {shape} {getattr(image, 'dtype', type(image))}.")
