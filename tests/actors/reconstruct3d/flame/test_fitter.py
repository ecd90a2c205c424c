"""Fitting FLAME to landmarks: known parameters are recovered, noise degrades gracefully, results repeat."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from actors.reconstruct3d.flame.fitter import FitConfig, FlameFitter
from actors.reconstruct3d.flame.synthetic import random_parameters, synthetic_landmarks

NUM_FACES = 8


@pytest.fixture(scope="module")
def truth(flame_assets, flame_embedding):
    params = random_parameters(NUM_FACES, seed=1)
    landmarks, vertices = synthetic_landmarks(flame_assets, flame_embedding, **params)
    return params, landmarks, vertices


@pytest.fixture(scope="module")
def fitter(flame_assets, flame_embedding):
    return FlameFitter(flame_assets, flame_embedding)


@pytest.fixture(scope="module")
def batch_fit(fitter, truth):
    return fitter.fit(truth[1])


def _error(fitted: np.ndarray, expected: np.ndarray, size: float) -> np.ndarray:
    """Mean vertex distance per face, as a fraction of the face's size (template bounding-box diagonal)."""
    return np.linalg.norm(fitted - expected, axis=-1).mean(axis=-1) / size


def _size(assets) -> float:
    return float(np.linalg.norm(assets.v_template.max(0) - assets.v_template.min(0)))


def test_known_parameters_are_recovered_at_batch_8(batch_fit, truth, flame_assets):
    params, landmarks, vertices = truth
    error = _error(batch_fit.vertices, vertices, _size(flame_assets))
    assert error.max() <= 0.01, error
    start = _error(np.repeat(flame_assets.v_template[None], NUM_FACES, 0), vertices, _size(flame_assets))
    assert (error < start / 3).all()  # the neutral head is far off: the test can fail
    assert (batch_fit.nme < 0.01).all()
    np.testing.assert_allclose(batch_fit.camera[:, 0], params["camera"][:, 0], rtol=0.05)
    np.testing.assert_allclose(batch_fit.global_pose, params["global_pose"], atol=0.05)
    np.testing.assert_allclose(batch_fit.jaw_pose[:, 0], params["jaw_pose"][:, 0], atol=0.05)


def test_known_parameters_are_recovered_at_batch_1(fitter, batch_fit, truth, flame_assets):
    _, landmarks, vertices = truth
    for index in range(3):
        single = fitter.fit(landmarks[index:index + 1])
        assert _error(single.vertices, vertices[index:index + 1], _size(flame_assets))[0] <= 0.01
        # Faces do not interact: alone or in a batch, the same fit.
        np.testing.assert_allclose(single.vertices[0], batch_fit.vertices[index], atol=2e-4)


def test_image_points_follow_the_camera(batch_fit, truth, flame_assets, flame_embedding):
    landmarks = truth[1]
    corners = batch_fit.image_points[:, flame_assets.faces[flame_embedding.face_idx]]
    at_landmarks = (corners * flame_embedding.barycentric[None, :, :, None]).sum(2)
    observed = landmarks[:, flame_embedding.landmark_indices]
    np.testing.assert_allclose(at_landmarks[..., :2], batch_fit.landmarks_2d, atol=1e-2)
    pixel_error = np.linalg.norm(at_landmarks[..., :2] - observed[..., :2], axis=-1).mean(1)
    iod = np.linalg.norm(landmarks[:, 468, :2] - landmarks[:, 473, :2], axis=-1)
    np.testing.assert_allclose(pixel_error / iod, batch_fit.nme, atol=1e-4)


def test_noise_degrades_gracefully(fitter, batch_fit, truth, flame_assets):
    _, landmarks, vertices = truth
    rng = np.random.default_rng(7)
    errors = [_error(batch_fit.vertices, vertices, _size(flame_assets)).mean()]
    nmes = [batch_fit.nme.mean()]
    for sigma in (1.0, 2.0, 4.0):
        noisy = landmarks + rng.normal(scale=sigma, size=landmarks.shape)
        result = fitter.fit(noisy)
        error = _error(result.vertices, vertices, _size(flame_assets))
        assert error.max() <= 0.03, (sigma, error)  # bounded: 3% of the face's size at σ = 4 px
        errors.append(error.mean())
        nmes.append(result.nme.mean())
    assert all(later >= 0.9 * earlier for earlier, later in zip(errors, errors[1:])), errors  # monotone-ish
    assert errors[-1] > errors[0]
    assert all(later > earlier for earlier, later in zip(nmes, nmes[1:])), nmes  # the residual grows with σ


def test_fits_are_deterministic(fitter, truth):
    first, second = fitter.fit(truth[1][:4]), fitter.fit(truth[1][:4])
    for name in ("shape", "expression", "global_pose", "jaw_pose", "camera", "vertices", "nme"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_params_for_flame_npz(batch_fit, flame_assets):
    params = batch_fit.params(0)
    assert params["shape"].shape == (300,) and params["expression"].shape == (100,)
    assert not params["shape"][100:].any()  # FitConfig fits the first 100 identity components by default
    assert params["eye_pose"].shape == (6,) and params["camera"].shape == (3,)
    assert batch_fit.vertices.shape == (NUM_FACES, flame_assets.num_vertices, 3)


def test_depth_term_is_optional(flame_assets, flame_embedding, truth):
    landmarks_2d = truth[1][:2, :, :2].copy()  # no MediaPipe depth at all
    result = FlameFitter(flame_assets, flame_embedding, FitConfig(depth_weight=0.0)).fit(landmarks_2d)
    assert np.isfinite(result.vertices).all() and (result.nme < 0.02).all()


def test_float64_and_device_default(flame_assets, flame_embedding, truth):
    fitter = FlameFitter(flame_assets, flame_embedding, FitConfig(dtype=torch.float64, iterations=2))
    assert fitter.device.type == "cpu" and fitter.landmarks.rig.template.dtype == torch.float64
    assert np.isfinite(fitter.fit(truth[1][:1]).vertices).all()


@pytest.mark.parametrize("landmarks, message", [
    (np.zeros((2, 478)), r"\(B, N, 2\|3\)"),
    (np.zeros((0, 478, 3)), "no faces"),
    (np.zeros((1, 400, 3)), "at least 474"),
    (np.zeros((1, 478, 3)), "less than a pixel"),
    ([[1.0]], r"\(B, N, 2\|3\)"),
])
def test_bad_landmarks_are_named(fitter, landmarks, message):
    with pytest.raises(ValueError, match=message):
        fitter.fit(landmarks)


def test_nan_landmarks_are_named(fitter, truth):
    landmarks = truth[1][:1].copy()
    landmarks[0, 1, 0] = np.nan  # MediaPipe landmark 1 (nose tip) is embedded
    with pytest.raises(ValueError, match="NaN"):
        fitter.fit(landmarks)


@pytest.mark.parametrize("field, value, message", [
    ("iterations", -1, "iterations must be >= 0"),
    ("shape_prior", 0.0, "shape_prior must be > 0"),
    ("robust", "cauchy", "robust must be one of"),
    ("depth_weight", -0.1, "depth_weight must be >= 0"),
    ("num_shape", -3, "num_shape must be"),
    ("dtype", torch.float16, "dtype must be"),
])
def test_bad_config_is_named(flame_assets, flame_embedding, field, value, message):
    with pytest.raises(ValueError, match=message):
        FlameFitter(flame_assets, flame_embedding, FitConfig(**{field: value}))


@pytest.mark.parametrize("robust", ["huber", "l2"])
def test_other_robust_losses_fit(flame_assets, flame_embedding, truth, robust):
    result = FlameFitter(flame_assets, flame_embedding, FitConfig(robust=robust)).fit(truth[1][:2])
    assert (_error(result.vertices, truth[2][:2], _size(flame_assets)) <= 0.015).all()


def test_robust_loss_ignores_gross_outliers(fitter, flame_assets, flame_embedding, truth):
    _, landmarks, vertices = truth
    corrupted = landmarks.copy()
    wrong = flame_embedding.landmark_indices[[3, 20, 40, 60, 80, 100]]
    corrupted[:, wrong, :2] += np.array([35.0, -30.0])  # six landmarks ~46 px off
    robust = _error(fitter.fit(corrupted).vertices, vertices, _size(flame_assets))
    plain = _error(FlameFitter(flame_assets, flame_embedding, FitConfig(robust="l2")).fit(corrupted).vertices,
                   vertices, _size(flame_assets))
    assert robust.max() <= 0.01, robust
    assert robust.mean() < 0.6 * plain.mean(), (robust, plain)
