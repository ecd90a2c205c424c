"""`OfflineStylizer`: the default 2D engine (no weights, CPU, deterministic per seed)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.request import AvatarRequest
from actors.stylize2d.protocol import StylizedImage

STYLES = ("anime", "cartoon", "realistic", "sketch")
# style -> module with `render(face, rng, strength) -> (image, landmarks)`, imported on first use.
STYLE_MODULES = {style: f"actors.stylize2d.offline.{style}" for style in STYLES}


def check_face(face: AlignedFace) -> None:
    """Raise a precise ValueError unless `face` carries what the offline styles read."""
    crop = np.asarray(face.crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] != crop.shape[1]:
        raise ValueError(f"face.crop must be a square (N, N, 3) uint8 RGB array, got {crop.dtype} {crop.shape}.")
    if np.asarray(face.mask).shape != crop.shape[:2]:
        raise ValueError(f"face.mask must be {crop.shape[:2]}, got {np.asarray(face.mask).shape}.")
    if np.asarray(face.skin_mask).shape != crop.shape[:2]:
        raise ValueError(f"face.skin_mask must be {crop.shape[:2]}, got {np.asarray(face.skin_mask).shape}.")
    if not np.asarray(face.skin_mask).any():
        raise ValueError("face.skin_mask is empty: the skin tone cannot be kept.")
    landmarks = np.asarray(face.landmarks)
    if landmarks.ndim != 2 or landmarks.shape[0] != 478 or landmarks.shape[1] < 2:
        raise ValueError(f"face.landmarks must be (478, 2 or 3), got {landmarks.shape}.")


def resize_output(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale a square render and its landmarks to `size` pixels."""
    current = image.shape[0]
    if current == size:
        return image, landmarks
    interpolation = cv2.INTER_AREA if size < current else cv2.INTER_CUBIC
    scaled = cv2.resize(image, (size, size), interpolation=interpolation)
    points = np.array(landmarks, dtype=np.float32, copy=True)
    points[:, :2] *= size / current
    if points.shape[1] > 2:
        points[:, 2:] *= size / current
    return scaled, points


class OfflineStylizer:
    """Styles `anime`, `cartoon`, `realistic`, `sketch` by classical image processing.

    Same face, style, strength and seed → byte-identical output. The seed varies only the decoration
    (backdrop colour, paper grain, light discs), never the face.
    """

    name = "offline"
    styles: tuple[str, ...] = STYLES

    @dataclass(frozen=True)
    class Options:
        """The offline engine needs no weights and has no options."""

        def check_inputs(self) -> None:
            return None

    def __init__(self, options: Options | None = None, *, device: str | None = None) -> None:
        if options is not None and not isinstance(options, self.Options):
            raise ValueError(f"The offline engine takes no options, got {options!r}.")
        self.options = options or self.Options()
        self._renderers: dict = {}

    @classmethod
    def wants_gpu(cls, options: Options, device: str | None) -> bool:
        return False

    def _renderer(self, style: str):
        if style not in self.styles:
            raise ValueError(f"Unknown style {style!r} for the offline engine: choose from {self.styles}.")
        if style not in self._renderers:
            self._renderers[style] = importlib.import_module(STYLE_MODULES[style]).render
        return self._renderers[style]

    def stylize(
        self,
        faces: Sequence[AlignedFace],
        style: str,
        request: AvatarRequest,
        seeds: Sequence[int],
    ) -> list[StylizedImage]:
        """One avatar per face, at `request.size`, with landmarks moved along with the image."""
        render = self._renderer(style)
        if len(seeds) != len(faces):
            raise ValueError(f"Need one seed per face: got {len(seeds)} seeds for {len(faces)} faces.")
        results = []
        for face, seed in zip(faces, seeds):
            check_face(face)
            image, landmarks = render(face, np.random.default_rng(int(seed)), float(request.strength))
            image, landmarks = resize_output(image, landmarks, int(request.size))
            results.append(StylizedImage(image=np.ascontiguousarray(image), landmarks=landmarks))
        return results
