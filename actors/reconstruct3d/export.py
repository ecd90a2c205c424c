"""Writers for textured heads: one function per format.

- `write_obj`: Wavefront OBJ + MTL + PNG (vertices, per-corner `vt`, smooth `vn`, `map_Kd`).
- `write_glb`: binary glTF 2.0 with the PNG embedded in a bufferView and a PBR metallic-roughness
  material (metallic 0, roughness 0.8). glTF has no per-corner UVs, so vertices are split where one
  vertex carries several UVs (`corner_vertices`); glTF's v runs down the image (v_gltf = 1 - v).
  Every bufferView starts on a 4-byte boundary and the chunks are padded (JSON with spaces, BIN
  with zeros) as the spec requires; positions carry min/max, normals are unit length.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np

from .mesh import HeadMesh
from .render import vertex_normals

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE = 9729, 9987, 33071
ROUGHNESS = 0.8


def encode_png(texture: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 RGB image. Fast settings (level 1, run-length strategy):
    baked textures are mostly smooth fills, which RLE compresses well."""
    _check_texture(texture)
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(texture[..., ::-1]), params)
    if not ok:
        raise RuntimeError("PNG encoding failed.")
    return data.tobytes()


def write_obj(
    mesh: HeadMesh, texture: np.ndarray, directory: str | Path, name: str = "head", png: bytes | None = None
) -> dict[str, Path]:
    """Write `<name>.obj`, `<name>.mtl` and `<name>_texture.png` into `directory`; returns their paths
    under the keys "obj", "mtl", "texture". `png`: the texture already encoded (skips re-encoding)."""
    _check_mesh(mesh)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"obj": directory / f"{name}.obj", "mtl": directory / f"{name}.mtl", "texture": directory / f"{name}_texture.png"}
    paths["texture"].write_bytes(png if png is not None else encode_png(texture))
    paths["mtl"].write_text(
        f"newmtl {name}\nKa 1.000 1.000 1.000\nKd 1.000 1.000 1.000\nKs 0.000 0.000 0.000\nNs 10.0\nd 1.0\nillum 1\n"
        f"map_Kd {paths['texture'].name}\n"
    )
    normals = vertex_normals(mesh.vertices, mesh.faces)
    v = np.asarray(mesh.vertices, dtype=np.float64)
    # OBJ indices are 1-based: f vertex/uv/normal, the normal sharing the vertex's index.
    corners = np.stack([mesh.faces + 1, mesh.uv_faces + 1, mesh.faces + 1], axis=2).reshape(len(mesh.faces), 9)
    lines = [f"# {mesh.engine} head: {len(v)} vertices, {len(mesh.faces)} triangles", f"mtllib {paths['mtl'].name}", f"o {name}"]
    lines.append(_rows("v %.6f %.6f %.6f", v))
    lines.append(_rows("vt %.6f %.6f", np.asarray(mesh.uvs, dtype=np.float64)))
    lines.append(_rows("vn %.5f %.5f %.5f", normals))
    lines += [f"usemtl {name}", "s 1"]
    lines.append(_rows("f %d/%d/%d %d/%d/%d %d/%d/%d", corners))
    paths["obj"].write_text("\n".join(lines) + "\n")
    return paths


def corner_vertices(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split vertices so each has one UV: (positions (N, 3), normals (N, 3), uvs (N, 2), triangles (F, 3)).

    N is the number of distinct (vertex, UV) pairs over all corners; normals stay the original
    vertex's smooth normal, so shading has no seams where UVs do.
    """
    _check_mesh(mesh)
    num_uvs = len(mesh.uvs)
    keys = mesh.faces.astype(np.int64) * num_uvs + mesh.uv_faces.astype(np.int64)
    unique, inverse = np.unique(keys.reshape(-1), return_inverse=True)
    vertex_ids, uv_ids = unique // num_uvs, unique % num_uvs
    normals = vertex_normals(mesh.vertices, mesh.faces)
    return (
        np.asarray(mesh.vertices, dtype=np.float32)[vertex_ids],
        normals[vertex_ids].astype(np.float32),
        np.asarray(mesh.uvs, dtype=np.float32)[uv_ids],
        inverse.reshape(-1, 3).astype(np.int64),
    )


def write_glb(mesh: HeadMesh, texture: np.ndarray, path: str | Path, png: bytes | None = None) -> Path:
    """Write a binary glTF 2.0 file of the textured mesh; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb_bytes(mesh, texture, png))
    return path


def glb_bytes(mesh: HeadMesh, texture: np.ndarray, png: bytes | None = None) -> bytes:
    positions, normals, uvs, triangles = corner_vertices(mesh)
    png = png if png is not None else encode_png(texture)
    texcoords = np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1).astype(np.float32)
    index_type, index_dtype = (UNSIGNED_SHORT, np.uint16) if len(positions) < 65535 else (UNSIGNED_INT, np.uint32)
    indices = triangles.reshape(-1).astype(index_dtype)

    blobs = [positions.tobytes(), normals.tobytes(), texcoords.tobytes(), indices.tobytes(), png]
    targets = [ARRAY_BUFFER, ARRAY_BUFFER, ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER, None]
    binary = bytearray()
    views = []
    for blob, target in zip(blobs, targets):
        view = {"buffer": 0, "byteOffset": len(binary), "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        views.append(view)
        binary += blob
        binary += b"\x00" * (-len(binary) % 4)

    document = {
        "asset": {"version": "2.0", "generator": "indian-avatar-ai reconstruct3d"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "head"}],
        "meshes": [{"name": "head", "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 2}, "indices": 3, "material": 0, "mode": 4}]}],
        "materials": [{"name": "head", "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0}, "metallicFactor": 0.0, "roughnessFactor": ROUGHNESS}}],
        "textures": [{"sampler": 0, "source": 0}],
        "samplers": [{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}],
        "images": [{"bufferView": 4, "mimeType": "image/png"}],
        "accessors": [
            {"bufferView": 0, "componentType": FLOAT, "count": len(positions), "type": "VEC3",
             "min": positions.min(axis=0).tolist(), "max": positions.max(axis=0).tolist()},
            {"bufferView": 1, "componentType": FLOAT, "count": len(normals), "type": "VEC3"},
            {"bufferView": 2, "componentType": FLOAT, "count": len(texcoords), "type": "VEC2"},
            {"bufferView": 3, "componentType": index_type, "count": len(indices), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    json_chunk = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_chunk += b" " * (-len(json_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(binary)
    return b"".join([
        struct.pack("<III", GLB_MAGIC, 2, total),
        struct.pack("<II", len(json_chunk), CHUNK_JSON), json_chunk,
        struct.pack("<II", len(binary), CHUNK_BIN), bytes(binary),
    ])


def _rows(pattern: str, values: np.ndarray) -> str:
    """One `pattern` line per row of `values` (printf-style), joined by newlines."""
    if len(values) == 0:
        return ""
    return ("\n".join([pattern] * len(values))) % tuple(values.reshape(-1).tolist())


def _check_mesh(mesh: HeadMesh) -> None:
    mesh.check_inputs()
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: lay them out first (actors.reconstruct3d.uv.ensure_uvs).")


def _check_texture(texture: np.ndarray) -> None:
    if texture.ndim != 3 or texture.shape[2] != 3 or texture.dtype != np.uint8:
        raise ValueError(f"texture must be (H, W, 3) uint8 RGB, got {texture.shape} {texture.dtype}.")
