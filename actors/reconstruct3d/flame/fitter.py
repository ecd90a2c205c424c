"""Fit FLAME to MediaPipe landmarks, batched over faces.

Camera: weak perspective into the 512×512 crop (see `camera`). The fit works in units of each face's
inter-ocular distance (IOD, between the iris centres 468 and 473) around the landmark centroid, so
the robust scale and the priors mean the same for every face.

Objective per face (faces never interact: every solve, step and acceptance is per face):
    Σ_l ρ(‖proj_l − obs_l‖ / IOD)                          robust 2D reprojection (Geman-McClure, Huber, L2)
  + depth_weight · Σ_l ρ(depth_l − z_l)                    optional weak term on MediaPipe's relative depth,
                                                            both centred per face, in IOD units
  + L·(shape_prior·‖β‖² + expression_prior·‖ψ‖² + jaw_prior·‖θ_jaw‖²)   FLAME's unit-variance priors
(L = embedded landmarks; the config's weights are per landmark, as if the sums were means).

Optimiser: Levenberg-Marquardt with iteratively reweighted least squares for ρ. For a fixed pose the
landmarks are exactly affine in the identity/expression coefficients, so their Jacobian columns are
exact (`LandmarkRig.coeff_basis`) and each step is one batched ridge solve (`ridge`); the 7 pose
columns (global and jaw rotation, log-scale) are central differences from one batched forward pass;
the 2D translation is eliminated in closed form. This converges in ~10 steps where first-order
methods (Adam) stall on the ill-conditioned coefficient directions.

Coarse to fine:
1. Rigid: a closed-form weak-perspective pose of the mean face on the rigid landmarks (eye corners,
   nose, brows, forehead), then `rigid_iterations` steps on global rotation + scale over them.
2. Full: `iterations` steps on coefficients, global and jaw rotation and scale over all embedded
   landmarks (+ depth). The first steps of each stage are plain least squares (far from the answer the
   robust weights would discard good landmarks). Neck and eyes stay at rest.
Landmarks only touch the vertices under the embedding; the full mesh is skinned once, at the end.
Initialisation is fixed (zeros and closed forms), so results are deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from actors.reconstruct3d.flame.assets import FlameAssets
from actors.reconstruct3d.flame.camera import matrix_to_axis_angle, project_points, rotation_and_scale_from_points
from actors.reconstruct3d.flame.embedding import LandmarkEmbedding
from actors.reconstruct3d.flame.model import FlameModel, batch_rodrigues
from actors.reconstruct3d.flame.ridge import weighted_ridge

LEFT_IRIS, RIGHT_IRIS = 468, 473  # as in actors.align.template
GLOBAL, JAW = 0, 2  # FLAME's joints: global, neck, jaw, eyes
# MediaPipe landmarks that move little with expression: eye corners, nose bridge and tip, inner brows,
# forehead and temples.
RIGID_MEDIAPIPE = (
    33, 133, 362, 263, 130, 243, 463, 359, 6, 168, 197, 195, 5, 4, 1, 2, 98, 327, 107, 336, 55, 285,
    9, 8, 151, 10, 127, 356, 234, 454,
)
MIN_RIGID_LANDMARKS = 6
ROBUST_LOSSES = ("geman_mcclure", "huber", "l2")
L2_STEPS = 2  # the first steps of each stage start far off: plain least squares before reweighting


@dataclass(frozen=True)
class FitConfig:
    num_shape: int | None = 100  # identity components fitted (None: all the model has; FLAME has 300)
    num_expression: int | None = 50  # expression components fitted (None: all; FLAME has 100)
    rigid_iterations: int = 4  # stage 1 steps: camera + global rotation on the rigid landmarks
    iterations: int = 10  # stage 2 steps: + identity, expression, jaw on all landmarks
    robust: str = "geman_mcclure"
    robust_scale: float = 0.1  # residual (in IOD) where the robust loss starts to flatten
    # Prior weights per landmark: a weight w matches landmark noise of about √(w·L) IOD (3e-6 → 1.8% IOD).
    shape_prior: float = 3e-6
    expression_prior: float = 3e-6
    jaw_prior: float = 1e-4
    depth_weight: float = 0.1  # MediaPipe relative depth (resolves pitch against shape); 0 disables it
    rigid_landmarks: tuple[int, ...] = RIGID_MEDIAPIPE
    device: str | None = None  # None → "cpu"
    dtype: torch.dtype = torch.float32

    def check_inputs(self) -> None:
        for name in ("rigid_iterations", "iterations"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        for name in ("robust_scale", "shape_prior", "expression_prior"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        for name in ("jaw_prior", "depth_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.robust not in ROBUST_LOSSES:
            raise ValueError(f"robust must be one of {ROBUST_LOSSES}, got {self.robust!r}.")
        for name in ("num_shape", "num_expression"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {getattr(self, name)}.")
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}.")


@dataclass
class FitResult:
    """Per-face results (leading axis B), numpy."""

    shape: np.ndarray  # (B, S) FLAME identity coefficients (zeros past the fitted ones)
    expression: np.ndarray  # (B, E)
    global_pose: np.ndarray  # (B, 3) axis-angle
    jaw_pose: np.ndarray  # (B, 3)
    neck_pose: np.ndarray  # (B, 3)
    eye_pose: np.ndarray  # (B, 6)
    camera: np.ndarray  # (B, 3): scale (crop pixels per metre), tx, ty (crop pixels)
    vertices: np.ndarray  # (B, V, 3) posed mesh as the camera sees it, metres, FLAME axes
    frontal_vertices: np.ndarray  # (B, V, 3) the same mesh without the global rotation (facing +z)
    image_points: np.ndarray  # (B, V, 3) crop-pixel x, y and depth (−s·Z, larger = farther) of `vertices`
    landmarks_2d: np.ndarray  # (B, L, 2) fitted landmarks in crop pixels
    nme: np.ndarray  # (B,) mean landmark error / inter-ocular distance

    def params(self, index: int) -> dict[str, np.ndarray]:
        """FLAME parameters of one face, as saved in flame.npz."""
        names = ("shape", "expression", "global_pose", "jaw_pose", "neck_pose", "eye_pose", "camera")
        return {name: getattr(self, name)[index].astype(np.float32) for name in names}


def interocular_distance(landmarks: np.ndarray) -> np.ndarray:
    """(B, N≥474, ≥2) → (B,) distance between the iris centres 468 and 473, crop pixels."""
    return np.linalg.norm(landmarks[:, LEFT_IRIS, :2] - landmarks[:, RIGHT_IRIS, :2], axis=-1)


def robust_loss(residual_sq: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    """ρ of a squared residual; ≈ residual² near zero for every kind."""
    if kind == "l2":
        return residual_sq
    c2 = scale * scale
    if kind == "geman_mcclure":
        return residual_sq * c2 / (residual_sq + c2)
    norm = torch.sqrt(residual_sq + 1e-12)  # Huber
    return torch.where(norm <= scale, residual_sq, 2 * scale * norm - c2)


def robust_weights(residual_sq: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    """dρ/d(residual²): the reweighting of iteratively reweighted least squares, in (0, 1]."""
    if kind == "l2":
        return torch.ones_like(residual_sq)
    c2 = scale * scale
    if kind == "geman_mcclure":
        return (c2 / (residual_sq + c2)) ** 2
    return torch.clamp(scale / torch.sqrt(residual_sq + 1e-12), max=1.0)


POSE_PARAMS = 7  # global rotation (3), jaw rotation (3), log-scale (1)
RIGID_PARAMS = (0, 1, 2, 6)  # stage 1 moves the global rotation and the scale only
DAMPING_START, DAMPING_MIN, DAMPING_MAX = 1.0, 1e-4, 1e6
FD_STEP = 1e-3  # radians / log-scale, for the pose columns of the Jacobian


@dataclass
class _State:
    """What the fit optimises, batched, in IOD units around the landmark centroid."""

    coeffs: torch.Tensor  # (B, s+e) identity then expression
    pose: torch.Tensor  # (B, 7): global rotation, jaw rotation, log-scale
    translation: torch.Tensor  # (B, 2)
    damping: torch.Tensor  # (B,) Levenberg-Marquardt damping on the pose parameters


class FlameFitter:
    """`fit(landmarks (B, 478, 3)) -> FitResult`, for one model and one landmark embedding."""

    def __init__(self, assets: FlameAssets, embedding: LandmarkEmbedding, config: FitConfig | None = None) -> None:
        self.config = config or FitConfig()
        self.config.check_inputs()
        embedding.check_against(len(assets.faces))
        self.assets = assets
        self.embedding = embedding
        self.device = torch.device(self.config.device or "cpu")
        self.model = FlameModel(assets, device=self.device, dtype=self.config.dtype)
        cfg = self.config
        self.num_shape = assets.num_shape if cfg.num_shape is None else min(cfg.num_shape, assets.num_shape)
        self.num_expression = (assets.num_expression if cfg.num_expression is None
                               else min(cfg.num_expression, assets.num_expression))
        self.landmarks = self.model.landmark_rig(embedding, num_shape=self.num_shape, num_expression=self.num_expression)
        self._full_rig = None
        rigid = np.isin(embedding.landmark_indices, cfg.rigid_landmarks)
        self.rigid_mask = torch.as_tensor(rigid if rigid.sum() >= MIN_RIGID_LANDMARKS else np.ones_like(rigid),
                                          device=self.device)
        num_landmarks = len(embedding)
        # Priors in the solver's units: the objective times L (sums over landmarks instead of means).
        self.coeff_prior = self._tensor(num_landmarks * np.concatenate(
            [np.full(self.num_shape, cfg.shape_prior), np.full(self.num_expression, cfg.expression_prior)]))
        self.pose_prior = self._tensor(num_landmarks * np.array([0, 0, 0] + [cfg.jaw_prior] * 3 + [0.0]))
        self.flip = self._tensor(np.array([1.0, -1.0]))

    def check_inputs(self, landmarks: np.ndarray) -> None:
        if not isinstance(landmarks, np.ndarray) or landmarks.ndim != 3 or landmarks.shape[2] not in (2, 3):
            raise ValueError(f"landmarks must be a (B, N, 2|3) array, got {getattr(landmarks, 'shape', type(landmarks))}.")
        if landmarks.shape[0] == 0:
            raise ValueError("landmarks hold no faces.")
        needed = max(int(self.embedding.landmark_indices.max()), RIGHT_IRIS) + 1
        if landmarks.shape[1] < needed:
            raise ValueError(f"landmarks must have at least {needed} points per face (MediaPipe's 478), "
                             f"got {landmarks.shape[1]}.")
        used = landmarks[:, np.r_[self.embedding.landmark_indices, LEFT_IRIS, RIGHT_IRIS]]
        if not np.isfinite(used).all():
            raise ValueError("landmarks contain NaN or infinite values at embedded or iris points.")
        if (interocular_distance(landmarks) < 1.0).any():
            raise ValueError("the iris centres (468, 473) of a face are less than a pixel apart.")

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.config.dtype, device=self.device)

    # ---- the fit ------------------------------------------------------------------------------------

    def fit(self, landmarks: np.ndarray) -> FitResult:
        """Fit every face in `landmarks` (B, 478, 3): x, y crop pixels, z MediaPipe relative depth."""
        self.check_inputs(landmarks)
        cfg = self.config
        iod = interocular_distance(landmarks).astype(np.float64)
        observed = landmarks[:, self.embedding.landmark_indices].astype(np.float64)  # (B, L, 2|3)
        centre = observed[:, :, :2].mean(axis=1)  # (B, 2)
        target = self._tensor((observed[:, :, :2] - centre[:, None]) / iod[:, None, None])
        depth = None
        if cfg.depth_weight > 0 and observed.shape[2] == 3:
            z = observed[:, :, 2] / iod[:, None]
            depth = self._tensor(z - z.mean(axis=1, keepdims=True))
        with torch.no_grad():
            state = self._initial_state(target)
            for step in range(cfg.rigid_iterations):
                self._step(state, target, None, rigid=True, robust=step >= L2_STEPS)
            state.damping.fill_(DAMPING_START)
            for step in range(cfg.iterations):
                self._step(state, target, depth, rigid=False, robust=step >= L2_STEPS)
            return self._result(state, target, iod, centre)

    def _full_pose(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 7) fit parameters → (B, J, 3) FLAME pose (neck and eyes at rest)."""
        zero = torch.zeros_like(pose[:, :3])
        joints = [pose[:, 0:3], zero, pose[:, 3:6]] + [zero] * (self.model.num_joints - 3)
        return torch.stack(joints, dim=1)

    def _initial_state(self, target: torch.Tensor) -> _State:
        """Closed-form rigid start: the mean face's rigid landmarks posed onto the observations."""
        batch, dtype, device = target.shape[0], self.config.dtype, self.device
        coeffs = torch.zeros(batch, self.num_shape + self.num_expression, dtype=dtype, device=device)
        rest = torch.zeros(1, self.model.num_joints, 3, dtype=dtype, device=device)
        neutral = self.landmarks(coeffs[:1, : self.num_shape], coeffs[:1, self.num_shape:], rest)[0][0]
        rotation, scale = rotation_and_scale_from_points(neutral[self.rigid_mask], target[:, self.rigid_mask])
        pose = torch.cat([matrix_to_axis_angle(rotation), torch.zeros(batch, 3, dtype=dtype, device=device),
                          torch.log(scale)[:, None]], dim=1)
        damping = torch.full((batch,), DAMPING_START, dtype=dtype, device=device)
        return _State(coeffs, pose, torch.zeros(batch, 2, dtype=dtype, device=device), damping)

    def _predict(self, shaped, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected landmarks without translation (B, L, 2) and their depth −s·Z (B, L)."""
        points, _ = self.landmarks.posed(*shaped, self._full_pose(pose))
        scale = torch.exp(pose[:, 6:7])
        return scale[:, :, None] * points[..., :2] * self.flip, -scale * points[..., 2]

    def _pose_jacobian(self, shaped, pose: torch.Tensor, active: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Central differences of the projections by each active pose parameter, all in one batched call."""
        batch, count = pose.shape[0], len(active)
        steps = torch.zeros(2 * count, POSE_PARAMS, dtype=pose.dtype, device=pose.device)
        steps[torch.arange(count), active] = FD_STEP
        steps[torch.arange(count) + count, active] = -FD_STEP
        poses = (pose[None] + steps[:, None]).reshape(-1, POSE_PARAMS)  # (2P·B, 7)
        repeat = lambda t: t[None].expand(2 * count, *t.shape).reshape(-1, *t.shape[1:])  # noqa: E731
        projected, depth = self._predict((repeat(shaped[0]), repeat(shaped[1])), poses)
        projected = projected.view(2, count, batch, *projected.shape[1:])
        depth = depth.view(2, count, batch, -1)
        d_projected = (projected[0] - projected[1]).permute(1, 2, 3, 0) / (2 * FD_STEP)
        d_depth = (depth[0] - depth[1]).permute(1, 2, 0) / (2 * FD_STEP)
        return d_projected, d_depth

    def _objective(self, coeffs, pose, target, depth, mask, share) -> tuple[torch.Tensor, torch.Tensor]:
        """The robust objective per face (times L) and its translation (the `share`-weighted mean offset)."""
        cfg = self.config
        shaped = self.landmarks.shaped(coeffs[:, : self.num_shape], coeffs[:, self.num_shape:])
        projected, predicted_depth = self._predict(shaped, pose)
        offset = target[:, mask] - projected[:, mask]
        translation = (offset * share).sum(dim=1)
        residual_sq = ((offset - translation[:, None]) ** 2).sum(-1)
        total = robust_loss(residual_sq, cfg.robust, cfg.robust_scale).sum(1)
        if depth is not None:
            centred = predicted_depth - predicted_depth.mean(dim=1, keepdim=True)
            total = total + cfg.depth_weight * robust_loss((centred - depth) ** 2, cfg.robust, cfg.robust_scale).sum(1)
        total = total + (self.coeff_prior * coeffs**2).sum(1) + (self.pose_prior * pose**2).sum(1)
        return total, translation

    def _step(self, state: _State, target: torch.Tensor, depth: torch.Tensor | None, *, rigid: bool, robust: bool) -> None:
        """One Levenberg-Marquardt step, reweighted for the robust loss (IRLS), for every face at once.

        Rigid steps move the global rotation and the scale on the rigid landmarks; full steps move the
        coefficients, both rotations and the scale on all landmarks (+ the depth rows). A face whose
        objective does not drop keeps its values and raises its damping; one that improves lowers it.
        """
        cfg = self.config
        mask = self.rigid_mask if rigid else torch.ones_like(self.rigid_mask)
        active = list(RIGID_PARAMS) if rigid else list(range(POSE_PARAMS))
        depth = None if rigid else depth
        coeffs, pose = state.coeffs, state.pose
        shaped = self.landmarks.shaped(coeffs[:, : self.num_shape], coeffs[:, self.num_shape:])
        projected, predicted_depth = self._predict(shaped, pose)
        error = projected[:, mask] - target[:, mask]  # (B, L', 2), translation not applied
        weights = torch.ones_like(error[..., 0])
        if robust:
            weights = robust_weights(((error + state.translation[:, None]) ** 2).sum(-1), cfg.robust, cfg.robust_scale)
        share = (weights / weights.sum(dim=1, keepdim=True))[:, :, None]

        design, residual, row_weights = self._linear_system(
            shaped, pose, active, rigid, mask, error, weights, share, predicted_depth, depth, robust)
        current = pose[:, active] if rigid else torch.cat([coeffs, pose[:, active]], dim=1)
        strength, mean = self._ridge_prior(coeffs, pose, active, state.damping, rigid)
        # Linearised residual r + A·(x − x0); with x = m + d, solve the ridge for d.
        linear_target = torch.bmm(design, (current - mean)[..., None])[..., 0] - residual
        proposal = mean + weighted_ridge(design, linear_target, row_weights, strength)

        new_coeffs = coeffs if rigid else proposal[:, : coeffs.shape[1]]
        new_pose = pose.clone()
        new_pose[:, active] = proposal[:, -len(active):]
        old_total, old_translation = self._objective(coeffs, pose, target, depth, mask, share)
        new_total, new_translation = self._objective(new_coeffs, new_pose, target, depth, mask, share)
        better = new_total <= old_total
        state.coeffs = torch.where(better[:, None], new_coeffs, coeffs)
        state.pose = torch.where(better[:, None], new_pose, pose)
        state.translation = torch.where(better[:, None], new_translation, old_translation)
        state.damping = torch.where(better, state.damping * 0.3, state.damping * 10).clamp(DAMPING_MIN, DAMPING_MAX)

    def _linear_system(self, shaped, pose, active, rigid, mask, error, weights, share, predicted_depth, depth, robust):
        """Rows of the linearised problem: design (B, R, K'), residual (B, R), row weights (B, R).

        Coefficient columns are exact (landmarks are affine in them, `LandmarkRig.coeff_basis`); pose
        columns are central differences. The free translation is eliminated by centring the 2D rows on
        their weighted mean; the depth rows are centred like the depths they compare.
        """
        cfg = self.config
        rows_2d, rows_depth = self._pose_jacobian(shaped, pose, active)  # (B, L, 2, P), (B, L, P)
        if not rigid:
            basis = self.landmarks.coeff_basis(self._full_pose(pose))  # (B, L, 3, K)
            scale = torch.exp(pose[:, 6])[:, None, None, None]
            rows_2d = torch.cat([scale * basis[:, :, :2] * self.flip[:, None], rows_2d], dim=-1)
            rows_depth = torch.cat([-scale[..., 0] * basis[:, :, 2], rows_depth], dim=-1)
        rows_2d = rows_2d[:, mask]
        design = [(rows_2d - (rows_2d * share[..., None]).sum(1, keepdim=True)).flatten(1, 2)]
        residual = [(error - (error * share).sum(1, keepdim=True)).flatten(1, 2)]
        row_weights = [weights.repeat_interleave(2, dim=1)]
        if depth is not None:
            depth_error = predicted_depth - predicted_depth.mean(dim=1, keepdim=True) - depth
            depth_weights = torch.ones_like(depth_error)
            if robust:
                depth_weights = robust_weights(depth_error**2, cfg.robust, cfg.robust_scale)
            design.append(rows_depth - rows_depth.mean(dim=1, keepdim=True))
            residual.append(depth_error)
            row_weights.append(cfg.depth_weight * depth_weights)
        return torch.cat(design, 1), torch.cat(residual, 1), torch.cat(row_weights, 1)

    def _ridge_prior(self, coeffs, pose, active, damping, rigid) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-unknown prior strength and mean: Gaussian priors (coefficients, jaw) plus the damping that
        keeps the pose near its current value. a·x² + μ·(x − x0)² = (a + μ)·(x − μ·x0 / (a + μ))² + const."""
        mu = damping[:, None]
        strength_pose = self.pose_prior[active][None] + mu
        mean_pose = mu * pose[:, active] / strength_pose
        if rigid:
            return strength_pose, mean_pose
        strength = torch.cat([self.coeff_prior.expand(len(pose), -1), strength_pose], dim=1)
        return strength, torch.cat([torch.zeros_like(coeffs), mean_pose], dim=1)

    # ---- results ------------------------------------------------------------------------------------

    def _result(self, state: _State, target: torch.Tensor, iod: np.ndarray, centre: np.ndarray) -> FitResult:
        shape, expression = state.coeffs[:, : self.num_shape], state.coeffs[:, self.num_shape:]
        pose = self._full_pose(state.pose)
        projected = self._predict(self.landmarks.shaped(shape, expression), state.pose)[0] + state.translation[:, None]
        nme = torch.linalg.vector_norm(projected - target, dim=-1).mean(dim=1)
        # Skin once without the global rotation; the root rotates everything about the root joint.
        frontal, joints = self._full()(shape, expression, pose.index_fill(1, torch.tensor([GLOBAL], device=self.device), 0.0))
        root = joints[:, GLOBAL:GLOBAL + 1]
        rotation = batch_rodrigues(state.pose[:, 0:3])
        vertices = ((frontal - root) @ rotation.transpose(1, 2) + root).cpu().double().numpy()
        numpy = lambda t: t.detach().cpu().double().numpy()  # noqa: E731
        scale = np.exp(numpy(state.pose[:, 6])) * iod  # crop pixels per metre
        camera = np.concatenate([scale[:, None], numpy(state.translation) * iod[:, None] + centre], axis=1)
        batch = len(iod)
        return FitResult(
            shape=self._pad(numpy(shape), self.assets.num_shape),
            expression=self._pad(numpy(expression), self.assets.num_expression),
            global_pose=numpy(state.pose[:, 0:3]),
            jaw_pose=numpy(state.pose[:, 3:6]),
            neck_pose=np.zeros((batch, 3)),
            eye_pose=np.zeros((batch, 3 * max(self.model.num_joints - 3, 0))),
            camera=camera,
            vertices=vertices.astype(np.float32),
            frontal_vertices=numpy(frontal).astype(np.float32),
            image_points=project_points(vertices, camera).astype(np.float32),
            landmarks_2d=(numpy(projected) * iod[:, None, None] + centre[:, None]).astype(np.float32),
            nme=numpy(nme),
        )

    def _full(self):
        if self._full_rig is None:
            self._full_rig = self.model.rig(num_shape=self.num_shape, num_expression=self.num_expression)
        return self._full_rig

    @staticmethod
    def _pad(values: np.ndarray, size: int) -> np.ndarray:
        out = np.zeros((values.shape[0], size))
        out[:, : values.shape[1]] = values
        return out
