"""The 2D engine protocol: what every stylizer (offline, diffusers) offers the 2D stage.

An engine is a class with a registry `name`, the `styles` it draws, an `Options` dataclass (validated by
its pure `check_inputs()`), a constructor `Engine(options, *, device=None)` that validates and loads
nothing, and `stylize(faces, style, request, seeds)`: one image per face, in order, one seed per face.
`wants_gpu(options, device)` says whether its Ray actors should ask for a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from actors.request import AvatarRequest
    from dataset.face import AlignedFace


@dataclass
class StylizedImage:
    """One avatar image and, when the engine knows, where the face landmarks went."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    landmarks: np.ndarray | None  # (478, 2|3) in the avatar's pixels, None when the engine cannot tell


@runtime_checkable
class Stylizer(Protocol):
    name: ClassVar[str]
    styles: ClassVar[tuple[str, ...]]
    Options: ClassVar[type]

    @classmethod
    def wants_gpu(cls, options, device: str | None) -> bool: ...

    def stylize(
        self,
        faces: Sequence[AlignedFace],
        style: str,
        request: AvatarRequest,
        seeds: Sequence[int],
    ) -> list[StylizedImage]: ...
