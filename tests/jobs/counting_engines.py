"""The shipped 2D and head engines, counting the faces they compute in a named Ray actor.

The count is taken inside the engines themselves, on the Ray workers, and shares no code with the
job's de-duplication: how many faces were really stylised and fitted, whatever the rows say.
"""
from __future__ import annotations

from actors.engines import EngineCatalog, Registry
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.stylize2d.offline import OfflineStylizer

COUNTER_NAME = "tests-engine-face-counter"


class FaceCounter:
    """Faces computed per engine kind ("2d", "3d")."""

    def __init__(self) -> None:
        self.faces: dict[str, int] = {}

    def add(self, kind: str, faces: int) -> None:
        self.faces[kind] = self.faces.get(kind, 0) + faces

    def counts(self) -> dict[str, int]:
        return dict(self.faces)


def start_counter():
    """The named counter actor (one per Ray session; the engines find it by name)."""
    import ray

    return ray.remote(num_cpus=0)(FaceCounter).options(name=COUNTER_NAME, get_if_exists=True).remote()


def _count(kind: str, faces: int) -> None:
    import ray

    ray.get(ray.get_actor(COUNTER_NAME).add.remote(kind, faces))


class CountingOfflineStylizer(OfflineStylizer):
    name = "counted-offline"

    def stylize(self, faces, style, request, seeds):
        _count("2d", len(faces))
        return super().stylize(faces, style, request, seeds)


class CountingCanonicalHead(CanonicalHeadEngine):
    name = "counted-canonical"

    def reconstruct(self, faces):
        _count("3d", len(faces))
        return super().reconstruct(faces)


def counting_catalog() -> EngineCatalog:
    """A catalog whose only (so default) engines are the counting ones."""
    return EngineCatalog(stylizers=Registry("2D engine", [CountingOfflineStylizer]),
                         heads=Registry("head engine", [CountingCanonicalHead]))
