"""FLAME's forward pass in plain PyTorch (no pytorch3d, no chumpy).

vertices = LBS(v_template + shapedirs·β + exprdirs·ψ + posedirs·(R(θ₁..θ₄) − I), joints, weights, θ)

- β identity and ψ expression coefficients (FLAME's Gaussian priors: unit variance);
- θ (J, 3) axis-angle per joint, FLAME's order: global, neck, jaw, the two eyes;
- joints = J_regressor · (v_template + shapedirs·β + exprdirs·ψ), regressed in closed form from
  precomputed `J_regressor·v_template` and `J_regressor·dirs` (no full mesh needed);
- pose correctives from the rotations of every joint but the root, flattened row by row (FLAME's
  "lrotmin" blend shapes).

`FlameModel.rig(vertex_ids)` gathers the rows of the bases and skinning weights for a vertex subset
once; `LandmarkRig` evaluates only the vertices under the landmark embedding, which is what a fit
iteration needs (the full mesh is skinned once, at the end). Device and dtype come from the caller.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from actors.reconstruct3d.flame.assets import FlameAssets
from actors.reconstruct3d.flame.embedding import LandmarkEmbedding

ROTATION_EPS = 1e-8


def batch_rodrigues(rot_vecs: torch.Tensor) -> torch.Tensor:
    """(N, 3) axis-angle → (N, 3, 3) rotation matrices (differentiable at zero)."""
    angle = torch.linalg.vector_norm(rot_vecs + ROTATION_EPS, dim=1, keepdim=True)
    axis = rot_vecs / angle
    cos, sin = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    rx, ry, rz = axis.unbind(dim=1)
    zeros = torch.zeros_like(rx)
    skew = torch.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)[None]
    return eye + sin * skew + (1.0 - cos) * torch.bmm(skew, skew)


def rigid_transforms(
    rotations: torch.Tensor, joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Chain local joint rotations down the kinematic tree.

    rotations (B, J, 3, 3), rest joints (B, J, 3) → posed joints (B, J, 3) and the skinning transform of
    each joint as world rotation (B, J, 3, 3) and translation (B, J, 3), mapping rest-pose points to posed.
    """
    offsets = [joints[:, 0]] + [joints[:, j] - joints[:, parents[j]] for j in range(1, joints.shape[1])]
    world_rot, world_pos = [rotations[:, 0]], [offsets[0]]
    for j in range(1, joints.shape[1]):
        parent = parents[j]
        world_rot.append(world_rot[parent] @ rotations[:, j])
        world_pos.append(world_pos[parent] + (world_rot[parent] @ offsets[j][..., None])[..., 0])
    rot = torch.stack(world_rot, dim=1)
    posed = torch.stack(world_pos, dim=1)
    translation = posed - (rot @ joints[..., None])[..., 0]
    return posed, rot, translation


@dataclass
class FlameRig:
    """FLAME's bases for a subset of vertices (or all), for a chosen number of components."""

    template: torch.Tensor  # (n, 3)
    dirs_t: torch.Tensor  # (s + e, n·3): identity then expression components, transposed for matmul
    posedirs_t: torch.Tensor  # (P, n·3)
    weights: torch.Tensor  # (n, J)
    joint_template: torch.Tensor  # (J, 3)
    joint_dirs_t: torch.Tensor  # (s + e, J·3)
    parents: list[int]
    num_shape: int
    num_expression: int

    @property
    def num_joints(self) -> int:
        return self.weights.shape[1]

    def shaped(self, shape: torch.Tensor, expression: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest-pose vertices (B, n, 3) and joints (B, J, 3) for identity (B, s) and expression (B, e)."""
        batch = shape.shape[0]
        coeffs = torch.cat([shape, expression], dim=1)
        v_shaped = self.template + (coeffs @ self.dirs_t).view(batch, -1, 3)
        joints = self.joint_template + (coeffs @ self.joint_dirs_t).view(batch, self.num_joints, 3)
        return v_shaped, joints

    def _rotations(self, pose: torch.Tensor) -> torch.Tensor:
        return batch_rodrigues(pose.reshape(-1, 3)).view(pose.shape[0], self.num_joints, 3, 3)

    def _pose_terms(self, pose: torch.Tensor, joints: torch.Tensor):
        """Pose correctives (B, n, 3), per-vertex skinning rotation (B, n, 3, 3), posed joints and the
        joints' skinning translations (B, J, 3)."""
        batch = pose.shape[0]
        rotations = self._rotations(pose)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rotations[:, 1:] - eye).reshape(batch, -1)
        correctives = (pose_feature @ self.posedirs_t).view(batch, -1, 3)
        posed_joints, world_rot, world_t = rigid_transforms(rotations, joints, self.parents)
        vertex_rot = torch.matmul(self.weights, world_rot.reshape(batch, self.num_joints, 9)).view(batch, -1, 3, 3)
        return correctives, vertex_rot, posed_joints, world_t

    def posed(self, v_shaped: torch.Tensor, joints: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Skin rest-pose vertices with pose (B, J, 3) → posed vertices (B, n, 3) and joints (B, J, 3)."""
        correctives, vertex_rot, posed_joints, world_t = self._pose_terms(pose, joints)
        v_posed = v_shaped + correctives
        vertices = (vertex_rot * v_posed[:, :, None, :]).sum(-1) + torch.matmul(self.weights, world_t)
        return vertices, posed_joints

    def __call__(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """shape (B, s), expression (B, e), pose (B, J, 3) → posed vertices (B, n, 3), posed joints (B, J, 3)."""
        return self.posed(*self.shaped(shape, expression), pose)

    def joint_coeff_terms(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a fixed pose: per-joint world rotations (B, J, 3, 3) and the derivative of each joint's
        skinning translation by the coefficients (B, J, 3, K). Rotations do not depend on the shape."""
        batch, num_coeffs = pose.shape[0], self.dirs_t.shape[0]
        _, world_rot, _ = rigid_transforms(self._rotations(pose), self.joint_template.expand(batch, -1, -1), self.parents)
        joint_dirs = self.joint_dirs_t.t().reshape(self.num_joints, 3, num_coeffs)
        # d(posed joint)/dc down the chain, then d(skinning translation)/dc = d(posed joint) − R_world · dJ.
        d_posed = [joint_dirs[0].expand(batch, -1, -1)]
        for j in range(1, self.num_joints):
            parent = self.parents[j]
            d_posed.append(d_posed[parent] + world_rot[:, parent] @ (joint_dirs[j] - joint_dirs[parent]))
        d_translation = torch.stack(d_posed, dim=1) - world_rot @ joint_dirs  # (B, J, 3, K)
        return world_rot, d_translation

    def linear_in_coeffs(self, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a fixed pose, posed vertices are affine in the coefficients c = (β, ψ):
        vertices = offset + basis · c, offset (B, n, 3), basis (B, n, 3, s+e). Exact, not a linearisation."""
        batch, num_coeffs = pose.shape[0], self.dirs_t.shape[0]
        world_rot, d_translation = self.joint_coeff_terms(pose)
        offset, _ = self.posed(self.template.expand(batch, -1, -1), self.joint_template.expand(batch, -1, -1), pose)
        vertex_rot = torch.matmul(self.weights, world_rot.reshape(batch, self.num_joints, 9)).view(batch, -1, 3, 3)
        dirs = self.dirs_t.t().reshape(-1, 3, num_coeffs)  # (n, 3, K)
        basis = torch.einsum("bnij,njk->bnik", vertex_rot, dirs)
        basis = basis + torch.einsum("nj,bjik->bnik", self.weights, d_translation)
        return offset, basis


class LandmarkRig:
    """FLAME evaluated only on the vertices of the triangles under the landmark embedding."""

    def __init__(self, rig: FlameRig, triangles: torch.Tensor, barycentric: torch.Tensor) -> None:
        self.rig = rig
        self.triangles = triangles  # (L, 3) into the rig's vertex subset
        self.barycentric = barycentric  # (L, 3)
        # Pose-independent pieces of d(landmark)/dc: the skinning-weighted bases per landmark and joint.
        corner_weights = rig.weights[triangles] * barycentric[..., None]  # (L, 3, J)
        dirs = rig.dirs_t.t().reshape(-1, 3, rig.dirs_t.shape[0])[triangles]  # (L, 3 corners, 3, K)
        self.joint_dirs = torch.einsum("lcj,lcak->ljak", corner_weights, dirs)  # (L, J, 3, K)
        self.joint_weights = corner_weights.sum(dim=1)  # (L, J)

    def _at_landmarks(self, values: torch.Tensor) -> torch.Tensor:
        """Per-vertex values (B, n, 3, ...) → barycentric interpolation at the landmarks (B, L, 3, ...)."""
        corners = values[:, self.triangles]  # (B, L, 3 corners, 3, ...)
        weights = self.barycentric.view(*self.barycentric.shape, *([1] * (values.dim() - 2)))
        return (corners * weights).sum(dim=2)

    def shaped(self, shape: torch.Tensor, expression: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.rig.shaped(shape, expression)

    def posed(self, v_shaped: torch.Tensor, joints: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """→ landmark positions (B, L, 3), posed joints (B, J, 3)."""
        vertices, posed_joints = self.rig.posed(v_shaped, joints, pose)
        return self._at_landmarks(vertices), posed_joints

    def __call__(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """→ landmark positions (B, L, 3), posed joints (B, J, 3)."""
        return self.posed(*self.shaped(shape, expression), pose)

    def coeff_basis(self, pose: torch.Tensor) -> torch.Tensor:
        """d(landmarks)/dc (B, L, 3, K) at a fixed pose; landmarks are affine in c, so this is exact."""
        world_rot, d_translation = self.rig.joint_coeff_terms(pose)
        basis = torch.einsum("bjac,ljck->blak", world_rot, self.joint_dirs)
        return basis + torch.einsum("lj,bjak->blak", self.joint_weights, d_translation)


class FlameModel:
    """FLAME's tensors on one device and dtype; builds full-mesh and landmark rigs."""

    def __init__(self, assets: FlameAssets, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.assets = assets
        self.device = torch.device(device)
        self.dtype = dtype
        self.parents = [int(p) for p in assets.parents]
        self.faces = torch.as_tensor(assets.faces, device=self.device)

    @property
    def num_shape(self) -> int:
        return self.assets.num_shape

    @property
    def num_expression(self) -> int:
        return self.assets.num_expression

    @property
    def num_joints(self) -> int:
        return self.assets.num_joints

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.dtype, device=self.device)

    def rig(self, vertex_ids: np.ndarray | None = None, *, num_shape: int | None = None,
            num_expression: int | None = None) -> FlameRig:
        """Bases gathered for `vertex_ids` (all vertices when None), first `num_shape`/`num_expression` components."""
        a = self.assets
        s = a.num_shape if num_shape is None else num_shape
        e = a.num_expression if num_expression is None else num_expression
        if not (0 <= s <= a.num_shape and 0 <= e <= a.num_expression):
            raise ValueError(f"the model has {a.num_shape} identity and {a.num_expression} expression components; "
                             f"asked for {s} and {e}.")
        ids = slice(None) if vertex_ids is None else np.asarray(vertex_ids)
        dirs = np.concatenate([a.shapedirs[:, :, :s], a.exprdirs[:, :, :e]], axis=2)  # (V, 3, s+e)
        joint_dirs = np.einsum("jv,vck->kjc", a.J_regressor, dirs, optimize=True)  # (s+e, J, 3)
        sub = dirs[ids]
        return FlameRig(
            template=self._tensor(a.v_template[ids]),
            dirs_t=self._tensor(sub.reshape(-1, s + e).T),
            posedirs_t=self._tensor(a.posedirs[ids].reshape(-1, a.posedirs.shape[2]).T),
            weights=self._tensor(a.weights[ids]),
            joint_template=self._tensor(a.J_regressor @ a.v_template),
            joint_dirs_t=self._tensor(joint_dirs.reshape(s + e, -1)),
            parents=self.parents,
            num_shape=s,
            num_expression=e,
        )

    def landmark_rig(self, embedding: LandmarkEmbedding, *, num_shape: int | None = None,
                     num_expression: int | None = None) -> LandmarkRig:
        """A rig over the vertices of the embedded triangles only."""
        embedding.check_against(len(self.assets.faces))
        corners = self.assets.faces[embedding.face_idx]  # (L, 3) vertex ids
        vertex_ids, local = np.unique(corners.ravel(), return_inverse=True)
        rig = self.rig(vertex_ids, num_shape=num_shape, num_expression=num_expression)
        triangles = torch.as_tensor(local.reshape(-1, 3), device=self.device)
        return LandmarkRig(rig, triangles, self._tensor(embedding.barycentric))

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The full mesh: (B, V, 3) posed vertices and (B, J, 3) posed joints. Builds the full rig on every
        call; keep `rig()` for repeated evaluation."""
        rig = self.rig(num_shape=shape.shape[1], num_expression=expression.shape[1])
        return rig(shape, expression, pose)

    __call__ = forward
