"""OBJ/MTL/PNG and GLB export: Khronos validator, trimesh round trips."""
import json
import struct

import numpy as np
import pytest
import trimesh

from actors.reconstruct3d.export import corner_vertices, encode_png, glb_bytes, write_glb, write_obj
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.mesh import HeadMesh
from tests.actors.reconstruct3d.gltf_validator import validate


@pytest.fixture(scope="module")
def head(aligned_faces):
    mesh = CanonicalHeadEngine().reconstruct_one(aligned_faces["astronaut"])
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return mesh, texture


def grid_mesh(side: int) -> tuple[HeadMesh, np.ndarray]:
    """A side×side vertex sheet with one UV per vertex (large enough for 32-bit indices)."""
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    vertices = np.stack([u.ravel() - 0.5, v.ravel() - 0.5, 0.05 * np.sin(6 * u.ravel())], axis=1).astype(np.float32)
    ids = np.arange(side * side).reshape(side, side)
    a, b, c, d = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel(), ids[1:, 1:].ravel(), ids[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int32)
    uvs = np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)
    mesh = HeadMesh(vertices=vertices, faces=faces, image_points=np.zeros_like(vertices), landmark_nme=0.0,
                    engine="canonical", uvs=uvs, uv_faces=faces.copy())
    return mesh, np.full((64, 64, 3), 200, np.uint8)


def test_glb_passes_the_khronos_validator(head, tmp_path):
    mesh, texture = head
    report = validate(write_glb(mesh, texture, tmp_path / "head.glb"))
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]
    info = report["info"]
    assert info["drawCallCount"] == 1 and info["totalTriangleCount"] == len(mesh.faces)
    assert info["materialCount"] == 1 and info["hasTextures"]


def test_large_glb_with_32_bit_indices_passes(tmp_path):
    mesh, texture = grid_mesh(300)  # 90,000 vertices > 65,535
    path = write_glb(mesh, texture, tmp_path / "sheet.glb")
    report = validate(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    document = _glb_json(path.read_bytes())
    assert document["accessors"][3]["componentType"] == 5125  # UNSIGNED_INT


def test_glb_layout_and_material(head):
    mesh, texture = head
    data = glb_bytes(mesh, texture)
    magic, version, length = struct.unpack("<III", data[:12])
    assert (magic, version, length) == (0x46546C67, 2, len(data)) and length % 4 == 0
    document = _glb_json(data)
    assert all(view["byteOffset"] % 4 == 0 for view in document["bufferViews"])
    material = document["materials"][0]["pbrMetallicRoughness"]
    assert material["metallicFactor"] == 0.0 and material["roughnessFactor"] == pytest.approx(0.8)
    assert document["images"][0]["mimeType"] == "image/png"
    assert document["accessors"][3]["componentType"] == 5123  # UNSIGNED_SHORT for small meshes


def test_glb_round_trip_in_trimesh(head, tmp_path):
    mesh, texture = head
    positions, _, uvs, triangles = corner_vertices(mesh)
    scene = trimesh.load(write_glb(mesh, texture, tmp_path / "head.glb"))
    (loaded,) = scene.geometry.values()
    assert len(loaded.vertices) == len(positions)  # one vertex per distinct (vertex, UV) pair
    assert len(loaded.faces) == len(mesh.faces)
    np.testing.assert_allclose(loaded.vertices, positions, atol=1e-6)
    np.testing.assert_allclose(loaded.visual.uv, uvs, atol=1e-6)  # trimesh flips glTF's v back
    image = loaded.visual.material.baseColorTexture
    assert image is not None and image.size == (texture.shape[1], texture.shape[0])
    np.testing.assert_array_equal(np.asarray(image.convert("RGB")), texture)


def test_corner_vertices_split_only_at_uv_seams(head):
    mesh, _ = head
    positions, normals, uvs, triangles = corner_vertices(mesh)
    # The canonical head has one UV seam: the rim of the neck cap.
    assert len(mesh.vertices) < len(positions) <= len(mesh.vertices) + 100
    np.testing.assert_allclose(positions[triangles], mesh.vertices[mesh.faces], atol=0)
    np.testing.assert_allclose(uvs[triangles], mesh.uvs[mesh.uv_faces], atol=0)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)


def test_obj_round_trip_with_texture(head, tmp_path):
    mesh, texture = head
    paths = write_obj(mesh, texture, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"head.obj", "head.mtl", "head_texture.png"}
    assert "map_Kd head_texture.png" in paths["mtl"].read_text()
    loaded = trimesh.load(paths["obj"])
    assert isinstance(loaded, trimesh.Trimesh)
    assert len(loaded.faces) == len(mesh.faces)
    assert len(loaded.vertices) == len(corner_vertices(mesh)[0])
    image = loaded.visual.material.image
    assert image is not None and image.size == (texture.shape[1], texture.shape[0])
    assert loaded.visual.uv is not None and (loaded.visual.uv >= 0).all() and (loaded.visual.uv <= 1).all()
    np.testing.assert_allclose(np.sort(loaded.vertices[:, 1]), np.sort(corner_vertices(mesh)[0][:, 1]), atol=1e-5)


def test_png_round_trip():
    import cv2

    texture = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_png(texture), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(decoded, texture)
    with pytest.raises(ValueError, match="uint8 RGB"):
        encode_png(texture.astype(np.float32))


def test_mesh_without_uvs_is_refused(head, tmp_path):
    import dataclasses

    mesh, texture = head
    with pytest.raises(ValueError, match="no UVs"):
        write_glb(dataclasses.replace(mesh, uvs=None, uv_faces=None), texture, tmp_path / "x.glb")


def _glb_json(data: bytes) -> dict:
    length, kind = struct.unpack("<II", data[12:20])
    assert kind == 0x4E4F534A
    return json.loads(data[20:20 + length])


def test_the_validator_catches_a_broken_file(head, tmp_path):
    """The validation above can fail: a GLB whose position bounds lie is reported."""
    mesh, texture = head
    data = glb_bytes(mesh, texture)
    document = _glb_json(data)
    json_length = struct.unpack("<I", data[12:16])[0]
    binary = data[20 + json_length:]
    document["accessors"][0]["max"] = [0.0, 0.0, 0.0]
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    broken = struct.pack("<III", 0x46546C67, 2, 20 + len(text) + len(binary)) + struct.pack("<II", len(text), 0x4E4F534A) + text + binary
    path = tmp_path / "broken.glb"
    path.write_bytes(broken)
    report = validate(path)
    assert report["issues"]["numErrors"] > 0
    assert any(m["code"] == "ACCESSOR_MAX_MISMATCH" for m in report["issues"]["messages"])
