"""The 3D stage: aligned faces in, per-face head files and result columns out.

For a batch: reconstruct every face with the chosen engine (FLAME when a model is configured and the
request allows it, else the canonical head), then per face lay out UVs where missing, bake the
texture, write head.glb / head.obj / head.mtl / head_texture.png (+ flame.npz for FLAME), render the
7 views (view_<yaw>.png and the views.png sheet) and report the `dataset.schema.RESULTS_SCHEMA` 3D
columns. A face that fails gets {"error": ...} and the others carry on.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from dataset.face import AlignedFace
from ..request import AvatarRequest
from .bake import TextureBaker
from .export import encode_png, write_glb, write_obj
from .head import CanonicalHeadEngine
from .mesh import HeadMesh
from .render import VIEW_YAWS, contact_sheet, render_views, yaw_label
from .uv import UVLayoutCache, ensure_uvs

VIEW_SIZE = 512


class Reconstruct3DStage:
    """Batch 3D reconstruction for one request. The engine and its model files load on first use."""

    def __init__(
        self,
        request: AvatarRequest,
        *,
        flame_model: str | Path | None = None,
        flame_embedding: str | Path | None = None,
        flame_texture: str | Path | None = None,
        device: str | None = None,
        render_views: bool = True,
        view_size: int = VIEW_SIZE,
    ):
        self.request = request
        self.flame_model = Path(flame_model) if flame_model is not None else None
        self.flame_embedding = Path(flame_embedding) if flame_embedding is not None else None
        self.flame_texture = Path(flame_texture) if flame_texture is not None else None
        self.device = device
        self.render_views = render_views
        self.view_size = view_size
        self.check_inputs()
        self._engine = None
        self._baker = TextureBaker(request.texture_size)
        self._uv_cache = UVLayoutCache()

    def check_inputs(self) -> None:
        if "3d" not in self.request.modes:
            raise ValueError(f"the request's modes {self.request.modes} do not include '3d'.")
        if not 64 <= self.view_size <= 2048:
            raise ValueError(f"view_size must be in [64, 2048], got {self.view_size}.")
        if self.request.head_engine == "flame" and self.flame_model is None:
            raise ValueError("head_engine 'flame' needs a FLAME model: pass flame_model (and flame_embedding).")
        if self.use_flame and self.flame_embedding is None:
            raise ValueError("FLAME needs its MediaPipe landmark embedding: pass flame_embedding (mediapipe_landmark_embedding.npz).")
        for name in ("flame_model", "flame_embedding", "flame_texture"):
            path = getattr(self, name)
            if self.use_flame and path is not None and not path.is_file():
                raise ValueError(f"{name} {path} is not a file.")

    @property
    def use_flame(self) -> bool:
        return self.flame_model is not None and self.request.head_engine in ("auto", "flame")

    @property
    def engine_name(self) -> str:
        return "flame" if self.use_flame else "canonical"

    @property
    def engine(self):
        if self._engine is None:
            if self.use_flame:
                from .flame import FlameHeadEngine  # torch and the model load only when FLAME is used

                self._engine = FlameHeadEngine(self.flame_model, self.flame_embedding, texture_path=self.flame_texture, device=self.device)
            else:
                self._engine = CanonicalHeadEngine()
        return self._engine

    def run(self, faces: Sequence[AlignedFace], ids: Sequence[str], out_dirs: Sequence[str | Path]) -> list[dict]:
        """One dict per face, in order: the 3D result columns, or {"error": ...} (with head_engine)."""
        if not len(faces) == len(ids) == len(out_dirs):
            raise ValueError(f"faces, ids and out_dirs must have the same length, got {len(faces)}, {len(ids)}, {len(out_dirs)}.")
        if not faces:
            return []
        started = time.perf_counter()
        meshes, errors = self._reconstruct(faces)
        fit_ms = (time.perf_counter() - started) * 1000 / len(faces)
        results = []
        for face, item_id, out_dir, mesh, error in zip(faces, ids, out_dirs, meshes, errors):
            if error is not None:
                results.append({"head_engine": self.engine_name, "error": error})
                continue
            item_started = time.perf_counter()
            try:
                row = self._finish(face, mesh, Path(out_dir))
            except Exception as exc:  # one face's failure must not lose the batch
                results.append({"head_engine": self.engine_name, "error": f"{type(exc).__name__}: {exc}"})
                continue
            row["ms_3d"] = fit_ms + (time.perf_counter() - item_started) * 1000
            results.append(row)
        return results

    def _reconstruct(self, faces: Sequence[AlignedFace]) -> tuple[list[HeadMesh | None], list[str | None]]:
        """The batch at once; if that fails, face by face so only the bad ones are lost."""
        try:
            meshes = list(self.engine.reconstruct(list(faces)))
            if len(meshes) != len(faces):
                raise RuntimeError(f"the engine returned {len(meshes)} meshes for {len(faces)} faces.")
            return meshes, [None] * len(faces)
        except Exception as exc:
            if len(faces) == 1:
                return [None], [f"{type(exc).__name__}: {exc}"]
        meshes, errors = [], []
        for face in faces:
            mesh, error = self._reconstruct([face])
            meshes += mesh
            errors += error
        return meshes, errors

    def _finish(self, face: AlignedFace, mesh: HeadMesh, out_dir: Path) -> dict:
        out_dir.mkdir(parents=True, exist_ok=True)
        mesh = ensure_uvs(mesh, self._uv_cache)
        texture = self._baker.bake(mesh, face.crop, face.mask, face.skin_mask)
        png = encode_png(texture)
        obj = write_obj(mesh, texture, out_dir, name="head", png=png)
        glb = write_glb(mesh, texture, out_dir / "head.glb", png=png)
        flame_path = None
        if mesh.engine == "flame":
            flame_path = out_dir / "flame.npz"
            np.savez(flame_path, **{k: np.asarray(v) for k, v in mesh.params.items()})
        views_path = None
        if self.render_views:
            views = render_views(mesh, texture, size=self.view_size)
            for yaw, view in zip(VIEW_YAWS, views):
                _write_rgb(out_dir / f"view_{yaw}.png", view)
            views_path = out_dir / "views.png"
            _write_rgb(views_path, contact_sheet(views, [yaw_label(y) for y in VIEW_YAWS]))
        return {
            "head_engine": mesh.engine,
            "glb_path": str(glb),
            "obj_path": str(obj["obj"]),
            "texture_path": str(obj["texture"]),
            "views_path": str(views_path) if views_path is not None else None,
            "flame_path": str(flame_path) if flame_path is not None else None,
            "nme": float(mesh.landmark_nme),
        }


def _write_rgb(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"could not write {path}.")
