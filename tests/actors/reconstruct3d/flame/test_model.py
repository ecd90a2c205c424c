"""FLAME's forward pass: blend shapes, pose correctives, LBS; the landmark-only path agrees with the full mesh."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from actors.reconstruct3d.flame.camera import matrix_to_axis_angle
from actors.reconstruct3d.flame.model import FlameModel, batch_rodrigues


def _inputs(batch: int, seed: int, dtype=torch.float64, scale: float = 0.3):
    generator = torch.Generator().manual_seed(seed)
    shape = torch.randn(batch, 300, generator=generator, dtype=dtype)
    expression = torch.randn(batch, 100, generator=generator, dtype=dtype)
    pose = scale * torch.randn(batch, 5, 3, generator=generator, dtype=dtype)
    return shape, expression, pose


def test_rest_pose_is_the_template(flame_assets):
    model = FlameModel(flame_assets, dtype=torch.float64)
    zeros = _inputs(2, 0)
    vertices, joints = model(torch.zeros_like(zeros[0]), torch.zeros_like(zeros[1]), torch.zeros_like(zeros[2]))
    np.testing.assert_allclose(vertices[0].numpy(), flame_assets.v_template, atol=1e-7)
    np.testing.assert_allclose(joints[1].numpy(), flame_assets.J_regressor @ flame_assets.v_template, atol=1e-6)


def test_blend_shapes_add_linearly_without_pose(flame_assets):
    model = FlameModel(flame_assets, dtype=torch.float64)
    shape, expression, pose = _inputs(1, 1)
    vertices, _ = model(shape, expression, torch.zeros_like(pose))
    expected = (flame_assets.v_template + flame_assets.shapedirs @ shape[0].numpy()
                + flame_assets.exprdirs @ expression[0].numpy())
    np.testing.assert_allclose(vertices[0].numpy(), expected, atol=1e-6)


def test_global_rotation_turns_the_head_about_the_root_joint(flame_assets):
    model = FlameModel(flame_assets, dtype=torch.float64)
    shape, expression, _ = _inputs(1, 2)
    pose = torch.zeros(1, 5, 3, dtype=torch.float64)
    rest, joints = model(shape, expression, pose)
    pose[0, 0] = torch.tensor([0.1, -0.4, 0.05])
    turned, _ = model(shape, expression, pose)
    rotation = batch_rodrigues(pose[:, 0])[0]
    root = joints[0, 0]
    np.testing.assert_allclose(turned[0].numpy(), ((rest[0] - root) @ rotation.T + root).numpy(), atol=1e-9)


def test_jaw_moves_only_jaw_weighted_vertices_without_correctives(flame_assets):
    assets = dataclasses.replace(flame_assets, posedirs=np.zeros_like(flame_assets.posedirs))
    model = FlameModel(assets, dtype=torch.float64)
    shape, expression, _ = _inputs(1, 3)
    pose = torch.zeros(1, 5, 3, dtype=torch.float64)
    rest, _ = model(shape, expression, pose)
    pose[0, 2, 0] = 0.3
    open_mouth, _ = model(shape, expression, pose)
    moved = np.linalg.norm((open_mouth - rest)[0].numpy(), axis=1) > 1e-9
    jaw_weight = assets.weights[:, 2]
    assert moved.any()
    assert (jaw_weight[moved] > 0).all() and not moved[jaw_weight == 0].any()


def test_landmark_rig_equals_full_mesh_at_the_landmarks(flame_assets, flame_embedding):
    model = FlameModel(flame_assets, dtype=torch.float64)
    shape, expression, pose = _inputs(3, 4)
    vertices, joints = model(shape, expression, pose)
    landmarks, landmark_joints = model.landmark_rig(flame_embedding)(shape, expression, pose)
    corners = vertices[:, flame_assets.faces[flame_embedding.face_idx]]
    expected = (corners * torch.as_tensor(flame_embedding.barycentric, dtype=torch.float64)[None, :, :, None]).sum(2)
    np.testing.assert_allclose(landmarks.numpy(), expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(landmark_joints.numpy(), joints.numpy(), atol=1e-12)
    assert model.landmark_rig(flame_embedding).rig.template.shape[0] < len(flame_assets.v_template) // 5


def test_fewer_components_match_zero_padding(flame_assets, flame_embedding):
    model = FlameModel(flame_assets, dtype=torch.float64)
    shape, expression, pose = _inputs(2, 5)
    small = model.landmark_rig(flame_embedding, num_shape=20, num_expression=10)(shape[:, :20], expression[:, :10], pose)[0]
    padded = torch.cat([shape[:, :20], torch.zeros(2, 280, dtype=torch.float64)], 1)
    padded_expr = torch.cat([expression[:, :10], torch.zeros(2, 90, dtype=torch.float64)], 1)
    full = model.landmark_rig(flame_embedding)(padded, padded_expr, pose)[0]
    np.testing.assert_allclose(small.numpy(), full.numpy(), atol=1e-12)


def test_vertices_are_affine_in_the_coefficients_for_a_fixed_pose(flame_assets, flame_embedding):
    model = FlameModel(flame_assets, dtype=torch.float64)
    landmarks = model.landmark_rig(flame_embedding)
    shape, expression, pose = _inputs(2, 6)
    offset, basis = landmarks.rig.linear_in_coeffs(pose)
    coeffs = torch.cat([shape, expression], 1)
    direct, _ = landmarks.rig(shape, expression, pose)
    np.testing.assert_allclose((offset + (basis * coeffs[:, None, None]).sum(-1)).numpy(), direct.numpy(), atol=1e-12)
    np.testing.assert_allclose(landmarks.coeff_basis(pose).numpy(), landmarks._at_landmarks(basis).numpy(), atol=1e-12)


def test_dtype_and_device_follow_the_caller(flame_assets, flame_embedding):
    model = FlameModel(flame_assets)  # defaults: CPU, float32 — never CUDA
    shape, expression, pose = _inputs(1, 7, dtype=torch.float32)
    vertices, _ = model(shape, expression, pose)
    assert vertices.dtype == torch.float32 and vertices.device.type == "cpu"
    with pytest.raises(ValueError, match="asked for 301"):
        model.rig(num_shape=301)


def test_rodrigues_round_trip():
    rot_vecs = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [0.0, 1.2, 0.0]], dtype=torch.float64)
    rotations = batch_rodrigues(rot_vecs)
    np.testing.assert_allclose((rotations @ rotations.transpose(1, 2)).numpy(), np.tile(np.eye(3), (3, 1, 1)), atol=1e-7)
    np.testing.assert_allclose(matrix_to_axis_angle(rotations).numpy(), rot_vecs.numpy(), atol=1e-7)
