"""FLAME's MediaPipe landmark embedding: where each used MediaPipe landmark lies on the FLAME mesh.

The file distributed with FLAME, `mediapipe_landmark_embedding.npz`, holds (key names as in the
published file and the code that reads it):

- `lmk_face_idx` (L,): the FLAME triangle each landmark lies on (L = 105 in the published file);
- `lmk_b_coords` (L, 3): barycentric coordinates inside that triangle;
- `landmark_indices` (L,): which of MediaPipe's 478 face-mesh landmarks each row corresponds to.

A landmark's 3D position is `sum_k lmk_b_coords[l, k] * vertices[faces[lmk_face_idx[l], k]]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actors.reconstruct3d.flame.assets import read_npz_arrays
from actors.reconstruct3d.flame.safe_pickle import FlameFileError

EMBEDDING_KEYS = ("lmk_face_idx", "lmk_b_coords", "landmark_indices")
NUM_MEDIAPIPE_LANDMARKS = 478
BARYCENTRIC_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LandmarkEmbedding:
    face_idx: np.ndarray  # (L,) int64 triangle per landmark
    barycentric: np.ndarray  # (L, 3) float32
    landmark_indices: np.ndarray  # (L,) int64 into MediaPipe's 478 landmarks

    def __len__(self) -> int:
        return len(self.face_idx)

    def check_against(self, num_faces: int) -> None:
        """Raise when the embedding indexes triangles the model does not have."""
        if self.face_idx.max() >= num_faces:
            raise FlameFileError(
                f"the landmark embedding indexes triangle {int(self.face_idx.max())}, the model has {num_faces}; "
                "embedding and model do not belong together."
            )


def load_landmark_embedding(path: str | Path) -> LandmarkEmbedding:
    """Read `mediapipe_landmark_embedding.npz` (no pickles) and check its shapes and ranges."""
    arrays = read_npz_arrays(path, EMBEDDING_KEYS, "FLAME MediaPipe landmark embedding")
    face_idx, bary, indices = (arrays[key] for key in EMBEDDING_KEYS)
    if face_idx.ndim != 1 or face_idx.dtype.kind not in "iu" or len(face_idx) == 0:
        raise FlameFileError(f"{path}: lmk_face_idx must be (L,) integers, got {face_idx.shape} {face_idx.dtype}.")
    num_landmarks = len(face_idx)
    if bary.shape != (num_landmarks, 3) or bary.dtype.kind != "f":
        raise FlameFileError(f"{path}: lmk_b_coords must be ({num_landmarks}, 3) floats, got {bary.shape} {bary.dtype}.")
    if indices.shape != (num_landmarks,) or indices.dtype.kind not in "iu":
        raise FlameFileError(f"{path}: landmark_indices must be ({num_landmarks},) integers, got {indices.shape}.")
    if face_idx.min() < 0:
        raise FlameFileError(f"{path}: lmk_face_idx holds negative triangle indices.")
    if not np.isfinite(bary).all() or (bary < -BARYCENTRIC_TOLERANCE).any():
        raise FlameFileError(f"{path}: lmk_b_coords must be finite and non-negative.")
    if np.abs(bary.sum(axis=1) - 1.0).max() > BARYCENTRIC_TOLERANCE:
        raise FlameFileError(f"{path}: each row of lmk_b_coords must sum to 1.")
    if indices.min() < 0 or indices.max() >= NUM_MEDIAPIPE_LANDMARKS:
        raise FlameFileError(f"{path}: landmark_indices must lie in 0..{NUM_MEDIAPIPE_LANDMARKS - 1}.")
    if len(np.unique(indices)) != num_landmarks:
        raise FlameFileError(f"{path}: landmark_indices repeats a MediaPipe landmark.")
    return LandmarkEmbedding(
        face_idx=face_idx.astype(np.int64),
        barycentric=bary.astype(np.float32),
        landmark_indices=indices.astype(np.int64),
    )
