"""`FaceAligner`: photo → `AlignedFace` with MediaPipe 0.10.21's legacy solutions.

Steps: detect faces (full-range BlazeFace; the largest is kept, the count recorded) → 478 face-mesh
landmarks around it (`actors.align.mesh`) → similarity onto the template (`actors.align.anchors`;
by default the iris centres 468/473 are pinned to the template's eyes) → warp the photo to the crop
(`actors.align.warp`; a small face's region is super-resolved first, `actors.align.upscale`) →
landmark skin mask → selfie segmentation of the crop, with the ears it half-saw given back
(`actors.align.ears`) → ITA/MST → head pose from the source-photo landmarks (`actors.align.pose`).

The aligner owns three MediaPipe graphs. They are built on first use (or on `__enter__`) and
released by `close()` / `__exit__`; one aligner is not thread-safe (give each worker its own).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from actors.align.anchors import METHODS, anchor_points, source_to_crop, template_points
from actors.align.detection import Detection, detect_faces
from actors.align.ears import recover_ears
from dataset.face import AlignedFace
from actors.align.mesh import fit_landmarks
from actors.align.pose import head_pose
from actors.align.skin_mask import skin_mask_from_landmarks
from actors.align.template import CROP_SIZE
from actors.align.upscale import FaceUpscaler, UpscaleOptions, eye_distance
from actors.align.warp import BORDERS, transform_points, warp_similarity
from actors.metrics.skin_tone import ita_from_lab, mst_from_lab, skin_pixels_lab
from dataset.reasons import InputRejected, Reason

MIN_IMAGE_SIDE = 16


@dataclass(frozen=True)
class AlignerOptions:
    """Settings of `FaceAligner`. Validated by `check_inputs()` (the constructor calls it)."""

    min_detection_confidence: float = 0.5  # BlazeFace score a face needs to count
    min_face_size: int = 48  # px: faces whose detection box is shorter than this are rejected
    max_faces: int = 2  # faces the mesh may fit on the canvas around the chosen face (the centred one is kept)
    min_mesh_confidence: float = 0.5  # the face mesh's own detector threshold on that canvas
    crop_size: int = CROP_SIZE  # the template is scaled to this side
    alignment: str = "eyes"  # "eyes" or "least_squares": see actors.align.anchors
    border: str = "reflect"  # crop pixels from outside the photo: "reflect", "replicate" or "constant"
    try_rotations: bool = True  # when no face is upright, also look at the photo turned ±90°
    mesh_canvas_size: int = 384  # side of the canvas the mesh runs on
    mesh_face_size: float = 160.0  # px the detection box is scaled to on that canvas
    segmentation_model: int = 0  # selfie segmentation: 0 general (256×256), 1 landscape (144×256)
    skin_trim: float = 0.1  # fraction of the darkest and the brightest skin pixels dropped before ITA/MST
    skin_sample_step: int = 2  # ITA/MST from every n-th skin pixel in x and y (the median barely moves; 4× faster at 2)

    def check_inputs(self) -> None:
        """Raise one precise ValueError per broken rule."""
        if not 0.0 < self.min_detection_confidence < 1.0:
            raise ValueError(f"`min_detection_confidence` must be in (0, 1), got {self.min_detection_confidence}.")
        if not 0.0 < self.min_mesh_confidence < 1.0:
            raise ValueError(f"`min_mesh_confidence` must be in (0, 1), got {self.min_mesh_confidence}.")
        if int(self.min_face_size) != self.min_face_size or self.min_face_size < 1:
            raise ValueError(f"`min_face_size` must be a positive integer (pixels), got {self.min_face_size}.")
        if int(self.max_faces) != self.max_faces or self.max_faces < 1:
            raise ValueError(f"`max_faces` must be a positive integer, got {self.max_faces}.")
        if int(self.crop_size) != self.crop_size or self.crop_size < 64:
            raise ValueError(f"`crop_size` must be an integer >= 64, got {self.crop_size}.")
        if self.alignment not in METHODS:
            raise ValueError(f"`alignment` must be one of {METHODS}, got {self.alignment!r}.")
        if self.border not in BORDERS:
            raise ValueError(f"`border` must be one of {tuple(BORDERS)}, got {self.border!r}.")
        if self.mesh_canvas_size < 128:
            raise ValueError(f"`mesh_canvas_size` must be >= 128, got {self.mesh_canvas_size}.")
        if not 32 <= self.mesh_face_size <= self.mesh_canvas_size / 1.5:
            raise ValueError(
                f"`mesh_face_size` must be in [32, mesh_canvas_size / 1.5 = {self.mesh_canvas_size / 1.5:g}], "
                f"got {self.mesh_face_size}."
            )
        if self.segmentation_model not in (0, 1):
            raise ValueError(f"`segmentation_model` must be 0 or 1, got {self.segmentation_model}.")
        if not 0.0 <= self.skin_trim < 0.5:
            raise ValueError(f"`skin_trim` must be in [0, 0.5), got {self.skin_trim}.")
        if int(self.skin_sample_step) != self.skin_sample_step or not 1 <= self.skin_sample_step <= 8:
            raise ValueError(f"`skin_sample_step` must be an integer in [1, 8], got {self.skin_sample_step}.")


def check_image(rgb: np.ndarray) -> None:
    """Raise a precise ValueError unless `rgb` is an (H, W, 3) uint8 array of a usable size."""
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"Expected a numpy array, got {type(rgb).__name__}.")
    if rgb.dtype != np.uint8:
        raise ValueError(f"Expected uint8 RGB, got dtype {rgb.dtype}.")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) RGB image, got shape {rgb.shape}.")
    if min(rgb.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(f"Image sides must be at least {MIN_IMAGE_SIDE} px, got {rgb.shape[1]}×{rgb.shape[0]}.")


class FaceAligner:
    """Aligns the largest face of a photo to the template. Use as a context manager, or call `close()`.

    `upscale` decides when a small face is super-resolved before the warp (`actors.align.upscale`).
    """

    def __init__(self, options: AlignerOptions | None = None, upscale: UpscaleOptions | None = None) -> None:
        self.options = options or AlignerOptions()
        self.options.check_inputs()
        self.upscaler = FaceUpscaler(upscale)  # validates now, loads its network on first use
        self._detector = None
        self._mesh = None
        self._segmenter = None

    # Lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> FaceAligner:
        self._ensure_models()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graphs and the upscaler's network (the next call builds them again)."""
        self.upscaler.close()
        for name in ("_detector", "_mesh", "_segmenter"):
            graph = getattr(self, name)
            if graph is not None:
                graph.close()
                setattr(self, name, None)

    def _ensure_models(self) -> None:
        if self._detector is not None:
            return
        from mediapipe.python.solutions import face_detection, face_mesh, selfie_segmentation

        opts = self.options
        self._detector = face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=opts.min_detection_confidence
        )
        self._mesh = face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=opts.max_faces,
            refine_landmarks=True,
            min_detection_confidence=opts.min_mesh_confidence,
        )
        self._segmenter = selfie_segmentation.SelfieSegmentation(model_selection=opts.segmentation_model)

    # Public API --------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in the photo, largest first (source pixels)."""
        check_image(rgb)
        self._ensure_models()
        return detect_faces(self._detector, np.ascontiguousarray(rgb), self.options.try_rotations)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) float32 landmarks of the largest face in `rgb`'s pixels (z: MediaPipe depth,
        smaller = closer, same pixel scale), or None when no face is found. No size limit applies."""
        check_image(rgb)
        rgb = np.ascontiguousarray(rgb)
        faces = self.detect(rgb)
        if not faces:
            return None
        points = self._fit(rgb, faces[0])
        return None if points is None else points.astype(np.float32)

    def align(self, rgb: np.ndarray) -> AlignedFace:
        """Align the largest face. Raises `InputRejected` (NO_FACE, FACE_TOO_SMALL, LANDMARKS_FAILED)."""
        check_image(rgb)
        rgb = np.ascontiguousarray(rgb)
        faces = self.detect(rgb)
        if not faces:
            raise InputRejected(Reason.NO_FACE, f"no face found in the {rgb.shape[1]}×{rgb.shape[0]} photo")
        face = faces[0]
        if face.size < self.options.min_face_size:
            raise InputRejected(
                Reason.FACE_TOO_SMALL,
                f"largest face is {face.size:.0f} px, the minimum is {self.options.min_face_size} px",
            )
        source_landmarks = self._fit(rgb, face)
        if source_landmarks is None:
            raise InputRejected(Reason.LANDMARKS_FAILED, f"face mesh found no face in the detected box {tuple(round(v) for v in face.box)}")

        size = int(self.options.crop_size)
        matrix = source_to_crop(source_landmarks, size, self.options.alignment)
        eye_px = eye_distance(matrix, size)
        upscale_ms = 0.0
        upscaled = None
        if self.upscaler.wants(eye_px):
            start = time.perf_counter()
            upscaled = self.upscaler.upscale_for_crop(rgb, matrix, size)
            upscale_ms = (time.perf_counter() - start) * 1000.0
        if upscaled is None:
            crop = warp_similarity(rgb, matrix, size, self.options.border)
        else:  # same transform, finer pixels: the landmarks and `source_to_crop` below are unchanged
            crop = warp_similarity(upscaled.image, upscaled.source_to_crop, size, self.options.border)
        landmarks = transform_points(source_landmarks, matrix)
        skin_mask = skin_mask_from_landmarks(landmarks, crop.shape)
        ita, mst = self._skin_tone(crop, skin_mask)
        offsets = anchor_points(landmarks) - template_points(size)
        return AlignedFace(
            crop=crop,
            mask=recover_ears(crop, self._segment(crop), landmarks, skin_mask),
            landmarks=landmarks.astype(np.float32),
            skin_mask=skin_mask,
            source_to_crop=matrix,
            bbox=tuple(float(v) for v in face.box),
            pose=head_pose(source_landmarks),
            num_faces=len(faces),
            ita=ita,
            mst=mst,
            extras={
                "detection_score": face.score,
                # crop px from each template point to where the face's point landed (x, y):
                # image-left eye, image-right eye, mouth centre.
                "anchor_offsets_px": offsets.astype(np.float32),
                # face size the upscaler judged by: eye distance in source px that the alignment scales by
                "eye_distance_px": float(eye_px),
                "upscale_factor": 1 if upscaled is None else upscaled.factor,  # 1: the crop was warped from the photo
                "ms_upscale": float(upscale_ms),
            },
        )

    # Steps -------------------------------------------------------------------------------------
    def _fit(self, rgb: np.ndarray, face: Detection) -> np.ndarray | None:
        opts = self.options
        return fit_landmarks(self._mesh, rgb, face, opts.mesh_canvas_size, opts.mesh_face_size)

    def _segment(self, crop: np.ndarray) -> np.ndarray:
        probability = self._segmenter.process(crop).segmentation_mask
        return np.clip(np.round(probability * 255.0), 0, 255).astype(np.uint8)

    def _skin_tone(self, crop: np.ndarray, skin_mask: np.ndarray) -> tuple[float, int]:
        step = int(self.options.skin_sample_step)
        if not skin_mask[::step, ::step].any():
            raise InputRejected(Reason.LANDMARKS_FAILED, "the landmark skin mask is empty")
        lab = skin_pixels_lab(crop[::step, ::step], skin_mask[::step, ::step], trim=self.options.skin_trim)
        return float(np.median(ita_from_lab(lab))), mst_from_lab(np.median(lab, axis=0))
