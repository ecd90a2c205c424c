"""Where MediaPipe's 478 face landmarks sit on MakeHuman's head: one surface point per landmark.

Each landmark is a barycentric point of one triangle of the base mesh (corners given as hm08 vertex
ids, so the file does not depend on how the head is cut). The file ships inside this package
(`data/landmarks.npz`, a few KB), built from the shipped assets alone by `build_correspondence`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 478
FILE_NAME = "data/landmarks.npz"


@dataclass(frozen=True)
class LandmarkCorrespondence:
    corners: np.ndarray  # (478, 3) int32 hm08 base-mesh vertex ids of each landmark's triangle
    barycentric: np.ndarray  # (478, 3) float32, rows sum to 1
    weights: np.ndarray  # (478,) float32 trust in each landmark for the fit (silhouette points are lower)

    def check_inputs(self, num_base_vertices: int | None = None) -> None:
        if self.corners.shape != (NUM_LANDMARKS, 3) or self.barycentric.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"corners and barycentric must be ({NUM_LANDMARKS}, 3).")
        if self.weights.shape != (NUM_LANDMARKS,) or (self.weights < 0).any():
            raise ValueError(f"weights must be ({NUM_LANDMARKS},) and non-negative.")
        if not np.allclose(self.barycentric.sum(axis=1), 1.0, atol=1e-4) or (self.barycentric < -1e-6).any():
            raise ValueError("barycentric coordinates must be non-negative and sum to 1.")
        if self.corners.min() < 0 or (num_base_vertices is not None and self.corners.max() >= num_base_vertices):
            raise ValueError("corners index vertices outside the base mesh.")

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path, corners=self.corners.astype(np.int32), barycentric=self.barycentric.astype(np.float32),
            weights=self.weights.astype(np.float32),
        )

    def evaluate(self, vertices_by_base_id) -> np.ndarray:
        """(..., 478, 3) landmark positions from a function base-id array → (..., n, 3) positions."""
        corners = vertices_by_base_id(self.corners.ravel())
        corners = corners.reshape(*corners.shape[:-2], NUM_LANDMARKS, 3, 3)
        return (corners * self.barycentric[..., None]).sum(axis=-2)


def default_path() -> Path:
    return Path(__file__).parent / FILE_NAME


def load_correspondence(path: str | Path | None = None) -> LandmarkCorrespondence:
    """Read the correspondence (default: the one shipped in this package)."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: rebuild it with `python -m actors.reconstruct3d.makehuman.build_correspondence`."
        )
    with np.load(path, allow_pickle=False) as data:
        correspondence = LandmarkCorrespondence(
            corners=data["corners"].astype(np.int32), barycentric=data["barycentric"].astype(np.float32),
            weights=data["weights"].astype(np.float32),
        )
    correspondence.check_inputs()
    return correspondence
