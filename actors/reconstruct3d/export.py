"""Writers for textured heads, one function per format (the writers live in `gltf.py` and `obj.py`).

- `write_glb` / `glb_bytes`: binary glTF 2.0 — one primitive per part with PBR materials and
  embedded PNGs, the skeleton and skin weights, ARKit morph targets with their names and the photo's
  expression as default weights. Opens and animates in three.js, Blender, Unity (glTFast) and Unreal.
- `write_obj`: Wavefront OBJ + MTL + PNGs, the static neutral shape, one material group per part.

Both take a `HeadMesh` and its `HeadTextures` (or a bare albedo for the one-material heads of the
canonical and FLAME engines, written exactly as before). Encode the PNGs once with `encode_images`
and pass them to both writers as `encoded=`.
"""
from __future__ import annotations

import numpy as np

from .export_inputs import CornerSplit, as_textures, encode_images, split_corners, unit_rows, vertex_normal_sums
from .gltf import glb_bytes, write_glb
from .mesh import HeadMesh
from .obj import write_obj
from dataset.images import encode_png as _encode_png

__all__ = ["CornerSplit", "as_textures", "corner_vertices", "encode_images", "encode_png", "glb_bytes", "split_corners",
           "write_glb", "write_obj"]


def encode_png(texture: np.ndarray) -> bytes:
    """PNG bytes of a texture with the fast encoder (`dataset.images.encode_png(fast=True)`)."""
    if (not isinstance(texture, np.ndarray) or texture.dtype != np.uint8 or texture.ndim != 3 or texture.shape[2] not in (3, 4)
            or texture.size == 0):
        raise ValueError(f"a texture must be (H, W, 3) uint8 RGB or (H, W, 4) uint8 RGBA, got {getattr(texture, 'dtype', None)} {getattr(texture, 'shape', None)}.")
    return _encode_png(texture, fast=True)


def corner_vertices(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split vertices so each has one UV: (positions (N, 3), normals (N, 3), uvs (N, 2), triangles (F, 3)).

    N is the number of distinct (vertex, UV) pairs over all corners; normals stay the original
    vertex's smooth normal, so shading has no seams where UVs do. (The GLB's vertex order, for one part.)
    """
    mesh.check_inputs()
    split = split_corners(mesh)
    normals = unit_rows(vertex_normal_sums(mesh.vertices, mesh.faces))
    return (
        np.asarray(mesh.vertices, dtype=np.float32)[split.vertex_ids],
        normals[split.vertex_ids].astype(np.float32),
        np.asarray(mesh.uvs, dtype=np.float32)[split.uv_ids],
        split.triangles,
    )
