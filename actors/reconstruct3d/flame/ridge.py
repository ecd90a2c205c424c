"""Batched weighted ridge regression: the exact coefficient step of the FLAME fit.

For a fixed pose and camera, FLAME's projected landmarks are affine in the identity/expression
coefficients (see `FlameRig.linear_in_coeffs`), so the coefficients that minimise
    Σ_r ω_r (A_r·c − y_r)² + cᵀ·diag(λ)·c
(reweighted residuals + Gaussian prior) have a closed form. Solved per face, in whichever of the
primal (K×K) or dual (R×R) form is smaller:
    primal: (AᵀΩA + Λ) c = AᵀΩy        dual: c = Λ⁻¹Aᵀ (AΛ⁻¹Aᵀ + Ω⁻¹)⁻¹ y
"""
from __future__ import annotations

import torch


def weighted_ridge(design: torch.Tensor, target: torch.Tensor, row_weights: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """design (B, R, K), target (B, R), row_weights (B, R) > 0, prior (K,) or (B, K) > 0 → coefficients (B, K)."""
    batch, num_rows, num_coeffs = design.shape
    prior = prior.expand(batch, num_coeffs)
    if num_rows < num_coeffs:
        scaled = design / prior[:, None, :]  # A Λ⁻¹
        gram = scaled @ design.transpose(1, 2) + torch.diag_embed(1.0 / row_weights)
        chol = _cholesky(gram)
        dual = torch.cholesky_solve(target[..., None], chol)  # (B, R, 1)
        return (scaled.transpose(1, 2) @ dual)[..., 0]
    root = design * torch.sqrt(row_weights)[..., None]  # Ω^½ A
    normal = torch.baddbmm(torch.diag_embed(prior), root.transpose(1, 2), root)
    chol = _cholesky(normal)
    rhs = torch.bmm(design.transpose(1, 2), (row_weights * target)[..., None])
    return torch.cholesky_solve(rhs, chol)[..., 0]


def _cholesky(matrix: torch.Tensor) -> torch.Tensor:
    """Cholesky factor; a matrix that rounding made indefinite gets a little diagonal jitter, once."""
    chol, info = torch.linalg.cholesky_ex(matrix)
    if bool((info != 0).any()):
        scale = matrix.diagonal(dim1=-2, dim2=-1).abs().mean(dim=-1)[:, None, None]
        eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device)
        chol = torch.linalg.cholesky(matrix + 1e-6 * scale * eye)
    return chol
