"""The stylizer engine protocol: what every 2D engine (offline, diffusers) takes and returns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from dataset.face import AlignedFace
    from actors.request import AvatarRequest


@dataclass
class StylizedImage:
    """One avatar image and, when the engine knows, where the face landmarks went."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray | None  # (478, 2|3) in the avatar's pixels, None when the engine cannot tell


@runtime_checkable
class Stylizer(Protocol):
    """A 2D avatar engine. `stylize` returns one image per face, in order, one seed per face."""

    name: str
    styles: tuple[str, ...]

    def stylize(
        self,
        faces: Sequence[AlignedFace],
        style: str,
        request: AvatarRequest,
        seeds: Sequence[int],
    ) -> list[StylizedImage]: ...
