"""The batched landmark fit: synthetic recovery (targets only), the pose solver, input checks."""
import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from actors.reconstruct3d.makehuman import MakeHumanHeadEngine, MakeHumanOptions
from actors.reconstruct3d.makehuman.expressions import ARKIT_NAMES
from actors.reconstruct3d.makehuman.fit import FitSettings, check_landmarks, fit_landmarks, weighted_similarity


@pytest.fixture(scope="module")
def targets_only(makehuman_engine):
    """The default engine's model, fitted without the residual field (shape targets only)."""
    engine = MakeHumanHeadEngine(MakeHumanOptions(residual=False))
    engine._loaded = dataclasses.replace(makehuman_engine.loaded, residual=None)
    return engine


def _synthetic(model, count, amplitude, seed):
    """Random shape weights, expressions and poses → (crop landmarks, true neutral vertices, scores)."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(-amplitude, amplitude, (count, len(model.shape.names)))
    scores = rng.uniform(0.0, 1.0, (count, 52)) * (rng.random((count, 52)) < 0.15)
    rotations = Rotation.from_euler("yxz", rng.uniform(-25, 25, (count, 3)), degrees=True).as_matrix()
    neutral = model.template[None] + model.shape.offsets(weights)
    posed = neutral[:, : model.num_vertices] + np.einsum("be,evd->bvd", scores, model.expressions[:, : model.num_vertices])
    camera = rng.uniform(2000, 3000, (count, 1, 1)) * np.einsum("bij,blj->bli", rotations, model.landmarks(posed))
    camera += np.c_[rng.uniform(200, 300, (count, 2)), rng.uniform(-30, 30, count)][:, None]
    crop = camera * np.array([1.0, -1.0, -1.0]) + np.array([0.0, 512.0, 0.0])
    return crop, neutral[:, : model.num_vertices], [dict(zip(ARKIT_NAMES, row)) for row in scores]


def test_synthetic_recovery_with_targets_only(targets_only):
    """Random shape-target weights (±0.5), expressions and poses → landmarks → fit: mean vertex error
    of the neutral head ≤ 1% of the head's height, with no alignment of the result."""
    model = targets_only.model
    crop, truth, scores = _synthetic(model, 16, 0.5, seed=7)
    meshes = targets_only.reconstruct_landmarks(crop, scores)
    chin_to_crown = truth[0][:, 1].max() - model.landmarks(truth[0])[152, 1]  # crown to the chin landmark
    assert 0.18 < chin_to_crown < 0.28
    errors = np.array([np.linalg.norm(mesh.vertices - truth[b], axis=1).mean() for b, mesh in enumerate(meshes)])
    assert errors.max() <= 0.01 * chin_to_crown
    assert all(mesh.landmark_nme < 0.01 for mesh in meshes)


def test_fit_is_batch_independent(targets_only):
    crop, _, scores = _synthetic(targets_only.model, 3, 0.5, seed=3)
    together = targets_only.reconstruct_landmarks(crop, scores)
    alone = targets_only.reconstruct_landmarks(crop[1:2], scores[1:2])
    np.testing.assert_allclose(together[1].vertices, alone[0].vertices, atol=1e-5)


def test_weighted_similarity_matches_scipy():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(2, 50, 3))
    rotation = Rotation.random(2, random_state=1).as_matrix()
    target = 3.0 * np.einsum("bij,blj->bli", rotation, source) + np.array([1.0, -2.0, 0.5])
    scale, found, translation = weighted_similarity(source, target, np.ones((2, 50)))
    np.testing.assert_allclose(scale, 3.0)
    for b in range(2):
        reference, _ = Rotation.align_vectors(target[b] - target[b].mean(axis=0), source[b] - source[b].mean(axis=0))
        np.testing.assert_allclose(found[b], reference.as_matrix(), atol=1e-8)


def test_robust_weights_ignore_a_few_wild_landmarks(targets_only):
    crop, truth, scores = _synthetic(targets_only.model, 1, 0.4, seed=11)
    spoiled = crop.copy()
    spoiled[0, [61, 291, 152, 10, 234], :2] += 60.0  # five landmarks thrown 60 px off
    clean = targets_only.reconstruct_landmarks(crop, scores)[0]
    dirty = targets_only.reconstruct_landmarks(spoiled, scores)[0]
    assert np.linalg.norm(dirty.vertices - clean.vertices, axis=1).mean() < 0.002  # m


@pytest.mark.parametrize(
    "landmarks, message",
    [
        (np.zeros((2, 468, 3)), "478, 3"),
        (np.full((1, 478, 3), np.nan), "NaN"),
        (np.zeros((1, 478, 3)), "iris centres coincide"),
    ],
)
def test_landmark_checks(landmarks, message):
    with pytest.raises(ValueError, match=message):
        check_landmarks(landmarks)


@pytest.mark.parametrize(
    "settings, message",
    [
        (FitSettings(iterations=0), "iterations"),
        (FitSettings(noise_m=0.0), "noise_m"),
        (FitSettings(depth_weight=1.5), "depth_weight"),
        (FitSettings(robust_scale=0.0), "robust_scale"),
        (FitSettings(expression_spread=0.0), "expression_spread"),
    ],
)
def test_settings_checks(settings, message):
    with pytest.raises(ValueError, match=message):
        settings.check_inputs()


def test_expressions_must_match_the_batch(targets_only):
    crop, _, _ = _synthetic(targets_only.model, 2, 0.1, seed=1)
    with pytest.raises(ValueError, match="expressions must be"):
        fit_landmarks(targets_only.loaded.basis, crop, np.zeros((1, 52)))
