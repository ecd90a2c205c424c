"""Seven yaw views of a textured head, and a one-row contact sheet.

`ViewRenderer` is the entry point: it takes a `HeadMesh` (any number of parts, morph weights applied
as the photo's expression) and its `HeadTextures`, and draws it from each yaw with one framing, so the
views line up (camera, light and shading model: `view_scene`). Backends, chosen by `RenderOptions`:

- "numba" (what "auto" picks): a compiled CPU rasteriser with 4× coverage anti-aliasing, ~10× faster
  than the numpy reference on one core, and it needs no system library (`numba_render`).
- "gl": OpenGL over EGL with MSAA (`gl_render`): the GPU where the machine has one and its EGL driver,
  else Mesa's llvmpipe (which is slower than "numba" on heads: see `bench.reconstruct`). It needs the
  Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri (or the GPU driver's EGL); if EGL cannot start,
  rendering fails with a one-line error that says so (it was asked for by name).
- "numpy": the reference rasteriser (`numpy_render`), seconds per head; "auto" falls back to it, with
  one logged warning per renderer, only if numba cannot be imported.

A renderer holds its backend (and a GL context, for "gl") for its lifetime and reuses it across
heads; create one per process (a Ray actor holds its own), call `close()` when done.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from .mesh import HeadMesh, HeadTextures
from .numpy_render import NumpyViewRenderer, sample_image, sample_texture  # noqa: F401 (sample_image: bake.py)
from .view_scene import (BACKGROUND, VIEW_YAWS, as_textures, build_scene, head_framing, project,  # noqa: F401
                         vertex_normals, yaw_rotation)

BACKENDS = ("auto", "numba", "gl", "numpy")
FOCUS_JOINT = "head"  # rigged heads are framed on this joint's subtree (see `portrait_framing`)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderOptions:
    """How views are drawn. `samples` (MSAA) and `device_index` (EGL device) apply to the "gl" backend."""

    size: int = 512
    backend: str = "auto"
    samples: int = 4
    device_index: int = 0
    background: tuple[int, int, int] = BACKGROUND

    def check_inputs(self) -> None:
        if not 16 <= self.size <= 4096:
            raise ValueError(f"size must be in [16, 4096], got {self.size}.")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}.")
        if self.samples not in (1, 2, 4, 8):
            raise ValueError(f"samples must be 1, 2, 4 or 8, got {self.samples}.")
        if self.device_index < 0:
            raise ValueError(f"device_index must be ≥ 0, got {self.device_index}.")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be an RGB triple in [0, 255], got {self.background}.")


class ViewRenderer:
    """`render_views(mesh, textures)` → one (size, size, 3) uint8 RGB view per yaw. The backend starts on first use."""

    def __init__(self, size: int = 512, *, backend: str = "auto", samples: int = 4, device_index: int = 0,
                 background: tuple[int, int, int] = BACKGROUND):
        self.options = RenderOptions(size, backend, samples, device_index, tuple(background))
        self.options.check_inputs()
        self._backend = None  # the backend object, made on first render
        self.backend_name: str | None = None  # "numba", "gl" or "numpy" once started
        self.device: str | None = None  # "cpu", or the GL renderer's name (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)")

    def render_views(self, mesh: HeadMesh, textures: HeadTextures | np.ndarray, yaws=VIEW_YAWS,
                     framing: tuple[np.ndarray, float] | None = None) -> list[np.ndarray]:
        """The head from each yaw in `yaws` (degrees; positive turns the nose to image right), one framing.

        textures: `HeadTextures`, or an (H, W, 3) uint8 albedo for a one-material head. framing:
        (centre, radius) to share across renders (e.g. an expression sweep); default:
        `portrait_framing` of the neutral head (the head above the neck for a rigged mesh).
        """
        scene = build_scene(mesh, as_textures(textures), framing if framing is not None else portrait_framing(mesh))
        return self._started().render(scene, list(yaws))

    def close(self) -> None:
        if self._backend is not None and hasattr(self._backend, "close"):
            self._backend.close()
        self._backend, self.backend_name, self.device = None, None, None

    def __enter__(self) -> "ViewRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _started(self):
        if self._backend is None:
            self._backend, self.backend_name = self._make_backend()
        return self._backend

    def _make_backend(self):
        options = self.options
        if options.backend == "gl":
            from .gl_render import GLViewRenderer

            renderer = GLViewRenderer(options.size, options.samples, options.device_index, options.background)
            self.device = renderer.start()  # fails here, with what to install, if EGL cannot start
            return renderer, "gl"
        self.device = "cpu"
        if options.backend in ("auto", "numba"):
            try:
                import numba  # noqa: F401

                from .numba_render import NumbaViewRenderer

                return NumbaViewRenderer(options.size, options.background), "numba"
            except ImportError as exc:
                if options.backend == "numba":
                    raise
                logger.warning("numba is unavailable (%s): rendering views with the numpy reference renderer, "
                               "~10x slower. Install the project's pinned numba to fix this.", exc)
        return NumpyViewRenderer(options.size, background=options.background), "numpy"


def portrait_framing(mesh: HeadMesh) -> tuple[np.ndarray, float]:
    """(centre, radius) that frames the head above the neck, so the face fills the view.

    A rigged mesh (a `Skin` with a `FOCUS_JOINT`) is framed on the neutral vertices bound mostly (≥ ½)
    to that joint or its descendants (jaw, eyes, hair): the shoulders and most of the neck fall
    outside. The radius is the largest half-extent any yaw shows (horizontal distance from the
    vertical axis through the centre, or half the height), tighter than a bounding sphere. Meshes
    without that joint (the canonical and FLAME heads are heads already) keep `head_framing`.
    """
    skin = mesh.skin
    if skin is None or FOCUS_JOINT not in skin.joint_names:
        return head_framing(mesh)
    subtree = np.zeros(len(skin.joint_names), bool)
    subtree[skin.joint_names.index(FOCUS_JOINT)] = True
    for joint, parent in enumerate(skin.parents):  # parents precede children
        if parent >= 0 and subtree[parent]:
            subtree[joint] = True
    bound = (np.asarray(skin.weights) * subtree[np.asarray(skin.joints, dtype=np.int64)]).sum(axis=1) >= 0.5
    if bound.sum() < 4:
        return head_framing(mesh)
    head = np.asarray(mesh.vertices, dtype=np.float64)[bound]
    centre = (head.min(axis=0) + head.max(axis=0)) / 2
    offset = head - centre
    radius = max(float(np.hypot(offset[:, 0], offset[:, 2]).max()), float(np.abs(offset[:, 1]).max()))
    return centre, max(radius, 1e-9)


def render_views(mesh: HeadMesh, textures_or_albedo: HeadTextures | np.ndarray, size: int = 512,
                 yaws=VIEW_YAWS) -> list[np.ndarray]:
    """One-off convenience: the head from each yaw with a temporary `ViewRenderer` (default backend).
    Code that renders many heads should hold one `ViewRenderer` instead."""
    with ViewRenderer(size) as renderer:
        return renderer.render_views(mesh, textures_or_albedo, yaws)


def render_view(mesh: HeadMesh, texture: np.ndarray, yaw: float, size: int = 512) -> np.ndarray:
    """One view (see `render_views`)."""
    return render_views(mesh, texture, size, [yaw])[0]


def contact_sheet(views: list[np.ndarray], labels: list[str] | None = None) -> np.ndarray:
    """The views side by side in one row, each with an optional label along its bottom edge."""
    if not views:
        raise ValueError("contact_sheet needs at least one view.")
    height = views[0].shape[0]
    if any(v.shape != views[0].shape for v in views):
        raise ValueError("all views must have the same shape.")
    if labels is not None and len(labels) != len(views):
        raise ValueError(f"got {len(labels)} labels for {len(views)} views.")
    tiles = []
    for index, view in enumerate(views):
        tile = view.copy()
        if labels is not None:
            scale = height / 512
            cv2.putText(tile, labels[index], (int(12 * scale), height - int(14 * scale)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.8 * scale, (90, 90, 90), max(1, int(round(2 * scale))), cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def yaw_label(yaw: float) -> str:
    return f"yaw {yaw:+.0f}" if yaw else "yaw 0"
