"""Similarity fit, warp and anchor methods (no MediaPipe needed)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actors.align.anchors import anchor_points, eye_similarity, source_to_crop, template_points
from actors.align.detection import _rotation_back
from actors.align.template import LEFT_IRIS, MOUTH_CORNERS, RIGHT_IRIS, TEMPLATE_POINTS
from actors.align.warp import compose, estimate_similarity, similarity_scale, transform_points, warp_similarity


def _similarity(angle_deg, scale, tx, ty):
    a = np.radians(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_estimate_similarity_recovers_a_known_transform():
    truth = _similarity(37, 1.7, 12.0, -5.0)
    source = np.random.default_rng(0).uniform(0, 300, (6, 2))
    target = transform_points(source, truth)
    np.testing.assert_allclose(estimate_similarity(source, target), truth, atol=1e-9)


def test_estimate_similarity_never_mirrors():
    source = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    target = source * [-1, 1]  # a reflection: the best similarity must stay a rotation
    matrix = estimate_similarity(source, target)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize("source, target", [(np.zeros((3, 2)), np.ones((3, 2))), (np.ones((1, 2)), np.ones((1, 2)))])
def test_estimate_similarity_rejects_degenerate_points(source, target):
    with pytest.raises(ValueError):
        estimate_similarity(source, target)


def test_transform_points_scales_depth():
    matrix = _similarity(90, 2.0, 5.0, 0.0)
    out = transform_points(np.array([[1.0, 0.0, 3.0]]), matrix)
    np.testing.assert_allclose(out, [[5.0, 2.0, 6.0]], atol=1e-12)
    assert similarity_scale(matrix) == pytest.approx(2.0)
    np.testing.assert_allclose(compose(cv2.invertAffineTransform(matrix), matrix), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def _centroid(image):
    weights = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


@pytest.mark.parametrize("scale", [0.2, 0.6, 1.0, 2.5])
def test_warp_puts_a_point_where_the_matrix_says(scale):
    image = np.zeros((1200, 1000, 3), np.uint8)
    image[600:612, 400:412] = 255  # a square centred on (405.5, 605.5)
    matrix = _similarity(25, scale, 0, 0)
    matrix[:, 2] += 128 - transform_points(np.array([[405.5, 605.5]]), matrix)[0]
    out = warp_similarity(image, matrix, 256)
    np.testing.assert_allclose(_centroid(out), [128, 128], atol=0.3)


def test_warp_shrinks_without_aliasing():
    stripes = np.zeros((2000, 2000, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes average to mid-grey when shrunk properly
    out = warp_similarity(stripes, _similarity(0, 0.25, 0, 0), 256)
    assert abs(out.mean() - 127.5) < 3 and out.std() < 5


def test_warp_borders():
    image = np.full((100, 100, 3), 200, np.uint8)
    shift = _similarity(0, 1.0, 50, 0)  # the left 50 columns come from outside the photo
    assert warp_similarity(image, shift, 100, "constant")[:, :40].max() == 0
    assert warp_similarity(image, shift, 100, "reflect")[:, :40].min() == 200
    with pytest.raises(ValueError, match="border"):
        warp_similarity(image, shift, 100, "wrap")


def _landmarks_from_anchors(left, right, mouth, depth=(0.0, 0.0)):
    landmarks = np.zeros((478, 3))
    landmarks[LEFT_IRIS] = [*left, depth[0]]
    landmarks[RIGHT_IRIS] = [*right, depth[1]]
    landmarks[list(MOUTH_CORNERS), :2] = [np.subtract(mouth, (10, 0)), np.add(mouth, (10, 0))]
    return landmarks


def test_eye_method_pins_the_eyes():
    # A rotated face with a long mouth-to-eye distance: the eyes still land on the template.
    truth = _similarity(-40, 0.5, 30, 70)
    anchors = transform_points(TEMPLATE_POINTS.astype(np.float64) + [[0, 0], [0, 0], [0, 40]], cv2.invertAffineTransform(truth))
    landmarks = _landmarks_from_anchors(*anchors)
    placed = anchor_points(transform_points(landmarks, eye_similarity(landmarks, 512)))
    np.testing.assert_allclose(placed[:2], TEMPLATE_POINTS[:2], atol=1e-9)
    assert placed[2][1] == pytest.approx(TEMPLATE_POINTS[2][1] + 40)
    # Least squares spreads the same 40 px miss over all three points.
    ls = anchor_points(transform_points(landmarks, source_to_crop(landmarks, 512, "least_squares")))
    assert np.linalg.norm(ls - TEMPLATE_POINTS, axis=1).min() > 5


def test_eye_method_scale_uses_depth():
    # Eyes 120 px apart in 3D but foreshortened to 96 px in the image (a turned head): the crop keeps
    # the 3D size, so the eyes land 150 × 96 / 120 = 120 px apart.
    landmarks = _landmarks_from_anchors((100, 100), (196, 100), (148, 200), depth=(-36.0, 36.0))
    placed = anchor_points(transform_points(landmarks, eye_similarity(landmarks, 512)))
    assert np.linalg.norm(placed[1] - placed[0]) == pytest.approx(120.0)
    np.testing.assert_allclose((placed[0] + placed[1]) / 2, TEMPLATE_POINTS[:2].mean(axis=0))


def test_template_scales_and_unknown_method():
    np.testing.assert_allclose(template_points(256), TEMPLATE_POINTS / 2)
    with pytest.raises(ValueError, match="alignment method"):
        source_to_crop(np.zeros((478, 3)), 512, "affine")


@pytest.mark.parametrize("k", [1, 3])
def test_rotation_back_maps_pixels(k):
    image = np.arange(5 * 7).reshape(5, 7)
    turned = np.rot90(image, k)
    back = _rotation_back(k, *image.shape)
    for y in range(turned.shape[0]):
        for x in range(turned.shape[1]):
            sx, sy = back @ [x, y, 1]
            assert image[int(sy), int(sx)] == turned[y, x]
