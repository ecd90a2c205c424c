"""The 3D stage: aligned faces in, per-face head files and a typed result out.

For a batch: the head engine fits every face (`reconstruct`, batch first, then face by face), then per
face it bakes the textures (`bake`), and the stage writes head.glb (rigged and with morphs when the
engine makes them), head.obj / head.mtl / textures (static, neutral), head_params.npz (the engine's
fitted parameters), and the 7 views (view_<yaw>.png and the views.png sheet: one `ViewRenderer` held for
the stage's lifetime, framed on the head above the neck). A face that fails gets a `Failure` and the
others carry on.
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from actors.batching import ItemError, batch_then_items
from actors.request import AvatarRequest
from actors.stage_results import Failure, Head3D
from dataset.face import AlignedFace
from dataset.images import write_bytes_atomic, write_png
from dataset.reasons import Reason

from .export import encode_images, write_glb, write_obj
from .mesh import HeadMesh
from .protocol import HeadEngine
from .render import VIEW_YAWS, ViewRenderer, contact_sheet, yaw_label

VIEW_SIZE = 512
PARAMS_FILE = "head_params.npz"


class Reconstruct3DStage:
    """Batch 3D reconstruction for one request with one head engine (which loads its models on first use)."""

    def __init__(self, request: AvatarRequest, engine: HeadEngine, *, render_views: bool = True,
                 view_size: int = VIEW_SIZE) -> None:
        if "3d" not in request.modes:
            raise ValueError(f"the request's modes {request.modes} do not include '3d'.")
        if not 64 <= view_size <= 2048:
            raise ValueError(f"view_size must be in [64, 2048], got {view_size}.")
        self.request = request
        self.engine = engine
        self.render_views = render_views
        self.view_size = view_size
        self._renderer: ViewRenderer | None = None  # one for every head of the stage (made on first use)

    def close(self) -> None:
        """Release the view renderer (a GL context, when that backend runs)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def run(self, faces: Sequence[AlignedFace], ids: Sequence[str],
            out_dirs: Sequence[str | Path]) -> list[Head3D | Failure]:
        """One `Head3D` or `Failure` per face, in order."""
        if not len(faces) == len(ids) == len(out_dirs):
            raise ValueError(f"faces, ids and out_dirs must have the same length, got {len(faces)}, {len(ids)}, {len(out_dirs)}.")
        if not faces:
            return []
        started = time.perf_counter()
        meshes = batch_then_items(self.engine.reconstruct, list(faces))
        fit_ms = (time.perf_counter() - started) * 1000 / len(faces)
        outcomes: list[Head3D | Failure] = []
        for face, out_dir, mesh in zip(faces, out_dirs, meshes):
            if isinstance(mesh, ItemError):
                outcomes.append(Failure(Reason.RECONSTRUCTION_ERROR, f"{self.engine.name}: {mesh.detail}"))
                continue
            item_started = time.perf_counter()
            try:
                head = self._finish(face, mesh, Path(out_dir))
            except Exception as error:  # noqa: BLE001 - one face's failure must not lose the batch
                outcomes.append(Failure(Reason.RECONSTRUCTION_ERROR, f"{self.engine.name}: {ItemError.of(error).detail}"))
                continue
            head.ms = fit_ms + (time.perf_counter() - item_started) * 1000
            outcomes.append(head)
        return outcomes

    def _finish(self, face: AlignedFace, mesh: HeadMesh, out_dir: Path) -> Head3D:
        textures = self.engine.bake(mesh, face, self.request.texture_size)
        encoded = encode_images(mesh, textures)  # each PNG once, for both writers
        glb = write_glb(mesh, textures, out_dir / "head.glb", encoded=encoded,
                        sparse_morphs=self.request.glb_morphs == "sparse")
        obj = write_obj(mesh, textures, out_dir, name="head", encoded=encoded)
        params = out_dir / PARAMS_FILE
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in mesh.params.items()})
        write_bytes_atomic(params, buffer.getvalue())
        views_path = None
        if self.render_views:
            if self._renderer is None:
                self._renderer = ViewRenderer(self.view_size)
            views = self._renderer.render_views(mesh, textures)
            for yaw, view in zip(VIEW_YAWS, views):
                write_png(out_dir / f"view_{yaw}.png", view, fast=True)
            # The sheet is an overview (reports, the UI's preview): half-size tiles, a quarter of the encoding cost.
            tiles = [cv2.resize(view, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for view in views]
            views_path = write_png(out_dir / "views.png", contact_sheet(tiles, [yaw_label(y) for y in VIEW_YAWS]), fast=True)
        return Head3D(head_engine=mesh.engine, glb_path=Path(glb), obj_path=Path(obj["obj"]),
                      texture_path=Path(obj["texture"]), params_path=params, views_path=views_path,
                      nme=float(mesh.landmark_nme), ms=0.0)
