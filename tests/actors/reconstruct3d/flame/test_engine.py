"""`FlameHeadEngine`: user files in, `HeadMesh`es out; lazy, CPU by default, clear errors."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from dataset.face import AlignedFace
from actors.reconstruct3d.flame import FlameHeadEngine, UnsafePickleError
from actors.reconstruct3d.flame.engine import FlameOptions
from actors.reconstruct3d.flame.safe_pickle import FlameFileError
from actors.reconstruct3d.flame.synthetic import random_parameters, synthetic_landmarks



def flame_engine(model, embedding, texture=None, **options) -> FlameHeadEngine:
    """The engine for these files (paths as the CLI gives them)."""
    return FlameHeadEngine(FlameOptions(model=str(model), embedding=str(embedding),
                                        texture=None if texture is None else str(texture), **options))

def _aligned(landmarks: np.ndarray) -> AlignedFace:
    return AlignedFace(
        crop=np.zeros((512, 512, 3), np.uint8), mask=np.full((512, 512), 255, np.uint8),
        landmarks=landmarks.astype(np.float32), skin_mask=np.zeros((512, 512), bool),
        source_to_crop=np.eye(2, 3), bbox=(0.0, 0.0, 512.0, 512.0), pose=(0.0, 0.0, 0.0), num_faces=1,
        ita=30.0, mst=5,
    )


@pytest.fixture(scope="module")
def faces_and_truth(flame_assets, flame_embedding):
    params = random_parameters(5, seed=3)
    landmarks, vertices = synthetic_landmarks(flame_assets, flame_embedding, **params)
    return [_aligned(lm) for lm in landmarks], params, vertices


def test_constructor_is_lazy_and_cpu_by_default(tmp_path):
    engine = flame_engine(tmp_path / "missing.pkl", tmp_path / "missing.npz")  # nothing is read yet
    assert engine.device == "cpu" and engine._fitter is None
    with pytest.raises(FileNotFoundError, match="FLAME model not found"):
        engine.check_inputs()
    with pytest.raises(FileNotFoundError, match="FLAME model not found"):
        engine.reconstruct([_aligned(np.zeros((478, 3)))])


def test_missing_embedding_and_texture(flame_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="landmark embedding not found"):
        flame_engine(flame_files["model"], tmp_path / "none.npz").check_inputs()
    with pytest.raises(FileNotFoundError, match="texture layout not found"):
        flame_engine(flame_files["model"], flame_files["embedding"], tmp_path / "none.npz").check_inputs()
    with pytest.raises(ValueError, match="batch_size"):
        flame_engine(flame_files["model"], flame_files["embedding"], batch_size=0).check_inputs()


def test_swapped_files_are_a_clear_error(flame_files):
    with pytest.raises(FlameFileError, match="zip/npz archive"):
        flame_engine(flame_files["embedding"], flame_files["model"]).load()


def test_reconstruct_returns_flame_head_meshes(flame_files, faces_and_truth, flame_assets, flame_embedding):
    faces, params, vertices = faces_and_truth
    engine = flame_engine(flame_files["model"], flame_files["embedding"], flame_files["texture"], batch_size=2)
    meshes = engine.reconstruct(faces)  # 5 faces in batches of 2, 2, 1
    assert len(meshes) == 5
    for index, mesh in enumerate(meshes):
        mesh.check_inputs()
        assert mesh.engine == "flame" and mesh.landmark_nme < 0.01
        assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32
        assert mesh.uvs.shape == (flame_assets.faces.size, 2) and mesh.uv_faces.shape == mesh.faces.shape
        # Origin at the centre of the head's bounding box; the mesh is frontal (pose lives in the camera).
        np.testing.assert_allclose(mesh.vertices.min(0) + mesh.vertices.max(0), 0.0, atol=1e-5)
        assert set(mesh.params) == {"shape", "expression", "global_pose", "jaw_pose", "neck_pose", "eye_pose",
                                    "camera", "mesh_origin"}
        np.testing.assert_allclose(mesh.params["global_pose"], params["global_pose"][index], atol=0.05)
        # image_points reproduce the input landmarks at the embedding.
        corners = mesh.image_points[flame_assets.faces[flame_embedding.face_idx]]
        at_landmarks = (corners[..., :2] * flame_embedding.barycentric[:, :, None]).sum(1)
        observed = faces[index].landmarks[flame_embedding.landmark_indices, :2]
        assert np.abs(at_landmarks - observed).mean() < 1.5  # crop pixels
        # Depth: larger = farther; the nose (embedded landmark 5) is nearer than the outer eye corners.
        depth = (corners[..., 2] * flame_embedding.barycentric).sum(1)
        order = list(flame_embedding.landmark_indices)
        assert depth[order.index(5)] < min(depth[order.index(33)], depth[order.index(263)])
        # The frontal mesh plus the fitted rotation is the fitted head (metres).
        error = np.linalg.norm(_posed(mesh) - vertices[index], axis=1).mean()
        assert error < 0.01 * np.linalg.norm(np.ptp(flame_assets.v_template, axis=0))


def _posed(mesh) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    frontal = mesh.vertices + mesh.params["mesh_origin"]
    scale, tx, ty = mesh.params["camera"]
    rotation = Rotation.from_rotvec(mesh.params["global_pose"]).as_matrix()
    # Recover the root joint from the projection: image x, y of a posed vertex are s·X + t.
    posed_xy = np.stack([(mesh.image_points[:, 0] - tx) / scale, -(mesh.image_points[:, 1] - ty) / scale], 1)
    posed_z = -mesh.image_points[:, 2] / scale
    posed = np.concatenate([posed_xy, posed_z[:, None]], 1)
    rotated = frontal @ rotation.T
    return rotated + (posed - rotated).mean(0)


def test_without_a_texture_layout_the_engine_lays_out_uvs(flame_files, faces_and_truth):
    engine = flame_engine(flame_files["model"], flame_files["embedding"])
    first, second = engine.reconstruct(faces_and_truth[0][:2])
    assert first.uvs is not None and first.uv_faces.shape == first.faces.shape
    assert 0.0 <= first.uvs.min() and first.uvs.max() <= 1.0
    assert np.array_equal(first.uv_faces, second.uv_faces)  # one xatlas layout per topology, shared


def test_bad_face_landmarks(flame_files):
    engine = flame_engine(flame_files["model"], flame_files["embedding"])
    with pytest.raises(ValueError, match=r"face 0: landmarks must be \(478, 3\)"):
        engine.reconstruct([_aligned(np.zeros((468, 3)))])
    assert engine.reconstruct([]) == []


class _Exploit:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_model_through_the_engine(tmp_path, flame_files, faces_and_truth):
    marker = tmp_path / "ran"
    (tmp_path / "generic_model.pkl").write_bytes(pickle.dumps({"v_template": _Exploit(marker)}, protocol=2))
    engine = flame_engine(tmp_path / "generic_model.pkl", flame_files["embedding"])
    with pytest.raises(UnsafePickleError, match="system"):
        engine.reconstruct(faces_and_truth[0][:1])
    assert not marker.exists()
