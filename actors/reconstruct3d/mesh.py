"""`HeadMesh`: what every 3D head engine returns and every later 3D step (bake, export, render) takes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HeadMesh:
    """A head mesh fitted to one aligned face.

    Space: metres, +x to the subject's left (image right), +y up, +z toward the camera, origin
    near the centre of the head. UVs may be per corner (`uvs` indexed by `uv_faces`, as OBJ's vt/ft)
    or absent (the baker then generates a layout).
    """

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    image_points: np.ndarray  # (V, 3) float32: crop-pixel x, y of each vertex under the fitted camera, and depth (larger = farther)
    landmark_nme: float  # landmark reprojection error / inter-ocular distance, in the crop
    engine: str  # "canonical" or "flame"
    uvs: np.ndarray | None = None  # (T, 2) float32 in [0, 1], v up
    uv_faces: np.ndarray | None = None  # (F, 3) int32 into `uvs`
    params: dict[str, np.ndarray] = field(default_factory=dict)  # engine parameters, saved as flame.npz for FLAME

    def check_inputs(self) -> None:
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be (V, 3), got {self.vertices.shape}.")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"faces must be (F, 3), got {self.faces.shape}.")
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces index vertices that do not exist.")
        if self.image_points.shape != (len(self.vertices), 3):
            raise ValueError(f"image_points must be (V, 3) = ({len(self.vertices)}, 3), got {self.image_points.shape}.")
        if (self.uvs is None) != (self.uv_faces is None):
            raise ValueError("uvs and uv_faces come together: give both or neither.")
        if self.uv_faces is not None and self.uv_faces.shape != self.faces.shape:
            raise ValueError(f"uv_faces must match faces {self.faces.shape}, got {self.uv_faces.shape}.")
