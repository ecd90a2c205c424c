"""Fit MakeHuman's head to photos' 3D landmarks: similarity pose + shape-target weights, batched over faces.

Frame. A photo's landmarks (crop pixels x right, y down, MediaPipe depth z: larger = farther, same
pixel scale) become P = (x, −y, −z): x right, y up, z toward the camera — HeadMesh's axes. The camera
is a scaled orthographic one: P ≈ s·R·X + t, with X a model point in metres.

Model. Landmark l of a face with shape weights w and expression weights e is
X_l(w, e) = m_l + Σ_k e_k·E_kl + Σ_k w_k·A_kl, where A_kl is target k's "incr" offset for w_k ≥ 0
and minus its "decr" offset for w_k < 0 (`targets`): linear in (w, e) for a fixed side of each
weight. e starts at the photo's ARKit scores (MediaPipe's blendshape model); with
`expression_spread` set, the fit may move them within a Gaussian prior around those scores (clipped
to [0, 1]), so a smile that MakeHuman's targets draw smaller or larger than MediaPipe scores it is
not mistaken for the person's shape. Applying the expression during the fit makes the *posed* head
match the landmarks while w stays the neutral identity.

Solve, per batch, vectorised over faces (numpy; float32 Gram products, float64 solves),
`iterations` rounds of:
1. pose: weighted Umeyama similarity of the current model landmarks onto P (s, R, t per face);
2. shape: the observations brought into the model frame, Q = Rᵀ(P − t)/s, and [w, δe, δpose] from
   one regularised least-squares problem: Σ_l ρ_l·|M^½·(A_l·w + E_l·δe + S_l·δpose − r_l)|²
   + λ·|w|² + λ_e·|e + δe − scores|², where r_l = Q_l − X_l(0, e), M = Rᵀ·diag(1, 1, β)·R trusts
   MediaPipe's learned depth β times less than x and y, λ = (landmark noise / prior spread)², and
   S_l spans a small similarity motion (translation, rotation, scale; unregularised, then dropped)
   so weights that mimic a pose change (a bigger head ≈ a closer camera) are decided by the prior,
   not by the order of the alternation. Each pair's side is the sign of its weight in the round
   before (the first round uses the pair's mean direction); a weight that lands on the other side
   is re-solved there once, and held at 0 if it flips back (`_solve_shape`);
3. robust weights: ρ_l = c_l / (1 + (e_l / (robust_scale·median e))²) — Cauchy IRLS on each
   landmark's 2D reprojection error e_l, times the correspondence's trust c_l (silhouette points
   count less), so an occluded or badly detected point cannot drag the fit.

Quality: `nme` = mean 2D distance between the posed model's 478 landmarks projected into the crop
and the photo's, over the inter-ocular distance (iris centres 468/473).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEFT_IRIS, RIGHT_IRIS = 468, 473  # image-left eye centre (subject's right), image-right eye centre
FLIP = np.array([1.0, -1.0, -1.0])  # crop (x, y down, depth) <-> model frame (x, y up, toward camera)


@dataclass(frozen=True)
class FitSettings:
    iterations: int = 3
    noise_m: float = 0.0015  # typical landmark error in metres (sets the prior's strength)
    prior_spread: float = 1.0  # prior standard deviation of a shape weight
    depth_weight: float = 0.3  # trust in MediaPipe's depth relative to x and y
    robust_scale: float = 2.5  # Cauchy scale, in medians of the reprojection error
    expression_spread: float | None = 0.15  # prior spread of the expression scores around the photo's; None: scores fixed

    def check_inputs(self) -> None:
        if self.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {self.iterations}.")
        if self.noise_m <= 0 or self.prior_spread <= 0:
            raise ValueError("noise_m and prior_spread must be > 0.")
        if not 0.0 <= self.depth_weight <= 1.0:
            raise ValueError(f"depth_weight must be in [0, 1], got {self.depth_weight}.")
        if self.robust_scale <= 0:
            raise ValueError(f"robust_scale must be > 0, got {self.robust_scale}.")
        if self.expression_spread is not None and self.expression_spread <= 0:
            raise ValueError(f"expression_spread must be > 0 (or None), got {self.expression_spread}.")


@dataclass(frozen=True)
class LandmarkBasis:
    """The model restricted to its 478 landmarks (what the fit needs), metres."""

    template: np.ndarray  # (L, 3)
    positive: np.ndarray  # (L·3, K): landmark offsets of each weight at +1
    negative: np.ndarray  # (L·3, K): landmark offsets at −1 (minus the "decr" offsets)
    expressions: np.ndarray  # (L·3, 52)
    trust: np.ndarray  # (L,) correspondence weights
    asymmetric: np.ndarray  # (K,) bool: pairs whose "decr" side is not the mirror image of their "incr" side
    expression_seen: np.ndarray  # (52,) bool: expression targets that move the landmarks

    @classmethod
    def from_model(cls, model) -> "LandmarkBasis":
        template = model.landmarks(model.template).astype(np.float64)
        positive = model.landmarks(model.shape.positive).astype(np.float64)  # (K, L, 3)
        negative = model.landmarks(model.shape.negative).astype(np.float64)
        expressions = model.landmarks(model.expressions).astype(np.float64)
        flat = lambda basis: basis.reshape(len(basis), -1).T.copy()  # noqa: E731
        positive, negative = flat(positive), flat(-negative)
        asymmetric = ~np.isclose(positive, negative, atol=1e-9).all(axis=0)
        seen = np.linalg.norm(expressions, axis=2).max(axis=1) > 1e-4  # moves a landmark by more than 0.1 mm
        return cls(template, positive, negative, flat(expressions), model.landmark_weights.astype(np.float64), asymmetric, seen)

    @property
    def num_weights(self) -> int:
        return self.positive.shape[1]



@dataclass
class FitResult:
    weights: np.ndarray  # (B, K) shape weights
    expressions: np.ndarray  # (B, 52) expression weights the posed head was fitted with (in [0, 1])
    scale: np.ndarray  # (B,) pixels per metre
    rotation: np.ndarray  # (B, 3, 3) model → camera
    translation: np.ndarray  # (B, 3) pixels, camera frame (x right, y up, z toward the camera)
    image_landmarks: np.ndarray  # (B, L, 3) the posed model's landmarks in the crop (x, y, depth larger = farther)
    nme: np.ndarray  # (B,) landmark NME over the inter-ocular distance

    def project(self, index: int, points: np.ndarray) -> np.ndarray:
        """(N, 3) model points of face `index` → crop pixels (x, y down, depth larger = farther)."""
        camera = self.scale[index] * points @ self.rotation[index].T + self.translation[index]
        return camera * FLIP


def to_model_frame(landmarks: np.ndarray) -> np.ndarray:
    """(..., L, 3) crop landmarks → (x right, y up, z toward the camera), pixels."""
    return np.asarray(landmarks, dtype=np.float64) * FLIP


def check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (478, 3):
        raise ValueError(f"landmarks must be (B, 478, 3) with the iris points, got {landmarks.shape}.")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or infinite values.")
    if (np.linalg.norm(landmarks[:, LEFT_IRIS, :2] - landmarks[:, RIGHT_IRIS, :2], axis=1) < 1.0).any():
        raise ValueError("the iris centres coincide: the landmarks do not describe a face.")
    return landmarks


def fit_landmarks(basis: LandmarkBasis, landmarks: np.ndarray, expressions: np.ndarray, settings: FitSettings = FitSettings()) -> FitResult:
    """Fit a batch: landmarks (B, 478, 3) crop pixels, expressions (B, 52) ARKit scores."""
    landmarks = check_landmarks(landmarks)
    expressions = np.asarray(expressions, dtype=np.float64)
    if expressions.shape != (len(landmarks), basis.expressions.shape[1]):
        raise ValueError(f"expressions must be ({len(landmarks)}, {basis.expressions.shape[1]}), got {expressions.shape}.")
    settings.check_inputs()
    batch, count = landmarks.shape[:2]
    observed = to_model_frame(landmarks)
    scores = expressions.copy()
    expression_columns = np.broadcast_to(basis.expressions, (batch, *basis.expressions.shape))
    if settings.expression_spread is None:
        expression_prior = None
    else:
        expression_prior = np.full(expressions.shape[1], (settings.noise_m / settings.expression_spread) ** 2)
        expression_prior[~basis.expression_seen] = 1e6  # scores the landmarks cannot see (tongueOut) stay as given
    robust = np.broadcast_to(basis.trust, (batch, count)).copy()
    prior = (settings.noise_m / settings.prior_spread) ** 2

    negative_side = None  # round 1: each pair's mean direction
    rest = basis.template[None] + (expressions @ basis.expressions.T).reshape(batch, count, 3)
    current = rest
    for iteration in range(settings.iterations):
        scale, rotation, translation = weighted_similarity(current, observed, robust)
        seen = np.einsum("bji,blj->bli", rotation, observed - translation[:, None]) / scale[:, None, None]
        residual = (seen - rest).reshape(batch, count * 3)  # observations in the model frame
        extra = [_similarity_columns(current)]
        extra_prior = [np.zeros(7)]
        pull = [np.zeros((batch, 7))]
        if expression_prior is not None:
            extra.insert(0, expression_columns)
            extra_prior.insert(0, expression_prior)
            pull.insert(0, scores - expressions)
        weights, negative_side, change = _solve_shape(
            basis, negative_side, np.concatenate(extra, axis=2), np.concatenate(extra_prior), np.concatenate(pull, axis=1),
            rotation[:, 2, :], settings.depth_weight, robust, residual, prior,
        )
        if expression_prior is not None:
            expressions = np.clip(expressions + change[:, : expressions.shape[1]], 0.0, 1.0)
            rest = basis.template[None] + (expressions @ basis.expressions.T).reshape(batch, count, 3)
        current = rest + np.einsum("bnk,bk->bn", _side_columns(basis, negative_side), weights).reshape(batch, count, 3)
        error = _reprojection_error(current, observed, *weighted_similarity(current, observed, robust))
        spread = settings.robust_scale * np.median(error, axis=1, keepdims=True) + 1e-9
        robust = basis.trust / (1.0 + (error / spread) ** 2)
    scale, rotation, translation = weighted_similarity(current, observed, robust)

    camera = scale[:, None, None] * np.einsum("bij,blj->bli", rotation, current) + translation[:, None]
    image = camera * FLIP
    inter_ocular = np.linalg.norm(landmarks[:, LEFT_IRIS, :2] - landmarks[:, RIGHT_IRIS, :2], axis=1)
    nme = np.linalg.norm(image[..., :2] - landmarks[..., :2], axis=2).mean(axis=1) / inter_ocular
    return FitResult(weights, expressions, scale, rotation, translation, image, nme)


def _side_columns(basis: LandmarkBasis, negative_side: np.ndarray | None) -> np.ndarray:
    """(B, L·3, K): each weight's "incr" offsets, or its "decr" side where `negative_side`
    (None: the mean direction of each pair, for a first guess of the signs)."""
    if negative_side is None:
        return (0.5 * (basis.positive + basis.negative))[None]
    columns = np.repeat(basis.positive[None], len(negative_side), axis=0)
    rows, cols = np.nonzero(negative_side & basis.asymmetric[None])
    columns[rows, :, cols] = basis.negative[:, cols].T
    return columns


def _similarity_columns(points: np.ndarray) -> np.ndarray:
    """(B, L·3, 7): how the landmarks move under a small translation (3), rotation (3) and scale (1)."""
    batch, count, _ = points.shape
    columns = np.zeros((batch, count, 3, 7))
    columns[:, :, [0, 1, 2], [0, 1, 2]] = 1.0
    for axis in range(3):
        columns[:, :, :, 3 + axis] = np.cross(np.eye(3)[axis], points)
    columns[:, :, :, 6] = points - points.mean(axis=1, keepdims=True)
    return columns.reshape(batch, count * 3, 7)


def _solve_shape(basis, negative_side, extra, extra_prior, pull, depth_axis, depth_weight, robust, residual, prior):
    """Shape weights (B, K), the side each one is on (B, K) bool, and the solved extra unknowns
    (B, E), from the regularised normal equations. The extra columns are the expression targets
    (prior: back toward the photo's scores, `pull` = score − current) and a small similarity motion
    (unregularised, then dropped: the next pose step re-estimates the pose), so weights that mimic a
    change of pose (a larger head ≈ a closer camera) are settled by the prior rather than by the
    order of the alternation.

    Residuals along the camera's depth axis count `depth_weight` times (metric I − (1 − β)·n·nᵀ).
    With known sides, a weight that comes out on the other side of zero is re-solved on that side
    once; one that flips again is held at 0, so the weights always describe the geometry the fit
    measured (MakeHuman's piecewise-linear pairs).
    """
    first_round = negative_side is None
    batch, count = len(residual), basis.num_weights
    sides = np.zeros((batch, count), dtype=bool) if first_round else negative_side.copy()
    frozen = np.zeros((batch, count), dtype=bool)
    todo = np.arange(batch)
    weights = np.zeros((batch, count))
    others = np.zeros((batch, extra.shape[2]))
    for attempt in range(3):
        columns = _side_columns(basis, None if first_round else sides[todo])
        columns = np.broadcast_to(columns, (len(todo), *columns.shape[1:]))
        solved = _normal_solve(columns, extra[todo], extra_prior, pull[todo], depth_axis[todo], depth_weight, robust[todo], residual[todo], prior, frozen[todo])
        weights[todo], others[todo] = solved[:, :count], solved[:, count:]
        if first_round:
            return weights, weights < 0, others
        flipped = ((solved[:, :count] < 0) != sides[todo]) & basis.asymmetric[None] & ~frozen[todo]
        if not flipped.any():
            break
        if attempt == 0:
            sides[todo] ^= flipped
        else:
            frozen[todo] |= flipped
        todo = todo[flipped.any(axis=1)]
    weights[frozen] = 0.0
    consistent = (weights < 0) == sides
    weights[~consistent & basis.asymmetric[None]] = 0.0
    return weights, sides, others


def _normal_solve(columns, extra, extra_prior, pull, depth_axis, depth_weight, robust, residual, prior, frozen) -> np.ndarray:
    """(B, K + E) solution of the weighted, regularised least squares for [shape weights, extras].

    Rows are whitened by √ρ_l·M^½ with M^½ = I − (1 − √β)·n·nᵀ (n: the camera's depth axis in the
    model frame), so the normal matrix is one Gram product, computed in float32 (the prior keeps the
    system well conditioned; the solve itself is float64).
    """
    batch, rows, count = columns.shape
    full = np.concatenate([columns, extra], axis=2).reshape(batch, rows // 3, 3, -1)  # (B, L, 3, K + E)
    shrink = 1.0 - np.sqrt(depth_weight)
    along = np.einsum("bd,bldk->blk", depth_axis, full)
    whitened = full - shrink * depth_axis[:, None, :, None] * along[:, :, None, :]
    whitened *= np.sqrt(robust)[:, :, None, None]
    target = residual.reshape(batch, -1, 3)
    target = target - shrink * depth_axis[:, None, :] * np.einsum("bd,bld->bl", depth_axis, target)[:, :, None]
    target *= np.sqrt(robust)[:, :, None]
    whitened = whitened.reshape(batch, rows, -1).astype(np.float32)
    normal = np.matmul(whitened.transpose(0, 2, 1), whitened).astype(np.float64)
    right = np.matmul(whitened.transpose(0, 2, 1), target.reshape(batch, rows, 1).astype(np.float32))[..., 0].astype(np.float64)
    diagonal = np.arange(normal.shape[2])
    normal[:, diagonal, diagonal] += np.r_[np.full(count, prior), extra_prior]
    right[:, count:] += extra_prior * pull
    held = np.concatenate([frozen, np.zeros((batch, normal.shape[2] - count), dtype=bool)], axis=1)
    normal[held] = 0.0
    normal.transpose(0, 2, 1)[held] = 0.0
    right[held] = 0.0
    normal[:, diagonal, diagonal] += held
    return np.linalg.solve(normal, right[..., None])[..., 0]


def weighted_similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray):
    """Batched weighted Umeyama: scale (B,), rotation (B, 3, 3), translation (B, 3) with
    target ≈ scale·rotation·source + translation (no reflection)."""
    w = weights / weights.sum(axis=1, keepdims=True)
    mean_s, mean_t = np.einsum("bl,bld->bd", w, source), np.einsum("bl,bld->bd", w, target)
    a, b = source - mean_s[:, None], target - mean_t[:, None]
    covariance = np.einsum("bl,bli,blj->bij", w, b, a)
    u, sigma, vt = np.linalg.svd(covariance)
    sign = np.ones((len(source), 3))
    sign[:, 2] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    rotation = u @ (sign[:, :, None] * vt)
    variance = np.einsum("bl,bl->b", w, (a**2).sum(axis=2))
    scale = (sigma * sign).sum(axis=1) / variance
    translation = mean_t - scale[:, None] * np.einsum("bij,bj->bi", rotation, mean_s)
    return scale, rotation, translation


def _reprojection_error(points, observed, scale, rotation, translation) -> np.ndarray:
    camera = scale[:, None, None] * np.einsum("bij,blj->bli", rotation, points) + translation[:, None]
    return np.linalg.norm(camera[..., :2] - observed[..., :2], axis=2)
