"""The default head engine on real aligned faces (package photos)."""
import dataclasses

import cv2
import numpy as np
import pytest
import trimesh

from actors.align.template import LEFT_IRIS, RIGHT_IRIS
from actors.reconstruct3d.head import CanonicalHeadEngine, CanonicalHeadOptions, fit_similarity


@pytest.fixture(scope="module")
def engine():
    return CanonicalHeadEngine()


@pytest.fixture(scope="module")
def meshes(engine, aligned_faces):
    return dict(zip(aligned_faces, engine.reconstruct(list(aligned_faces.values()))))


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_landmark_reprojection_within_five_percent(meshes, aligned_faces, name):
    mesh, face = meshes[name], aligned_faces[name]
    assert mesh.landmark_nme <= 0.05
    # Recompute it from the outputs: the reported number is the real reprojection error.
    inter_ocular = np.linalg.norm(face.landmarks[LEFT_IRIS, :2] - face.landmarks[RIGHT_IRIS, :2])
    error = np.linalg.norm(mesh.image_points[:468, :2] - face.landmarks[:468, :2], axis=1).mean() / inter_ocular
    assert error == pytest.approx(mesh.landmark_nme, rel=1e-4)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_closed_head_in_metres(meshes, name):
    mesh = meshes[name]
    mesh.check_inputs()
    solid = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert solid.is_watertight and solid.is_winding_consistent and solid.volume > 0
    width, height, depth = np.ptp(mesh.vertices, axis=0)
    assert 0.14 < width < 0.24 and 0.25 < height < 0.40 and 0.18 < depth < 0.28
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    assert abs(low[0] + high[0]) < 0.01  # centred left-right
    assert (low < -0.05).all() and (high > 0.05).all()  # the origin is well inside the head
    assert mesh.engine == "canonical" and mesh.uvs is not None


def test_frontal_whatever_the_roll(engine, aligned_faces):
    """The pose lives in the camera: turning the photo in-plane leaves the head's shape alone."""
    face = aligned_faces["astronaut"]
    turn = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    landmarks = face.landmarks.copy()
    landmarks[:, :2] = face.landmarks[:, :2] @ turn[:, :2].T + turn[:, 2]
    turned = engine.reconstruct_one(dataclasses.replace(face, landmarks=landmarks))
    original = engine.reconstruct_one(face)
    assert np.abs(turned.vertices - original.vertices).max() < 1e-3  # metres
    assert turned.landmark_nme == pytest.approx(original.landmark_nme, rel=0.05)
    assert np.linalg.norm(turned.image_points[:468, :2] - landmarks[:468, :2], axis=1).mean() < 2.0  # pixels


def test_the_face_follows_the_photo(engine, meshes, aligned_faces):
    """Different people give different faces (the fit is not the template)."""
    a, b = meshes["astronaut"].vertices[:468], meshes["grace_hopper"].vertices[:468]
    assert np.abs(a - b).mean() > 1e-3
    template = (engine.template.vertices[:468] - engine.template.centre) * 0.01
    assert np.abs(a - template).mean() > 1e-3


def test_smoothing_trades_error_for_regularity(aligned_faces):
    face = aligned_faces["grace_hopper"]
    exact = CanonicalHeadEngine(CanonicalHeadOptions(plane_smoothing=0)).reconstruct_one(face)
    smooth = CanonicalHeadEngine(CanonicalHeadOptions(plane_smoothing=4)).reconstruct_one(face)
    assert exact.landmark_nme < 1e-4 < smooth.landmark_nme < 0.05


def test_fit_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(100, 3))
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    target = 3.0 * source @ rotation.T + [1.0, 2.0, 3.0]
    target[:5] += 10.0  # outliers the reweighting should discount
    scale, fitted, translation = fit_similarity(source, target, robust_passes=3)
    assert scale == pytest.approx(3.0, rel=0.02)
    np.testing.assert_allclose(fitted, rotation, atol=0.02)


def test_bad_landmarks(engine, aligned_faces):
    face = aligned_faces["astronaut"]
    nan = face.landmarks.copy()
    nan[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        engine.reconstruct_one(dataclasses.replace(face, landmarks=nan))
    with pytest.raises(ValueError, match=r"\(478, 3\)"):
        engine.reconstruct_one(dataclasses.replace(face, landmarks=face.landmarks[:468]))


def test_options_validated():
    with pytest.raises(ValueError, match="depth_keep"):
        CanonicalHeadEngine(CanonicalHeadOptions(depth_keep=1.5))
