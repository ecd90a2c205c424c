"""UV layouts for meshes that come without one (FLAME when no `FLAME_texture.npz` is given), via xatlas.

A layout depends on the topology and the shape it was cut on; meshes that share a topology (every
FLAME fit does) can share one, so `UVLayoutCache` computes it once per topology.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from .mesh import HeadMesh


def generate_uvs(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uvs (T, 2) float32 in [0, 1], uv_faces (F, 3) int32): an xatlas chart atlas, one UV triangle
    per input triangle, in the input's order."""
    import xatlas

    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    faces = np.ascontiguousarray(faces, dtype=np.uint32)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ValueError(f"need (V, 3) vertices and (F ≥ 1, 3) faces, got {vertices.shape} and {faces.shape}.")
    mapping, uv_faces, uvs = xatlas.parametrize(vertices, faces)
    if len(uv_faces) != len(faces) or not np.array_equal(mapping[uv_faces], faces):
        raise RuntimeError("xatlas changed the triangles: cannot keep a per-corner layout.")
    return np.clip(uvs, 0.0, 1.0).astype(np.float32), uv_faces.astype(np.int32)


def ensure_uvs(mesh: HeadMesh, cache: "UVLayoutCache | None" = None) -> HeadMesh:
    """`mesh` itself when it has UVs, else a copy with an xatlas layout (shared through `cache`)."""
    if mesh.uvs is not None:
        return mesh
    uvs, uv_faces = cache.layout(mesh) if cache is not None else generate_uvs(mesh.vertices, mesh.faces)
    return dataclasses.replace(mesh, uvs=uvs, uv_faces=uv_faces)


class UVLayoutCache:
    """One xatlas layout per topology (the faces array), cut on the first mesh seen with it."""

    def __init__(self, max_layouts: int = 4):
        self.max_layouts = max_layouts
        self._layouts: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def layout(self, mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray]:
        key = hashlib.blake2b(np.ascontiguousarray(mesh.faces, dtype=np.int32).tobytes(), digest_size=16).digest()
        key += len(mesh.vertices).to_bytes(8, "little")
        if key not in self._layouts:
            if len(self._layouts) >= self.max_layouts:
                self._layouts.pop(next(iter(self._layouts)))
            self._layouts[key] = generate_uvs(mesh.vertices, mesh.faces)
        return self._layouts[key]
