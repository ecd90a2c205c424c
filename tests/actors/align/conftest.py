"""Fixtures for the alignment tests."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def aligner():
    """One real MediaPipe aligner shared by the alignment tests."""
    from actors.align.aligner import FaceAligner

    with FaceAligner() as face_aligner:
        yield face_aligner


@pytest.fixture(scope="session")
def cameraman() -> np.ndarray:
    """skimage's cameraman as RGB: a face turned well to image right (yaw ≈ +55°)."""
    import skimage.data

    return np.repeat(skimage.data.camera()[..., None], 3, axis=2)
