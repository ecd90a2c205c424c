"""Binary glTF 2.0 (GLB) writer for `HeadMesh` heads: parts, PBR materials, a skin and morph targets.

What a client finds in the file:
- One mesh ("head"; "head_mesh" when skinned) with one primitive per `MeshPart` (skin, eyes,
  eyelashes, teeth, ...). Each primitive has its own vertex accessors holding only its part's
  vertices: clients build one vertex buffer and one morph texture per primitive, so accessors shared
  by all parts would copy every vertex and every morph into each part. glTF has no per-corner UVs,
  so vertices are split where one vertex carries several UVs (`CornerSplit`); normals, skin weights
  and morph offsets follow the split. glTF's v runs down the image (v_gltf = 1 - v).
- PBR metallic-roughness materials, one per `Material` a part uses (baseColorFactor, a PNG
  baseColorTexture embedded in a bufferView, alphaMode, doubleSided).
- A skin, when the mesh has one: joints are nodes with parent-relative translations of
  `Skin.bind_positions` and no rotation, so a joint's world transform is a translation to its bind
  position and its inverse bind matrix the translation back. The skinned mesh node "head_mesh" has
  no transform and sits beside the root joints under one scene root node "avatar" (move the avatar
  there), as in Blender's own exports; joint names must differ from these two. JOINTS_0 is
  UNSIGNED_BYTE (≤ 256 joints) or UNSIGNED_SHORT; WEIGHTS_0 floats summing to 1, with repeated
  joints merged and unused slots pointing at joint 0.
- Morph targets on every primitive, in `HeadMesh.morph_targets` order: POSITION offsets and, with
  `morph_normals`, the NORMAL change they cause (recomputed only around the vertices a target
  moves). Names in `mesh.extras.targetNames` (read by three.js, Blender, Unity glTFast and Unreal),
  default weights (the photo's expression) in `mesh.weights`. A target that moves a few of a part's
  vertices is a sparse accessor (`sparse_morphs`); one that moves none is an accessor without a
  bufferView, which the spec defines as zeros.
Every bufferView starts on a 4-byte boundary, chunks are padded (JSON with spaces, BIN with zeros),
POSITION accessors (morph targets' too) carry exact min/max.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from .export_inputs import (
    RESERVED_NODE_NAMES,
    CornerSplit,
    as_textures,
    check_export_inputs,
    merge_encoded,
    split_corners,
    unit_rows,
    used_images,
    used_parts,
    vertex_normal_sums,
)
from .gltf_morphs import SparseTargets, normal_deltas
from .mesh import HeadMesh, HeadTextures, MeshPart, Skin
from dataset.images import encode_png

GLB_MAGIC, GLB_VERSION = 0x46546C67, 2  # "glTF"
CHUNK_JSON, CHUNK_BIN = 0x4E4F534A, 0x004E4942
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT, FLOAT = 5121, 5123, 5125, 5126
COMPONENT_TYPES = {np.dtype(np.uint8): UNSIGNED_BYTE, np.dtype(np.uint16): UNSIGNED_SHORT,
                   np.dtype(np.uint32): UNSIGNED_INT, np.dtype(np.float32): FLOAT}
ACCESSOR_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
LINEAR, LINEAR_MIPMAP_LINEAR, CLAMP_TO_EDGE, TRIANGLES = 9729, 9987, 33071, 4
GENERATOR = "indian-avatar-ai reconstruct3d"
MESH_NAME = "head"  # the mesh and its node, for a head without a skin
# The names of a skinned head's scene root and of its mesh and mesh node: clients look bones up by
# name and rename duplicates (three.js turns a bone "head" into "head_1" when a mesh is also called
# "head"), so no joint may carry these (check_export_inputs refuses it).
SCENE_ROOT, SKINNED_MESH_NODE = RESERVED_NODE_NAMES


def write_glb(
    mesh: HeadMesh,
    textures: HeadTextures | np.ndarray,
    path: str | Path,
    *,
    encoded: Mapping[str, bytes] | None = None,
    png: bytes | None = None,
    sparse_morphs: bool = True,
    morph_normals: bool = False,
) -> Path:
    """Write `glb_bytes(...)` to `path` (parent folders created); returns `path`."""
    path = Path(path)
    data = glb_bytes(mesh, textures, encoded=encoded, png=png, sparse_morphs=sparse_morphs, morph_normals=morph_normals)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def glb_bytes(
    mesh: HeadMesh,
    textures: HeadTextures | np.ndarray,
    *,
    encoded: Mapping[str, bytes] | None = None,
    png: bytes | None = None,
    sparse_morphs: bool = True,
    morph_normals: bool = False,
) -> bytes:
    """A binary glTF 2.0 file of the head (see the module docstring for its layout).

    textures: the head's images and materials, or a bare (H, W, 3) albedo for one skin material.
    encoded: PNG bytes per image name already encoded (`export.encode_images`), so the OBJ and the
    GLB share one encoding; `png`: the same for the "skin" image alone. sparse_morphs=False writes
    every morph target as a plain array (no sparse or data-less accessors), for an importer that
    lacks them; the morph data grows ~2.5x.
    morph_normals=True adds each target's NORMAL deltas, so three.js and Unity shade a morphed face
    with its morphed normals (Blender recomputes them anyway). Off by default: on the MakeHuman head
    they triple the GLB's cost (~17 -> ~65 ms on one core) and double its morph data.
    """
    textures = as_textures(textures)
    encoded = merge_encoded(encoded, png)
    check_export_inputs(mesh, textures, encoded)

    # 1. Per original vertex: smooth normals, skin, morph offsets; then the per-UV split.
    sums = vertex_normal_sums(mesh.vertices, mesh.faces)
    normals = unit_rows(sums).astype(np.float32)
    split = split_corners(mesh)
    morphs = _Morphs.of(mesh, sums, normals, morph_normals)
    skin = _clean_skin(mesh.skin) if mesh.skin is not None else None

    # 2. Materials and images, in order of first use.
    binary = _Binary()
    parts = used_parts(mesh)
    images = used_images(mesh, textures)
    image_index = {name: i for i, name in enumerate(images)}
    material_names = list(dict.fromkeys(part.material for part in parts))
    document: dict = {"asset": {"version": "2.0", "generator": GENERATOR}, "scene": 0}

    # 3. One primitive per part (its accessors first, so a one-part head keeps the old layout:
    #    POSITION, NORMAL, TEXCOORD_0, indices = accessors 0-3), morphs distributed over the parts.
    pieces = [_PartVertices.of(split, part) for part in parts]
    fields: dict[str, list[SparseTargets]] = {}
    if morphs is not None:
        vertex_lists = [piece.vertex for piece in pieces]
        fields["POSITION"] = morphs.positions.distribute(vertex_lists, len(mesh.vertices))
        if morphs.normals is not None:
            fields["NORMAL"] = morphs.normals.distribute(vertex_lists, len(mesh.vertices))
    primitives = [
        _primitive(binary, part, piece, material_names.index(part.material), mesh, normals, skin,
                   {semantic: per_part[index] for semantic, per_part in fields.items()}, sparse_morphs)
        for index, (part, piece) in enumerate(zip(parts, pieces))
    ]
    image_views = [binary.view(encoded.get(name) or encode_png(textures.images[name], fast=True)) for name in images]
    gltf_mesh: dict = {"name": MESH_NAME if skin is None else SKINNED_MESH_NODE, "primitives": primitives}
    if morphs is not None:
        gltf_mesh["weights"] = morphs.weights
        gltf_mesh["extras"] = {"targetNames": morphs.names}

    # 4. Nodes: the mesh alone, or a scene root holding the skinned mesh and the skeleton.
    document["scenes"] = [{"nodes": [0]}]
    if skin is None:
        document["nodes"] = [{"name": MESH_NAME, "mesh": 0}]
    else:
        document["nodes"], document["skins"] = _skeleton_nodes(binary, skin)

    document["meshes"] = [gltf_mesh]
    document["materials"] = [_material(name, textures, image_index) for name in material_names]
    if images:
        document["textures"] = [{"sampler": 0, "source": i} for i in range(len(images))]
        document["samplers"] = [{"magFilter": LINEAR, "minFilter": LINEAR_MIPMAP_LINEAR, "wrapS": CLAMP_TO_EDGE, "wrapT": CLAMP_TO_EDGE}]
        document["images"] = [{"name": name, "bufferView": view, "mimeType": "image/png"} for name, view in zip(images, image_views)]
    data = binary.finish()
    document["accessors"] = binary.accessors
    document["bufferViews"] = binary.views
    document["buffers"] = [{"byteLength": len(data)}]
    return _glb_container(document, data)


class _Binary:
    """The BIN chunk being built, with its bufferViews and accessors (every view 4-byte aligned).

    Sparse accessors' indices and values go to two shared bufferViews appended by `finish`."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []
        self._sparse_indices = bytearray()
        self._sparse_values = bytearray()
        self._sparse: list[dict] = []

    def view(self, blob: bytes, target: int | None = None) -> int:
        self.data += b"\x00" * (-len(self.data) % 4)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self.data += blob
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, *, target: int | None = None, bounds: bool = False) -> int:
        array = np.ascontiguousarray(array)
        width = int(np.prod(array.shape[1:], dtype=np.int64))
        entry = {"bufferView": self.view(array.tobytes(), target), "componentType": COMPONENT_TYPES[array.dtype],
                 "count": len(array), "type": ACCESSOR_TYPES[width]}
        if bounds:
            entry["min"], entry["max"] = _bounds(array.reshape(len(array), width))
        return self._add(entry)

    def zeros(self, count: int, width: int = 3) -> int:
        """A float accessor of zeros: no bufferView (the spec fills it with zeros), exact bounds."""
        return self._add({"componentType": FLOAT, "count": count, "type": ACCESSOR_TYPES[width],
                          "min": [0.0] * width, "max": [0.0] * width})

    def sparse_group(self, count: int, field: SparseTargets, bounds: bool) -> list[int | None]:
        """Sparse float VEC3 accessors of `count` rows, one per target of `field` that has pairs (None
        for the others), all written with two appends: the group's indices and values are contiguous.
        Bounds (exact, zeros included where a target leaves rows untouched) only when asked: POSITION."""
        pairs = np.diff(field.starts())
        index_dtype = np.dtype(np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.uint32)
        self._sparse_indices += b"\x00" * (-len(self._sparse_indices) % 4)
        index_base, value_base = len(self._sparse_indices), len(self._sparse_values)
        self._sparse_indices += field.vertex.astype(index_dtype).tobytes()
        self._sparse_values += np.ascontiguousarray(field.values, dtype=np.float32).tobytes()
        present = np.flatnonzero(pairs)
        first = np.concatenate([[0], np.cumsum(pairs)[:-1]])
        if bounds and len(present):
            low = np.minimum.reduceat(field.values, first[present])
            high = np.maximum.reduceat(field.values, first[present])
            partial = (pairs[present] < count)[:, None]  # untouched rows are zeros
            low, high = np.where(partial, np.minimum(low, 0), low).tolist(), np.where(partial, np.maximum(high, 0), high).tolist()
        accessors: list[int | None] = [None] * len(pairs)
        component = COMPONENT_TYPES[index_dtype]
        for row, k in enumerate(present.tolist()):
            sparse = {"count": int(pairs[k]),
                      "indices": {"bufferView": -1, "byteOffset": index_base + int(first[k]) * index_dtype.itemsize, "componentType": component},
                      "values": {"bufferView": -1, "byteOffset": value_base + int(first[k]) * 12}}
            self._sparse.append(sparse)
            entry = {"componentType": FLOAT, "count": count, "type": "VEC3", "sparse": sparse}
            if bounds:
                entry["min"], entry["max"] = low[row], high[row]
            accessors[k] = self._add(entry)
        return accessors

    def finish(self) -> bytes:
        """The BIN chunk's bytes (padded to 4), after appending the sparse bufferViews."""
        if self._sparse:
            indices_view, values_view = self.view(bytes(self._sparse_indices)), self.view(bytes(self._sparse_values))
            for sparse in self._sparse:
                sparse["indices"]["bufferView"], sparse["values"]["bufferView"] = indices_view, values_view
        self.data += b"\x00" * (-len(self.data) % 4)
        return bytes(self.data)

    def _add(self, entry: dict) -> int:
        self.accessors.append(entry)
        return len(self.accessors) - 1


@dataclass(frozen=True)
class _Morphs:
    """Morph targets over the original vertices: names, default weights, offsets, and the change
    of the unit vertex normals at full weight (None without `morph_normals`)."""

    names: list[str]
    weights: list[float]
    positions: SparseTargets
    normals: SparseTargets | None

    @classmethod
    def of(cls, mesh: HeadMesh, sums: np.ndarray, normals: np.ndarray, with_normals: bool) -> "_Morphs | None":
        if not mesh.morph_targets:
            return None
        names = list(mesh.morph_targets)
        positions = SparseTargets.from_dense([mesh.morph_targets[name] for name in names])
        deltas = normal_deltas(mesh.vertices, mesh.faces, positions, sums, normals) if with_normals else None
        return cls(names, [float(mesh.morph_weights.get(name, 0.0)) for name in names], positions, deltas)


@dataclass(frozen=True)
class _PartVertices:
    """A part's own vertices: the split vertices its triangles use, ascending."""

    vertex: np.ndarray  # (n,) original vertex of each
    uv: np.ndarray  # (n,) UV index of each
    triangles: np.ndarray  # (f, 3) indices into the part's vertices

    @classmethod
    def of(cls, split: CornerSplit, part: MeshPart) -> "_PartVertices":
        triangles = split.triangles[part.faces]
        in_part = np.zeros(len(split.vertex_ids), dtype=bool)
        in_part[triangles] = True
        used = np.flatnonzero(in_part)
        return cls(split.vertex_ids[used], split.uv_ids[used], (np.cumsum(in_part) - 1)[triangles])


def _primitive(
    binary: _Binary, part: MeshPart, piece: _PartVertices, material: int, mesh: HeadMesh, normals: np.ndarray,
    skin: _SkinAttributes | None, fields: dict[str, SparseTargets], sparse_morphs: bool,
) -> dict:
    """The glTF primitive of one part, with accessors over that part's vertices only.
    fields: the morph targets' POSITION (and NORMAL) pairs over the part's vertices."""
    vertex = piece.vertex
    uv = np.asarray(mesh.uvs, dtype=np.float32)[piece.uv]
    attributes = {
        "POSITION": binary.accessor(np.asarray(mesh.vertices, dtype=np.float32)[vertex], target=ARRAY_BUFFER, bounds=True),
        "NORMAL": binary.accessor(normals[vertex], target=ARRAY_BUFFER),
        "TEXCOORD_0": binary.accessor(np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1), target=ARRAY_BUFFER),
    }
    if skin is not None:
        attributes["JOINTS_0"] = binary.accessor(skin.joints[vertex], target=ARRAY_BUFFER)
        attributes["WEIGHTS_0"] = binary.accessor(skin.weights[vertex], target=ARRAY_BUFFER)
    index_dtype = np.uint16 if len(vertex) < 65535 else np.uint32  # 65535 is the restart index
    primitive = {
        "attributes": attributes,
        "indices": binary.accessor(piece.triangles.reshape(-1).astype(index_dtype), target=ELEMENT_ARRAY_BUFFER),
        "material": material,
        "mode": TRIANGLES,
        "extras": {"part": part.name},
    }
    if fields:
        primitive["targets"] = _targets(binary, len(vertex), fields, sparse_morphs)
    return primitive


def _targets(binary: _Binary, count: int, fields: dict[str, SparseTargets], sparse_morphs: bool) -> list[dict]:
    """One {"POSITION"[, "NORMAL"]} per morph over a part's `count` vertices.

    A target is sparse when that is smaller (and `sparse_morphs`), dense otherwise, and an accessor
    without data when it moves none of the part's vertices."""
    index_bytes = 1 if count <= 256 else 2 if count <= 65536 else 4
    targets: list[dict] = [{} for _ in range(fields["POSITION"].count)]
    for semantic, local in fields.items():
        starts = local.starts()
        pairs = np.diff(starts)
        use_sparse = (pairs > 0) & (pairs * (12 + index_bytes) < 12 * count) & sparse_morphs
        chosen = np.repeat(use_sparse, pairs)
        sparse = binary.sparse_group(count, SparseTargets(local.count, local.target[chosen], local.vertex[chosen], local.values[chosen]),
                                     bounds=semantic == "POSITION")
        zero = None  # one all-zero accessor per semantic: validators track each accessor's use
        for k, target in enumerate(targets):
            if sparse[k] is not None:
                target[semantic] = sparse[k]
            elif pairs[k] == 0:
                if zero is None:  # plain zeros when sparse data is off: some older importers need a bufferView
                    zero = binary.zeros(count) if sparse_morphs else binary.accessor(
                        np.zeros((count, 3), np.float32), target=ARRAY_BUFFER, bounds=semantic == "POSITION")
                target[semantic] = zero
            else:
                dense = np.zeros((count, 3), dtype=np.float32)
                dense[local.vertex[starts[k]:starts[k + 1]]] = local.values[starts[k]:starts[k + 1]]
                target[semantic] = binary.accessor(dense, target=ARRAY_BUFFER, bounds=semantic == "POSITION")
    return targets


@dataclass(frozen=True)
class _SkinAttributes:
    """A skin with its JOINTS_0 / WEIGHTS_0 per original vertex, cleaned for validators and engines."""

    skin: Skin
    joints: np.ndarray  # (V, 4) uint8 (≤ 256 joints) or uint16
    weights: np.ndarray  # (V, 4) float32, rows summing to 1


def _clean_skin(skin: Skin) -> _SkinAttributes:
    """JOINTS_0 / WEIGHTS_0 as validators and engines expect them: a joint listed twice has its
    weights merged, empty slots point at joint 0, weights renormalised in float32 (the first slot
    absorbs the rounding)."""
    joints = skin.joints.astype(np.int64)
    weights = np.clip(skin.weights.astype(np.float64), 0.0, None)
    for a in range(4):
        for b in range(a + 1, 4):
            same = (joints[:, a] == joints[:, b]) & (weights[:, b] > 0)
            if same.any():
                weights[same, a] += weights[same, b]
                weights[same, b] = 0.0
    joints = np.where(weights > 0, joints, 0)
    weights = (weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)
    weights[:, 0] += np.float32(1.0) - weights.sum(axis=1, dtype=np.float32)
    dtype = np.uint8 if len(skin.joint_names) <= 256 else np.uint16
    return _SkinAttributes(skin, joints.astype(dtype), weights)


def _skeleton_nodes(binary: _Binary, skin: _SkinAttributes) -> tuple[list[dict], list[dict]]:
    """Nodes [scene root, skinned mesh node, joints...] and the skin.

    Joints carry translations relative to their parent and no rotation, so each joint's world
    matrix is a translation to its bind position and the inverse bind matrix the opposite one."""
    skin_data = skin.skin
    positions = np.asarray(skin_data.bind_positions, dtype=np.float64)
    parents = np.asarray(skin_data.parents, dtype=np.int64)
    first_joint = 2
    nodes: list[dict] = [{"name": SCENE_ROOT, "children": [1]}, {"name": SKINNED_MESH_NODE, "mesh": 0, "skin": 0}]
    for index, name in enumerate(skin_data.joint_names):
        parent = parents[index]
        local = positions[index] - (positions[parent] if parent >= 0 else 0.0)
        nodes.append({"name": name, "translation": [float(v) for v in local.astype(np.float32)]})
        if parent >= 0:
            nodes[first_joint + parent].setdefault("children", []).append(first_joint + index)
        else:
            nodes[0]["children"].append(first_joint + index)
    # Translations are written as float32; the inverse bind matrices undo the float32 world positions
    # the client will compose, so bind pose and rest pose agree to the last bit.
    world = np.zeros_like(positions, dtype=np.float32)
    for index, parent in enumerate(parents):
        local = np.asarray(nodes[first_joint + index]["translation"], dtype=np.float32)
        world[index] = local + (world[parent] if parent >= 0 else np.float32(0))
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (len(positions), 1, 1))
    inverse_bind[:, 3, :3] = -world  # column-major: the translation is the last column, stored last
    roots = [first_joint + int(i) for i in np.flatnonzero(parents < 0)]
    gltf_skin = {"name": "skeleton", "joints": list(range(first_joint, first_joint + len(positions))),
                 "inverseBindMatrices": binary.accessor(inverse_bind.reshape(-1, 16)),
                 "skeleton": roots[0] if len(roots) == 1 else 0}
    return nodes, [gltf_skin]


def _material(name: str, textures: HeadTextures, image_index: dict[str, int]) -> dict:
    material = textures.materials[name]
    pbr: dict = {}
    if tuple(material.base_color) != (1.0, 1.0, 1.0, 1.0):
        pbr["baseColorFactor"] = [float(c) for c in material.base_color]
    if material.texture is not None:
        pbr["baseColorTexture"] = {"index": image_index[material.texture]}
    pbr["metallicFactor"] = float(material.metallic)
    pbr["roughnessFactor"] = float(material.roughness)
    entry = {"name": name, "pbrMetallicRoughness": pbr}
    if material.alpha_mode != "OPAQUE":
        entry["alphaMode"] = material.alpha_mode
    if material.double_sided:
        entry["doubleSided"] = True
    return entry


def _bounds(values: np.ndarray) -> tuple[list[float], list[float]]:
    values = values.astype(np.float32, copy=False)
    return values.min(axis=0).tolist(), values.max(axis=0).tolist()


def _glb_container(document: dict, binary: bytes) -> bytes:
    json_chunk = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_chunk += b" " * (-len(json_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(binary)
    return b"".join([
        struct.pack("<III", GLB_MAGIC, GLB_VERSION, total),
        struct.pack("<II", len(json_chunk), CHUNK_JSON), json_chunk,
        struct.pack("<II", len(binary), CHUNK_BIN), binary,
    ])
