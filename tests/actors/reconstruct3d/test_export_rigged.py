"""GLB/OBJ export of a rigged, morphing, multi-part head: Khronos validator, pygltflib and trimesh round trips.

The head is `rigged_mesh.rigged_head()` (4 parts, 5 joints, 52 ARKit morphs). Files are read back with
pygltflib plus a spec-only accessor decoder (`gltf_reader`), with trimesh, and checked against the
input and against independent computations (render.vertex_normals, a test-side skinning).
"""
import dataclasses
import json
import struct

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from actors.reconstruct3d.export import encode_images, glb_bytes, write_glb, write_obj
from actors.reconstruct3d.mesh import HeadTextures, Material, MeshPart, Skin
from actors.reconstruct3d.render import vertex_normals
from tests.actors.reconstruct3d.gltf_reader import Glb
from tests.actors.reconstruct3d.gltf_validator import validate
from tests.actors.reconstruct3d.rigged_mesh import (
    ARKIT_NAMES,
    DEFAULT_WEIGHTS,
    JOINT_NAMES,
    rigged_head,
    rotation_x,
    rotation_y,
    skinned_positions,
)

EXPECTED_WARNINGS = {"NODE_SKINNED_MESH_NON_ROOT"}  # the mesh and skeleton share one scene root, as in Blender's exports


@pytest.fixture(scope="module")
def head():
    return rigged_head()


@pytest.fixture(scope="module")
def glb(head, tmp_path_factory):
    """The file with every feature on (NORMAL deltas too)."""
    mesh, textures = head
    path = write_glb(mesh, textures, tmp_path_factory.mktemp("glb") / "head.glb", morph_normals=True)
    return path, Glb.load(path)


def original_ids(glb: Glb, primitive, mesh) -> np.ndarray:
    """The input vertex each of a primitive's vertices is a copy of (matched by position)."""
    positions = glb.accessor(primitive.attributes.POSITION)
    distance, ids = cKDTree(mesh.vertices).query(positions)
    assert distance.max() < 1e-7
    return ids


def test_builder_vertices_are_distinct(head):
    """Matching by position (above) needs every input vertex at its own place."""
    mesh, _ = head
    distance, _ = cKDTree(mesh.vertices).query(mesh.vertices, k=2)
    assert distance[:, 1].min() > 1e-5


@pytest.mark.parametrize("options", [{}, {"morph_normals": True}, {"sparse_morphs": False, "morph_normals": True}],
                         ids=["default", "normals", "dense-normals"])
def test_rigged_glb_passes_the_khronos_validator(head, tmp_path, options):
    mesh, textures = head
    report = validate(write_glb(mesh, textures, tmp_path / "head.glb", **options))
    issues = report["issues"]
    assert issues["numErrors"] == 0, issues["messages"]
    assert {m["code"] for m in issues["messages"] if m["severity"] == 1} <= EXPECTED_WARNINGS, issues["messages"]
    info = report["info"]
    assert info["hasSkins"] and info["hasMorphTargets"] and info["hasTextures"]
    assert info["drawCallCount"] == len(mesh.parts) and info["materialCount"] == len(mesh.parts)
    assert info["totalTriangleCount"] == len(mesh.faces)
    assert info["maxInfluences"] == 4


def _mutate(data: bytes, change) -> bytes:
    json_length = struct.unpack("<I", data[12:16])[0]
    document = json.loads(data[20:20 + json_length])
    binary = data[20 + json_length:]
    change(document)
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    return struct.pack("<III", 0x46546C67, 2, 20 + len(text) + len(binary)) + struct.pack("<II", len(text), 0x4E4F534A) + text + binary


def _break_sparse_bounds(document):
    sparse = next(a for a in document["accessors"] if "sparse" in a)
    sparse["max"] = [v + 0.01 for v in sparse["max"]]


def _drop_a_weight(document):
    document["meshes"][0]["weights"].pop()


def _break_joint_index(document):
    skin = document["skins"][0]
    skin["joints"] = skin["joints"][:2]  # JOINTS_0 now names joints the skin does not have


@pytest.mark.parametrize("change, code", [
    (_break_sparse_bounds, "ACCESSOR_MAX_MISMATCH"),
    (_drop_a_weight, "MESH_INVALID_WEIGHTS_COUNT"),
    (_break_joint_index, "ACCESSOR_JOINTS_INDEX_OOB"),
])
def test_the_validator_catches_a_broken_rigged_file(head, tmp_path, change, code):
    mesh, textures = head
    path = tmp_path / "broken.glb"
    path.write_bytes(_mutate(glb_bytes(mesh, textures), change))
    report = validate(path)
    assert report["issues"]["numErrors"] > 0
    assert code in {m["code"] for m in report["issues"]["messages"]}, report["issues"]["messages"]


def test_morph_targets_names_and_default_weights(head, glb):
    mesh, _ = head
    _, file = glb
    (gltf_mesh,) = file.gltf.meshes
    assert gltf_mesh.extras["targetNames"] == list(ARKIT_NAMES)
    expected = [DEFAULT_WEIGHTS.get(name, 0.0) for name in ARKIT_NAMES]
    assert gltf_mesh.weights == pytest.approx(expected, abs=0)
    assert len(gltf_mesh.primitives) == 4
    for primitive in gltf_mesh.primitives:
        assert len(primitive.targets) == 52


def test_morph_offsets_follow_the_vertex_split(head, glb):
    """Every split copy carries its input vertex's offset, sparse or zero accessors included."""
    mesh, _ = head
    _, file = glb
    sparse_count = 0
    for primitive in file.gltf.meshes[0].primitives:
        ids = original_ids(file, primitive, mesh)
        for name, target in zip(ARKIT_NAMES, primitive.targets):
            np.testing.assert_array_equal(file.accessor(target["POSITION"]), mesh.morph_targets[name][ids])
            sparse_count += file.gltf.accessors[target["POSITION"]].sparse is not None
    assert sparse_count > 0  # the local targets are written sparse


def test_morph_normal_deltas_match_recomputed_normals(head, glb):
    """NORMAL deltas = normals of the fully morphed mesh minus the neutral ones, recomputed from
    scratch with render.vertex_normals (another implementation)."""
    mesh, _ = head
    _, file = glb
    neutral = vertex_normals(mesh.vertices, mesh.faces)
    checked = 0
    for primitive in file.gltf.meshes[0].primitives:
        ids = original_ids(file, primitive, mesh)
        np.testing.assert_allclose(file.accessor(primitive.attributes.NORMAL), neutral[ids], atol=1e-6)
        for name, target in zip(ARKIT_NAMES, primitive.targets):
            if not mesh.morph_targets[name].any():
                assert not file.accessor(target["NORMAL"]).any()
                continue
            morphed = vertex_normals(mesh.vertices + mesh.morph_targets[name], mesh.faces)
            np.testing.assert_allclose(file.accessor(target["NORMAL"]), (morphed - neutral)[ids], atol=2e-5, err_msg=name)
            checked += 1
    assert checked >= 8


def test_uvs_positions_and_parts_round_trip(head, glb):
    mesh, textures = head
    _, file = glb
    pairs = {(v, tuple(t)) for v, t in zip(mesh.faces.reshape(-1), np.round(mesh.uvs[mesh.uv_faces.reshape(-1)], 6))}
    materials = [m.name for m in file.gltf.materials]
    for part, primitive in zip(mesh.parts, file.gltf.meshes[0].primitives):
        assert primitive.extras["part"] == part.name and materials[primitive.material] == part.material
        ids = original_ids(file, primitive, mesh)
        uv = file.accessor(primitive.attributes.TEXCOORD_0)
        uv = np.stack([uv[:, 0], 1 - uv[:, 1]], axis=1)  # glTF's v runs down
        found = {(int(i), tuple(t)) for i, t in zip(ids, np.round(uv, 6))}
        assert len(found) == len(ids)  # no two split copies share a UV
        assert found <= pairs
        triangles = file.accessor(primitive.indices).reshape(-1, 3)
        np.testing.assert_array_equal(ids[triangles], mesh.faces[part.faces])
        np.testing.assert_allclose(uv[triangles], mesh.uvs[mesh.uv_faces[part.faces]], atol=1e-6)


def test_materials_and_embedded_textures(head, glb):
    mesh, textures = head
    _, file = glb
    by_name = {m.name: m for m in file.gltf.materials}
    assert set(by_name) == {"skin", "eyes", "eyelashes", "teeth"}
    lashes = by_name["eyelashes"]
    assert lashes.alphaMode == "MASK" and lashes.doubleSided
    assert by_name["skin"].alphaMode in (None, "OPAQUE") and not by_name["skin"].doubleSided
    assert by_name["teeth"].pbrMetallicRoughness.baseColorTexture is None
    assert by_name["teeth"].pbrMetallicRoughness.baseColorFactor == pytest.approx([0.85, 0.82, 0.72, 1.0])
    for name in ("skin", "eyes", "eyelashes"):
        texture = file.gltf.textures[by_name[name].pbrMetallicRoughness.baseColorTexture.index]
        assert file.gltf.images[texture.source].mimeType == "image/png"
        np.testing.assert_array_equal(file.image(texture.source), textures.images[name])


def test_skeleton_hierarchy_and_inverse_bind_matrices(head, glb):
    mesh, _ = head
    _, file = glb
    gltf = file.gltf
    (skin,) = gltf.skins
    assert [gltf.nodes[j].name for j in skin.joints] == list(JOINT_NAMES)
    scene_roots = gltf.scenes[gltf.scene].nodes
    assert len(scene_roots) == 1
    root = gltf.nodes[scene_roots[0]]
    mesh_node = next(i for i, n in enumerate(gltf.nodes) if n.mesh is not None)
    assert mesh_node in root.children and gltf.nodes[mesh_node].skin == 0
    assert gltf.nodes[mesh_node].translation is None and gltf.nodes[mesh_node].matrix is None
    assert skin.skeleton in root.children and gltf.nodes[skin.skeleton].name == "neck_01"
    world = file.node_world_matrices()
    inverse_bind = file.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    for joint, matrix in zip(skin.joints, inverse_bind):
        np.testing.assert_allclose(world[joint] @ matrix, np.eye(4), atol=1e-6)
    np.testing.assert_allclose([world[j][:3, 3] for j in skin.joints], mesh.skin.bind_positions, atol=1e-6)


def test_skin_weights_round_trip(head, glb):
    mesh, _ = head
    _, file = glb
    count = len(JOINT_NAMES)
    expected = np.zeros((len(mesh.vertices), count))
    np.add.at(expected, (np.arange(len(mesh.vertices))[:, None].repeat(4, 1), mesh.skin.joints.astype(int)), mesh.skin.weights)
    for primitive in file.gltf.meshes[0].primitives:
        ids = original_ids(file, primitive, mesh)
        joints = file.accessor(primitive.attributes.JOINTS_0)
        weights = file.accessor(primitive.attributes.WEIGHTS_0)
        assert joints.dtype == np.uint8 and weights.dtype == np.float32
        decoded = np.zeros((len(ids), count))
        np.add.at(decoded, (np.arange(len(ids))[:, None].repeat(4, 1), joints.astype(int)), weights)
        np.testing.assert_allclose(decoded, expected[ids], atol=1e-6)


def test_file_skinning_matches_an_independent_skinning(head, glb):
    """Pose the file's skeleton (jaw open 20°, head turned 25°) with the file's own data and the
    glTF skinning formula; compare with rigged_mesh.skinned_positions on the input."""
    mesh, _ = head
    _, file = glb
    gltf = file.gltf
    rotations = {"jaw": rotation_x(20), "head": rotation_y(25)}
    weights = dict(DEFAULT_WEIGHTS, jawOpen=1.0)
    expected = skinned_positions(mesh, weights, rotations)
    (skin,) = gltf.skins
    joint_index = {gltf.nodes[j].name: k for k, j in enumerate(skin.joints)}
    # World matrices of the posed joints, from the file's hierarchy.
    posed = {}

    def visit(node_index, parent):
        node = gltf.nodes[node_index]
        local = np.eye(4)
        local[:3, 3] = node.translation or [0, 0, 0]
        if node.name in rotations:
            local[:3, :3] = rotations[node.name]
        posed[node_index] = parent @ local
        for child in node.children or []:
            visit(child, posed[node_index])

    visit(gltf.scenes[gltf.scene].nodes[0], np.eye(4))
    inverse_bind = file.accessor(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    joint_matrices = np.stack([posed[j] for j in skin.joints]) @ inverse_bind
    names = gltf.meshes[0].extras["targetNames"]
    for primitive in gltf.meshes[0].primitives:
        ids = original_ids(file, primitive, mesh)
        positions = file.accessor(primitive.attributes.POSITION).astype(np.float64)
        for name, target in zip(names, primitive.targets):
            positions = positions + weights.get(name, 0.0) * file.accessor(target["POSITION"])
        joints = file.accessor(primitive.attributes.JOINTS_0).astype(int)
        blend = np.einsum("vk,vkij->vij", file.accessor(primitive.attributes.WEIGHTS_0), joint_matrices[joints])
        result = np.einsum("vij,vj->vi", blend, np.c_[positions, np.ones(len(positions))])[:, :3]
        np.testing.assert_allclose(result, expected[ids], atol=2e-6)
    assert set(joint_index) == set(JOINT_NAMES)
    jaw_moved = np.linalg.norm(expected - skinned_positions(mesh, weights), axis=1)
    assert jaw_moved.max() > 0.005  # the pose really moves vertices


def test_trimesh_loads_parts_uvs_and_textures(head, glb):
    mesh, textures = head
    path, _ = glb
    scene = trimesh.load(path)
    assert isinstance(scene, trimesh.Scene)
    geometries = list(scene.geometry.values())
    assert len(geometries) == len(mesh.parts)
    assert sum(len(g.faces) for g in geometries) == len(mesh.faces)
    sizes = sorted(len(g.faces) for g in geometries)
    assert sizes == sorted(p.stop - p.start for p in mesh.parts)
    textured = [g for g in geometries if g.visual.material.baseColorTexture is not None]
    assert len(textured) == 3
    for geometry in geometries:
        assert geometry.visual.uv is not None and len(geometry.visual.uv) == len(geometry.vertices)
        _, ids = cKDTree(mesh.vertices).query(geometry.vertices)
        np.testing.assert_allclose(geometry.vertices, mesh.vertices[ids], atol=1e-7)
    shapes = sorted(np.asarray(g.visual.material.baseColorTexture).shape for g in textured)
    assert shapes == sorted(image.shape for image in textures.images.values())


def test_sparse_and_dense_files_hold_the_same_targets(head, tmp_path):
    mesh, textures = head
    sparse = Glb.load(write_glb(mesh, textures, tmp_path / "sparse.glb", morph_normals=True))
    dense = Glb.load(write_glb(mesh, textures, tmp_path / "dense.glb", sparse_morphs=False, morph_normals=True))
    assert (tmp_path / "sparse.glb").stat().st_size < (tmp_path / "dense.glb").stat().st_size
    assert not any(a.sparse for a in dense.gltf.accessors)
    assert all(a.bufferView is not None for a in dense.gltf.accessors)  # zeros written out too
    for a, b in zip(sparse.gltf.meshes[0].primitives, dense.gltf.meshes[0].primitives):
        for ta, tb in zip(a.targets, b.targets):
            for semantic in ("POSITION", "NORMAL"):
                np.testing.assert_array_equal(sparse.accessor(ta[semantic]), dense.accessor(tb[semantic]))


def test_by_default_targets_carry_positions_only(head, tmp_path):
    mesh, textures = head
    file = Glb.load(write_glb(mesh, textures, tmp_path / "head.glb"))
    assert all(set(t) == {"POSITION"} for p in file.gltf.meshes[0].primitives for t in p.targets)
    full = write_glb(mesh, textures, tmp_path / "full.glb", morph_normals=True)
    assert (tmp_path / "head.glb").stat().st_size < full.stat().st_size


def test_messy_skin_weights_are_cleaned(head, tmp_path):
    """A joint listed twice, zero weights on joints other than 0: merged and normalised, still valid."""
    mesh, textures = head
    joints = mesh.skin.joints.copy()
    weights = mesh.skin.weights.copy()
    joints[:, 2], weights[:, 0], weights[:, 2] = joints[:, 0], weights[:, 0] / 2, weights[:, 0] / 2  # same joint twice
    joints[:, 3] = 4  # a zero-weight slot naming eye_r
    messy = dataclasses.replace(mesh, skin=Skin(mesh.skin.joint_names, mesh.skin.parents, mesh.skin.bind_positions, joints, weights))
    path = write_glb(messy, textures, tmp_path / "messy.glb")
    assert validate(path)["issues"]["numErrors"] == 0
    file = Glb.load(path)
    for primitive in file.gltf.meshes[0].primitives:
        ids = original_ids(file, primitive, mesh)
        decoded_joints = file.accessor(primitive.attributes.JOINTS_0).astype(int)
        decoded_weights = file.accessor(primitive.attributes.WEIGHTS_0)
        assert (decoded_joints[decoded_weights == 0] == 0).all()
        merged = np.zeros((len(ids), 5))
        np.add.at(merged, (np.arange(len(ids))[:, None].repeat(4, 1), decoded_joints), decoded_weights)
        original = np.zeros((len(ids), 5))
        np.add.at(original, (np.arange(len(ids))[:, None].repeat(4, 1), mesh.skin.joints[ids].astype(int)), mesh.skin.weights[ids])
        np.testing.assert_allclose(merged, original, atol=1e-6)


def test_many_joints_use_unsigned_short(head, tmp_path):
    """More than 256 joints: JOINTS_0 switches to UNSIGNED_SHORT and stays valid."""
    mesh, textures = head
    count = 300
    positions = np.zeros((count, 3), np.float32)
    positions[:, 1] = np.linspace(-0.2, 0.1, count)
    joints = np.zeros((len(mesh.vertices), 4), np.uint16)
    joints[:, 0] = np.arange(len(mesh.vertices)) % count
    weights = np.zeros((len(mesh.vertices), 4), np.float32)
    weights[:, 0] = 1
    chain = Skin(tuple(f"j{i}" for i in range(count)), np.arange(-1, count - 1, dtype=np.int32), positions, joints, weights)
    path = write_glb(dataclasses.replace(mesh, skin=chain), textures, tmp_path / "chain.glb")
    report = validate(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    file = Glb.load(path)
    assert file.gltf.accessors[file.gltf.meshes[0].primitives[0].attributes.JOINTS_0].componentType == 5123


def test_obj_writes_one_material_group_per_part(head, tmp_path):
    mesh, textures = head
    paths = write_obj(mesh, textures, tmp_path / "out", encoded=encode_images(mesh, textures))
    assert {p.name for p in paths.values()} == {"head.obj", "head.mtl", "head_texture.png", "head_eyes.png", "head_eyelashes.png"}
    text = paths["obj"].read_text()
    assert [line.split()[1] for line in text.splitlines() if line.startswith("usemtl")] == ["skin", "eyes", "eyelashes", "teeth"]
    assert [line.split()[1] for line in text.splitlines() if line.startswith("g ")] == ["skin", "eyes", "eyelashes", "teeth"]
    mtl = paths["mtl"].read_text()
    blocks = {block.split("\n")[0]: block for block in mtl.split("newmtl ")[1:]}
    assert set(blocks) == {"skin", "eyes", "eyelashes", "teeth"}
    assert "map_Kd head_texture.png" in blocks["skin"] and "map_d head_eyelashes.png" in blocks["eyelashes"]
    assert "map_Kd" not in blocks["teeth"] and "Kd 0.850 0.820 0.720" in blocks["teeth"]
    loaded = trimesh.load(paths["obj"])  # one geometry per material
    geometries = list(loaded.geometry.values())
    assert sum(len(g.faces) for g in geometries) == len(mesh.faces)
    for geometry in geometries:  # the neutral shape: every vertex is an input vertex
        distance, _ = cKDTree(mesh.vertices).query(geometry.vertices)
        assert distance.max() < 2e-6
    rgba = [g.visual.material.image for g in geometries if getattr(g.visual.material, "image", None) is not None]
    assert sorted(image.size for image in rgba) == sorted((i.shape[1], i.shape[0]) for i in textures.images.values())


def test_encoded_pngs_are_reused(head):
    mesh, textures = head
    encoded = encode_images(mesh, textures)
    assert set(encoded) == {"skin", "eyes", "eyelashes"}
    marker = {name: data for name, data in encoded.items()}
    data = glb_bytes(mesh, textures, encoded=marker)
    for png in encoded.values():
        assert png in data


@pytest.mark.parametrize("edit, message", [
    (lambda m, t: (dataclasses.replace(m, parts=[MeshPart("skin", 0, len(m.faces), "hair")]), t), "material 'hair'"),
    (lambda m, t: (m, HeadTextures(images={**t.images, "skin": t.images["skin"].astype(np.float32)}, materials=t.materials)), "uint8 RGB"),
    (lambda m, t: (m, HeadTextures(images=t.images, materials={**t.materials, "skin": Material(texture="nope")})), "image 'nope'"),
    (lambda m, t: (m, HeadTextures(images=t.images, materials={**t.materials, "eyes": Material(texture="eyes", alpha_mode="ADD")})), "alpha_mode"),
    (lambda m, t: (m, HeadTextures(images={**t.images, "my skin": t.images["skin"]},
                                   materials={**t.materials, "skin": Material(texture="my skin")})), "image name"),
    (lambda m, t: (dataclasses.replace(m, uvs=None, uv_faces=None), t), "no UVs"),
    (lambda m, t: (m, HeadTextures(images=t.images, materials={**t.materials, "teeth": Material(base_color=(2, 0, 0, 1))})), "base_color"),
])
def test_bad_inputs_are_refused(head, edit, message):
    mesh, textures = edit(*head)
    with pytest.raises(ValueError, match=message):
        glb_bytes(mesh, textures)
