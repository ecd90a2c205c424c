"""The weak-perspective (scaled orthographic) camera of the FLAME fit.

    u = s·X + tx,   v = −s·Y + ty,   depth = −s·Z

(X, Y, Z) in FLAME's metres (+y up, +z toward the camera), (u, v) crop pixels (y down), s pixels per
metre; depth in the same pixel scale, larger = farther, as MediaPipe's relative z.
"""
from __future__ import annotations

import numpy as np
import torch


def project_points(vertices: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(B, V, 3) metres and (B, 3) cameras (s, tx, ty) → (B, V, 3): crop-pixel x, y and depth −s·Z."""
    scale, tx, ty = camera[:, 0, None], camera[:, 1, None], camera[:, 2, None]
    return np.stack([scale * vertices[..., 0] + tx, -scale * vertices[..., 1] + ty, -scale * vertices[..., 2]], axis=-1)


def matrix_to_axis_angle(rotation: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) rotations → (B, 3) axis-angle (angles below π; a visible face never turns that far)."""
    trace = rotation.diagonal(dim1=-2, dim2=-1).sum(-1)
    angle = torch.acos(((trace - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7))
    skew = torch.stack([rotation[:, 2, 1] - rotation[:, 1, 2], rotation[:, 0, 2] - rotation[:, 2, 0],
                        rotation[:, 1, 0] - rotation[:, 0, 1]], dim=1)
    small = angle < 1e-4
    safe = torch.where(small, torch.ones_like(angle), angle)
    factor = torch.where(small, 0.5 + angle**2 / 12, safe / (2 * torch.sin(safe)))
    return skew * factor[:, None]


def rotation_and_scale_from_points(model_points: torch.Tensor, image_points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form weak-perspective pose: fit an affine camera, then take the nearest scaled rotation.

    model_points (R, 3) and image_points (B, R, 2) (x right, y down) → rotation (B, 3, 3), scale (B,).
    """
    model_c = model_points - model_points.mean(dim=0)
    image_c = image_points - image_points.mean(dim=1, keepdim=True)
    affine = (torch.linalg.pinv(model_c) @ image_c).transpose(1, 2)  # (B, 2, 3)
    flip = torch.tensor([1.0, -1.0], dtype=affine.dtype, device=affine.device)
    u, singular, vh = torch.linalg.svd(affine * flip[:, None], full_matrices=False)
    rows = u @ vh  # the nearest orthonormal pair: the rotation's x and y rows
    rotation = torch.stack([rows[:, 0], rows[:, 1], torch.linalg.cross(rows[:, 0], rows[:, 1])], dim=1)
    return rotation, singular.mean(dim=1)
