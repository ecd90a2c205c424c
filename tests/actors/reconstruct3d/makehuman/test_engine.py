"""The MakeHuman head engine on the package photos: parts, fit quality, rig, morphs, params."""
import dataclasses

import cv2
import numpy as np
import pytest

from actors.reconstruct3d.protocol import HeadEngine
from actors.reconstruct3d.makehuman import MakeHumanHeadEngine, MakeHumanOptions
from actors.reconstruct3d.makehuman.assets import read_base_mesh
from actors.reconstruct3d.makehuman.correspondence import load_correspondence
from actors.reconstruct3d.makehuman.cut import cut_head
from actors.reconstruct3d.makehuman.expressions import ARKIT_NAMES
from actors.reconstruct3d.mesh import HeadMesh
from actors.reconstruct3d.raster import rasterize

NAMES = ["astronaut", "grace_hopper"]


def test_engine_protocol_and_lazy_loading(monkeypatch):
    import actors.reconstruct3d.makehuman.model as model

    monkeypatch.setattr(model, "read_base_mesh", lambda: pytest.fail("the constructor must load nothing"))
    engine = MakeHumanHeadEngine()
    assert engine.name == "makehuman" and engine.Options is MakeHumanOptions
    assert isinstance(engine, HeadEngine)
    assert engine.reconstruct([]) == []
    # A configuration that points the torch engines at a GPU still builds the default head engine.
    assert MakeHumanHeadEngine(device="cuda").device == "cpu"


@pytest.mark.parametrize("name", NAMES)
def test_contract_and_parts(makehuman_engine, package_heads, name):
    mesh = package_heads[name]
    assert isinstance(mesh, HeadMesh) and mesh.engine == "makehuman"
    mesh.check_inputs()
    mesh.skin.check_inputs(len(mesh.vertices))
    assert [p.name for p in mesh.parts][:5] == ["skin", "eyes", "eyelashes", "teeth", "tongue"]
    assert [p.name for p in mesh.parts][5:] in ([], ["hair"])  # `dress` adds a hair cap when the photo shows hair
    assert mesh.uvs is not None and mesh.uv_faces.shape == mesh.faces.shape
    part = {p.name: np.unique(mesh.faces[p.faces]) for p in mesh.parts}
    size = {name: np.ptp(mesh.vertices[ids], axis=0) for name, ids in part.items()}
    assert 0.20 < size["skin"][1] < 0.45 and 0.15 < size["skin"][0] < 0.40  # head + neck + shoulders' start (m)
    assert 0.07 < size["eyes"][0] < 0.10 and 0.02 < size["eyes"][1] < 0.035  # two eyeballs (~2.8 cm) side by side
    assert 0.04 < size["teeth"][0] < 0.07 and 0.03 < size["tongue"][2] < 0.09
    skin = mesh.vertices[part["skin"]]
    head = skin[skin[:, 1] > mesh.vertices[part["eyes"], 1].min() - 0.02]
    assert np.ptp(head[:, 0]) > 0.14  # ears stick out beyond the face
    chin = makehuman_engine.model.landmarks(mesh.vertices)[152, 1]
    neck_base = mesh.skin.bind_positions[list(mesh.skin.joint_names).index("neck_01"), 1]
    rings = [skin[np.abs(skin[:, 1] - y) < 0.004] for y in np.linspace(neck_base, chin - 0.01, 6)]
    narrowest = min(rings, key=lambda ring: np.ptp(ring[:, 0]))
    assert 0.08 < np.ptp(narrowest[:, 0]) < 0.14 and 0.07 < np.ptp(narrowest[:, 2]) < 0.15  # a neck between chin and shoulders
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    assert abs(low[0] + high[0]) < 0.01 and (high[1] > 0.05) and abs(mesh.vertices[part["eyes"], 1].mean()) < 0.08


@pytest.mark.parametrize("name", NAMES)
def test_landmark_nme_recomputed_from_the_outputs(package_heads, aligned_faces, name):
    """NME ≤ 2% of the inter-ocular distance, recomputed here from `image_points` and the shipped
    correspondence file (hm08 ids mapped through the cut), not from the engine's own number."""
    mesh, face = package_heads[name], aligned_faces[name]
    correspondence = load_correspondence()
    cut = cut_head(read_base_mesh())
    exact = np.asarray((cut.to_cut != 0).sum(axis=1)).ravel() == 1
    mesh_id = {int(base): int(i) for i, base in enumerate(cut.base_vertex) if exact[i]}
    corners = np.vectorize(mesh_id.__getitem__)(correspondence.corners)
    projected = (mesh.image_points[corners][..., :2] * correspondence.barycentric[..., None]).sum(axis=1)
    iod = np.linalg.norm(face.landmarks[468, :2] - face.landmarks[473, :2])
    nme = np.linalg.norm(projected - face.landmarks[:, :2], axis=1).mean() / iod
    assert nme == pytest.approx(mesh.landmark_nme, rel=1e-3)
    assert nme <= 0.02


@pytest.mark.parametrize("name", NAMES)
def test_projected_head_covers_the_photos_skin(package_heads, aligned_faces, name):
    """A second measurement that shares nothing with the fit: the posed head drawn into the crop
    covers the aligner's landmark skin mask and stays within MediaPipe's person segmentation."""
    mesh, face = package_heads[name], aligned_faces[name]
    points = mesh.image_points
    raster = rasterize(points[:, :2], mesh.faces, 512, 512, depth=points[:, 2], cull=None)
    covered = raster.covered
    skin = face.skin_mask.astype(bool)
    assert covered[skin].mean() > 0.97
    landmarks = face.landmarks
    nose, ear = points[np.argmax(mesh.vertices[:, 2])], points[np.argmax(np.abs(mesh.vertices[:, 0]))]
    assert nose[2] < ear[2]  # depth grows away from the camera, as MediaPipe's z
    assert np.linalg.norm(nose[:2] - landmarks[1, :2]) < 0.15 * np.linalg.norm(landmarks[468, :2] - landmarks[473, :2])
    face_triangles = np.isin(raster.triangle, np.arange(mesh.parts[0].start, mesh.parts[0].stop))
    person = cv2.dilate((face.mask > 127).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert (face_triangles & ~person).sum() < 0.05 * face_triangles.sum()


@pytest.mark.parametrize("name", NAMES)
def test_rig_joints_and_bindings(package_heads, name):
    mesh = package_heads[name]
    skin = mesh.skin
    names = list(skin.joint_names)
    assert {"neck_01", "head", "jaw", "eye_l", "eye_r", "spine_03"} <= set(names)
    part = np.zeros(len(mesh.vertices), dtype=int)
    for index, p in enumerate(mesh.parts):
        part[np.unique(mesh.faces[p.faces])] = index
    eyes = part == 1
    for joint, side in (("eye_l", 1), ("eye_r", -1)):
        ball = eyes & (np.sign(mesh.vertices[:, 0]) == side)
        assert (skin.joints[ball, 0] == names.index(joint)).all() and np.allclose(skin.weights[ball, 0], 1.0)
        assert np.linalg.norm(skin.bind_positions[names.index(joint)] - mesh.vertices[ball].mean(axis=0)) < 0.003
    tongue = part == 4
    assert (skin.joints[tongue, 0] == names.index("jaw")).all()
    chin = np.argmin(np.where(part == 0, np.abs(mesh.vertices[:, 0]) + np.abs(mesh.vertices[:, 1] + 0.13) - 0.1 * mesh.vertices[:, 2], np.inf))
    assert names[skin.joints[chin, np.argmax(skin.weights[chin])]] == "jaw"
    crown = np.argmax(mesh.vertices[:, 1])
    assert names[skin.joints[crown, np.argmax(skin.weights[crown])]] == "head"
    joints = dict(zip(names, skin.bind_positions))
    assert joints["spine_03"][1] < joints["neck_01"][1] < joints["head"][1] < joints["eye_l"][1]


@pytest.mark.parametrize("name", NAMES)
def test_morph_targets_are_the_52_arkit_expressions(package_heads, name):
    mesh = package_heads[name]
    assert list(mesh.morph_targets) == list(ARKIT_NAMES) and len(ARKIT_NAMES) == 52
    assert set(mesh.morph_weights) == set(ARKIT_NAMES)
    assert all(0.0 <= w <= 1.0 for w in mesh.morph_weights.values())
    blink = np.linalg.norm(mesh.morph_targets["eyeBlinkLeft"], axis=1)
    left = mesh.vertices[:, 0] > 0
    assert blink[left].sum() > 0.85 * blink.sum()  # the subject's left eye, at +x
    assert blink[mesh.vertices[:, 0] < -0.01].max() < blink[left].max() / 3
    assert np.linalg.norm(mesh.morph_targets["jawOpen"], axis=1).max() > 0.02
    assert (np.linalg.norm(mesh.morph_targets["tongueOut"], axis=1) > 0).sum() < len(mesh.vertices) / 10


def test_smile_is_carried_by_the_morph_weights(package_heads):
    smiling, neutral = package_heads["astronaut"].morph_weights, package_heads["grace_hopper"].morph_weights
    assert min(smiling["mouthSmileLeft"], smiling["mouthSmileRight"]) > 0.5
    assert max(neutral["mouthSmileLeft"], neutral["mouthSmileRight"]) < 0.3


@pytest.mark.parametrize("name", NAMES)
def test_params_record_weights_scores_and_pose(package_heads, aligned_faces, name):
    params = package_heads[name].params
    assert len(params["shape_names"]) == len(params["shape_weights"]) > 100
    assert "macro-gender-female|male" in list(params["shape_names"])
    assert params["blendshape_scores"].shape == (52,) and str(params["blendshape_source"]) == "estimated"
    assert list(params["blendshape_names"]) == list(ARKIT_NAMES)
    rotation = params["rotation"]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-5)
    yaw, pitch, roll = params["yaw_pitch_roll_deg"]
    assert abs(yaw) < 20 and abs(roll) < 15


def test_stored_blendshapes_are_used(makehuman_engine, aligned_faces):
    face = aligned_faces["grace_hopper"]
    stored = dataclasses.replace(face, extras={**face.extras, "blendshapes": {"jawOpen": 0.8}})
    mesh = makehuman_engine.reconstruct([stored])[0]
    assert str(mesh.params["blendshape_source"]) == "extras"
    assert mesh.params["blendshape_scores"][list(ARKIT_NAMES).index("jawOpen")] == pytest.approx(0.8)
    as_array = dataclasses.replace(face, extras={"blendshapes": np.eye(52)[ARKIT_NAMES.index("jawOpen")] * 0.8})
    assert makehuman_engine.blendshapes(as_array)[0]["jawOpen"] == pytest.approx(0.8)


def test_residual_keeps_expression_out_of_the_neutral_head(makehuman_engine, package_heads, aligned_faces):
    """The astronaut smiles with her lips apart; her neutral head keeps them (nearly) together, and
    the posed head (neutral + morphs + the residual) shows the photo's open smile."""
    mesh, face = package_heads["astronaut"], aligned_faces["astronaut"]
    landmarks = makehuman_engine.model.landmarks
    template = makehuman_engine.model.template[: len(mesh.vertices)]
    rest_gap = np.linalg.norm(landmarks(template)[13] - landmarks(template)[14])
    neutral_gap = np.linalg.norm(landmarks(mesh.vertices)[13] - landmarks(mesh.vertices)[14])
    scale = float(mesh.params["scale_px_per_m"])
    photo_gap = np.linalg.norm(face.landmarks[13, :2] - face.landmarks[14, :2]) / scale  # metres
    posed_gap = np.linalg.norm(landmarks(mesh.image_points)[13, :2] - landmarks(mesh.image_points)[14, :2]) / scale
    assert photo_gap > 0.008  # the photo: lips well apart
    assert posed_gap == pytest.approx(photo_gap, abs=0.002)
    assert neutral_gap < rest_gap + 0.4 * (photo_gap - rest_gap)
