"""Shared image operations of the offline styles."""
from __future__ import annotations

import numpy as np
import pytest

from actors.stylize2d.offline.filters import (
    assign, band_lightness, kmeans_lab, median_lab, remove_specks, to_lab, to_rgb, wide_blur, xdog_lines,
)


def test_lab_round_trip_is_within_one_level():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.abs(to_rgb(to_lab(rgb)).astype(int) - rgb).max() <= 1


def test_lab_matches_the_metrics_module():
    from actors.metrics.skin_tone import srgb_to_lab

    rgb = np.array([[[160, 126, 86], [41, 36, 32], [246, 237, 228]]], np.uint8)
    assert np.allclose(to_lab(rgb), srgb_to_lab(rgb), atol=0.5)


def test_band_lightness_keeps_the_anchor_and_snaps_to_steps():
    ramp = np.tile(np.linspace(20, 90, 256, dtype=np.float32), (32, 1))
    banded = band_lightness(ramp, anchor=55.0, step=10.0, clean=1)
    # Away from band borders every pixel sits on anchor + n * step, the anchor itself included.
    expected = 55.0 + 10.0 * np.round((ramp[16] - 55.0) / 10.0)
    offset = (ramp[16] - 55.0) / 10.0
    interior = np.abs(offset - np.round(offset)) < 0.35
    assert np.allclose(banded[16][interior], expected[interior], atol=0.05)
    assert abs(banded[16, np.argmin(np.abs(ramp[16] - 55.0))] - 55.0) < 0.05


def test_band_lightness_limits_per_pixel():
    lightness = np.full((8, 8), 20.0, np.float32)
    banded = band_lightness(lightness, anchor=60.0, step=10.0, clean=1, lowest=-1, highest=0)
    assert np.allclose(banded, 50.0, atol=0.01)  # clamped to one band below the anchor


def test_xdog_lines_ink_edges_but_not_flat_dark_areas():
    image = np.full((64, 64), 40, np.uint8)  # dark, flat
    image[:, 32:] = 200  # one strong edge
    lines = xdog_lines(image, sigma=1.0, tau=0.01)
    assert lines[:, :20].min() > 0.99  # flat dark area: no fill
    assert lines[:, 26:32].min() < 0.2  # dark side of the edge: ink
    assert lines[:, 40:].min() > 0.99


def test_remove_specks_drops_small_blobs_only():
    ink = np.ones((40, 40), np.float32)
    ink[5, 5] = 0.0  # a speck
    ink[20:30, 10:30] = 0.0  # a stroke
    cleaned = remove_specks(ink, min_area=10)
    assert cleaned[5, 5] == 1.0
    assert cleaned[25, 20] == 0.0


def test_kmeans_keeps_fixed_centres_and_is_deterministic():
    rng = np.random.default_rng(1)
    samples = np.concatenate([rng.normal([30, 10, 10], 1, (200, 3)), rng.normal([70, -20, 40], 1, (200, 3))]).astype(np.float32)
    fixed = np.array([[50.0, 5.0, 15.0]], np.float32)
    a = kmeans_lab(samples, 2, fixed, seed=3)
    b = kmeans_lab(samples, 2, fixed, seed=3)
    assert np.array_equal(a, b)
    assert np.array_equal(a[0], fixed[0])
    found = sorted(a[1:].tolist())
    assert np.allclose(found, [[30, 10, 10], [70, -20, 40]], atol=1.0)
    labels = assign(samples[None], a)[0]
    assert set(labels[:200]) == {int(np.argmin(np.abs(a[:, 0] - 30)))}


def test_median_lab_drops_extremes_and_rejects_empty_masks():
    lab = np.zeros((10, 10, 3), np.float32)
    lab[..., 0] = 50.0
    lab[0, 0, 0] = 100.0
    assert median_lab(lab, np.ones((10, 10), bool))[0] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="empty"):
        median_lab(lab, np.zeros((10, 10), bool))


def test_wide_blur_matches_a_plain_gaussian():
    import cv2

    rng = np.random.default_rng(2)
    image = cv2.GaussianBlur(rng.random((128, 128)).astype(np.float32), (0, 0), 3.0)
    fast = wide_blur(image, 8.0)
    exact = cv2.GaussianBlur(image, (0, 0), 8.0)
    assert np.abs(fast - exact)[16:-16, 16:-16].max() < 0.02
