"""`FlameHeadEngine`: FLAME fitted to aligned faces, returned as `HeadMesh`es.

The user supplies FLAME (it cannot ship): the model pickle (`generic_model.pkl` or `flame2023*.pkl`),
FLAME's `mediapipe_landmark_embedding.npz`, and optionally `FLAME_texture.npz` for FLAME's own UV
layout (without it the baker generates UVs). Nothing is read until the first `reconstruct` call.

HeadMesh convention (as the canonical engine): the mesh is frontal — shape, expression and jaw
fitted, the global rotation left to the camera — in FLAME's metres and axes (+x the subject's left,
+y up, +z toward the camera), shifted so the origin is the centre of its bounding box.
`image_points` are the fitted weak-perspective projection of the posed mesh (crop pixels, depth −s·Z,
larger = farther). `params` (saved as flame.npz): shape (300,), expression (100,), global_pose,
jaw_pose, neck_pose (3,), eye_pose (6,) axis-angle, camera (3,) = (pixels per metre, tx, ty) with
u = s·X + tx, v = −s·Y + ty on FLAME's posed vertices, and mesh_origin (3,), the FLAME-space point
that became the origin.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from actors.options import check_bounds, option
from actors.reconstruct3d.bake import PhotoProjectionBaking
from actors.reconstruct3d.mesh import HeadMesh
from actors.reconstruct3d.uv import UVLayoutCache, ensure_uvs
from dataset.face import AlignedFace

if TYPE_CHECKING:
    from actors.reconstruct3d.flame.fitter import FitConfig, FlameFitter

NUM_LANDMARKS = 478


@dataclass(frozen=True)
class FlameOptions:
    """FLAME fitted to the landmarks, with your licensed FLAME files."""

    FLAG_PREFIX: ClassVar[str] = "flame-"

    model: str | None = option(None, help="FLAME model .pkl (generic_model.pkl or flame2023*.pkl, your licensed copy)",
                               flag="flame", metavar="FILE")
    embedding: str | None = option(None, help="FLAME's mediapipe_landmark_embedding.npz", metavar="FILE")
    texture: str | None = option(None, help="FLAME_texture.npz for FLAME's UV layout (optional)", metavar="FILE")
    batch_size: int = option(64, help="faces per FLAME fit", minimum=1, maximum=4096)
    fit: "FitConfig | None" = None  # fitting schedule (internal)

    def check_inputs(self) -> None:
        """One precise error per problem: missing files, a bad batch size."""
        if not self.model:
            raise ValueError("the FLAME engine needs your FLAME model: pass --flame FILE and --flame-embedding FILE.")
        if not self.embedding:
            raise ValueError("a FLAME model needs its landmark embedding: pass --flame-embedding "
                             "(mediapipe_landmark_embedding.npz).")
        check_bounds(self)
        files = [("FLAME model", self.model), ("FLAME landmark embedding", self.embedding)]
        if self.texture:
            files.append(("FLAME texture layout", self.texture))
        for what, path in files:
            if not Path(path).exists():
                raise FileNotFoundError(f"{what} not found: {path}.")
            if not Path(path).is_file():
                raise ValueError(f"{what} path is not a file: {path}.")


class FlameHeadEngine(PhotoProjectionBaking):
    """Fits FLAME to batches of aligned faces (`batch_size` faces per fit) on `device` (default CPU)."""

    name = "flame"
    Options = FlameOptions
    AUTO_WHEN_CONFIGURED = True  # head_engine=auto picks FLAME when its files are configured

    def __init__(self, options: FlameOptions | None = None, *, device: str | None = None) -> None:
        self.options = options or FlameOptions()
        config = self.options.fit
        self.device = device or (config.device if config is not None and config.device else "cpu")
        self.batch_size = self.options.batch_size
        self._fitter: FlameFitter | None = None
        self._uv_cache = UVLayoutCache()

    @property
    def model_path(self) -> Path:
        return Path(self.options.model)

    @property
    def embedding_path(self) -> Path:
        return Path(self.options.embedding)

    @property
    def texture_path(self) -> Path | None:
        return Path(self.options.texture) if self.options.texture else None

    def check_inputs(self) -> None:
        self.options.check_inputs()

    def load(self) -> "FlameFitter":
        """Read the files (safely) and build the fitter; later calls reuse it."""
        if self._fitter is None:
            self.check_inputs()
            from actors.reconstruct3d.flame.assets import load_flame_model, load_flame_texture
            from actors.reconstruct3d.flame.embedding import load_landmark_embedding
            from actors.reconstruct3d.flame.fitter import FitConfig, FlameFitter

            assets = load_flame_model(self.model_path)
            embedding = load_landmark_embedding(self.embedding_path)
            embedding.check_against(len(assets.faces))
            if self.texture_path is not None:
                assets = assets.with_texture(*load_flame_texture(self.texture_path, num_faces=len(assets.faces)))
            config = replace(self.options.fit or FitConfig(), device=self.device)
            self._fitter = FlameFitter(assets, embedding, config)
        return self._fitter

    def reconstruct(self, faces: Sequence[AlignedFace]) -> list[HeadMesh]:
        """One `HeadMesh` per face, in order."""
        for index, face in enumerate(faces):
            shape = np.shape(face.landmarks)
            if shape != (NUM_LANDMARKS, 3):
                raise ValueError(f"face {index}: landmarks must be ({NUM_LANDMARKS}, 3), got {shape}.")
        if not faces:
            return []
        fitter = self.load()
        meshes: list[HeadMesh] = []
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start:start + self.batch_size]
            landmarks = np.stack([np.asarray(face.landmarks, dtype=np.float64) for face in chunk])
            result = fitter.fit(landmarks)
            bad = np.flatnonzero(~np.isfinite(result.nme) | ~np.isfinite(result.vertices).all(axis=(1, 2)))
            if bad.size:
                raise RuntimeError(f"the FLAME fit diverged for face {start + int(bad[0])}.")
            meshes += [ensure_uvs(self._mesh(result, index, fitter), self._uv_cache) for index in range(len(chunk))]
        return meshes

    @staticmethod
    def _mesh(result, index: int, fitter: "FlameFitter") -> HeadMesh:
        frontal = result.frontal_vertices[index].astype(np.float64)
        origin = (frontal.min(axis=0) + frontal.max(axis=0)) / 2
        assets = fitter.assets
        params = result.params(index)
        params["mesh_origin"] = origin.astype(np.float32)
        mesh = HeadMesh(
            vertices=(frontal - origin).astype(np.float32),
            faces=assets.faces.astype(np.int32),
            image_points=result.image_points[index].astype(np.float32),
            landmark_nme=float(result.nme[index]),
            engine="flame",
            uvs=None if assets.uvs is None else assets.uvs.astype(np.float32),
            uv_faces=None if assets.uv_faces is None else assets.uv_faces.astype(np.int32),
            params=params,
        )
        mesh.check_inputs()
        return mesh
