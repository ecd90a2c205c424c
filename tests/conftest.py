"""Shared fixtures: photos that ship in packages, aligned faces, a local Ray cluster."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def pytest_collection_modifyitems(config, items):
    """Skip `gpu`-marked tests where no CUDA device is present."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.array(Image.open(f).convert("RGB"))


@pytest.fixture(scope="session")
def package_photos() -> dict[str, np.ndarray]:
    """RGB uint8 photos that ship inside installed packages (no download)."""
    return {"astronaut": _astronaut(), "grace_hopper": _grace_hopper()}


@pytest.fixture(scope="session")
def aligned_faces(package_photos):
    """`AlignedFace` for each package photo, from the real MediaPipe aligner."""
    from actors.align.aligner import FaceAligner

    with FaceAligner() as aligner:
        return {name: aligner.align(image) for name, image in package_photos.items()}


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray runtime for the whole session (2 CPUs, one logical GPU, no dashboard)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
