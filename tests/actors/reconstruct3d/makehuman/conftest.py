"""Shared fixtures: one MakeHuman engine per module run, and its heads for the package photos."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def makehuman_engine():
    from actors.reconstruct3d.makehuman import MakeHumanHeadEngine

    engine = MakeHumanHeadEngine()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def package_heads(makehuman_engine, aligned_faces):
    """name → HeadMesh for the package photos (blendshapes estimated on the crops)."""
    return dict(zip(aligned_faces, makehuman_engine.reconstruct(list(aligned_faces.values()))))
