"""Fixtures for the FLAME tests: a small synthetic model in FLAME's file formats, written once per session."""
from __future__ import annotations

import numpy as np
import pytest

from actors.reconstruct3d.flame import synthetic


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The fits are small batched linear algebra: on a shared 2-core machine torch's thread pool spins
    against other processes and runs ~10x slower than one thread. Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def flame_model() -> synthetic.SyntheticFlame:
    """~2k-vertex head, 300 identity + 100 expression components, FLAME's layout."""
    return synthetic.build_synthetic_flame()


@pytest.fixture(scope="session")
def flame_files(flame_model, tmp_path_factory) -> dict:
    """model.pkl (FLAME 2020-style pickle with chumpy objects), embedding.npz, texture.npz."""
    folder = tmp_path_factory.mktemp("flame")
    faces = flame_model.f.astype(np.int64)
    rng = np.random.default_rng(0)
    texture = folder / "FLAME_texture.npz"
    np.savez(texture, vt=rng.uniform(0, 1, size=(faces.size, 2)), ft=np.arange(faces.size).reshape(-1, 3),
             tex_dir=np.zeros((4, 4)))
    return {
        "model": synthetic.write_flame_pickle(flame_model, folder / "generic_model.pkl"),
        "embedding": synthetic.write_embedding(flame_model, folder / "mediapipe_landmark_embedding.npz"),
        "texture": texture,
        "folder": folder,
    }


@pytest.fixture(scope="session")
def flame_assets(flame_files):
    from actors.reconstruct3d.flame.assets import load_flame_model

    return load_flame_model(flame_files["model"])


@pytest.fixture(scope="session")
def flame_embedding(flame_files):
    from actors.reconstruct3d.flame.embedding import load_landmark_embedding

    return load_landmark_embedding(flame_files["embedding"])
