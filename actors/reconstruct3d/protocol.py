"""The head-engine protocol: what every 3D engine (makehuman, canonical, flame) offers the 3D stage.

An engine is a class with a registry `name`, an `Options` dataclass (validated by its pure
`check_inputs()`), and a constructor that validates and loads nothing: models and assets load on the
first `reconstruct`. `reconstruct` fits a batch of aligned faces (one `HeadMesh` per face, in order);
`bake` makes the textures and materials of one fitted head from its photo.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from dataset.face import AlignedFace

    from .mesh import HeadMesh, HeadTextures


@runtime_checkable
class HeadEngine(Protocol):
    name: ClassVar[str]
    Options: ClassVar[type]

    def reconstruct(self, faces: Sequence["AlignedFace"]) -> list["HeadMesh"]: ...

    def bake(self, mesh: "HeadMesh", face: "AlignedFace", texture_size: int) -> "HeadTextures": ...
