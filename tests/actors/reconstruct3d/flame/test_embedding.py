"""FLAME's MediaPipe landmark embedding file: keys lmk_face_idx, lmk_b_coords, landmark_indices."""
from __future__ import annotations

import numpy as np
import pytest

from actors.reconstruct3d.flame import synthetic
from actors.reconstruct3d.flame.embedding import load_landmark_embedding
from actors.reconstruct3d.flame.safe_pickle import FlameFileError


def test_embedding_loads(flame_files, flame_model):
    embedding = load_landmark_embedding(flame_files["embedding"])
    assert len(embedding) == 105
    assert embedding.barycentric.shape == (105, 3)
    np.testing.assert_allclose(embedding.barycentric.sum(axis=1), 1.0, atol=1e-6)
    assert embedding.landmark_indices.max() < 478 and len(set(embedding.landmark_indices)) == 105
    embedding.check_against(len(flame_model.f))


@pytest.fixture(scope="module")
def good_arrays(flame_model):
    return synthetic.build_embedding(flame_model)


def _write(tmp_path, arrays, **overrides):
    np.savez(tmp_path / "emb.npz", **{**arrays, **overrides})
    return tmp_path / "emb.npz"


def test_missing_key(tmp_path):
    np.savez(tmp_path / "emb.npz", lmk_face_idx=np.zeros(3, int), lmk_b_coords=np.full((3, 3), 1 / 3))
    with pytest.raises(FlameFileError, match=r"lacks \['landmark_indices'\]"):
        load_landmark_embedding(tmp_path / "emb.npz")


@pytest.mark.parametrize("key, value, message", [
    ("lmk_b_coords", np.full((105, 3), 0.5), "sum to 1"),
    ("lmk_b_coords", np.full((105, 2), 0.5), r"lmk_b_coords must be \(105, 3\)"),
    ("landmark_indices", np.arange(105) + 400, "0..477"),
    ("landmark_indices", np.zeros(105, int), "repeats"),
    ("lmk_face_idx", -np.ones(105, int), "negative"),
    ("lmk_face_idx", np.zeros((105, 2), int), r"lmk_face_idx must be \(L,\)"),
])
def test_bad_values_are_named(tmp_path, good_arrays, key, value, message):
    with pytest.raises(FlameFileError, match=message):
        load_landmark_embedding(_write(tmp_path, good_arrays, **{key: value}))


def test_embedding_for_another_mesh(tmp_path, good_arrays):
    embedding = load_landmark_embedding(_write(tmp_path, good_arrays, lmk_face_idx=np.full(105, 10**6)))
    with pytest.raises(FlameFileError, match="do not belong together"):
        embedding.check_against(9976)


def test_pickle_given_as_embedding(flame_files):
    with pytest.raises(FlameFileError, match="not a readable .npz"):
        load_landmark_embedding(flame_files["model"])


def test_missing_embedding(tmp_path):
    with pytest.raises(FileNotFoundError, match="embedding not found"):
        load_landmark_embedding(tmp_path / "missing.npz")
