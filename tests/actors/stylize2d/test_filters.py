"""Shared image operations of the offline styles."""
from __future__ import annotations

import numpy as np
import pytest

from actors.stylize2d.offline.filters import (
    assign, band_lightness, drifting_steps, kmeans_lab, median_lab, remove_specks, to_lab, to_rgb, wide_blur,
    xdog_lines,
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


def _median_errors(posterised: np.ndarray, values: np.ndarray) -> np.ndarray:
    """|median(posterised) − median(values)| over 200 seeded rectangles, each a quarter to all of the image."""
    rng = np.random.default_rng(7)
    h, w = values.shape
    errors = []
    for _ in range(200):
        rh, rw = rng.integers(h // 2, h + 1), rng.integers(w // 2, w + 1)
        y, x = rng.integers(0, h - rh + 1), rng.integers(0, w - rw + 1)
        box = (slice(y, y + rh), slice(x, x + rw))
        errors.append(abs(float(np.median(posterised[box]) - np.median(values[box]))))
    return np.array(errors)


def test_drifting_steps_keep_the_median_of_any_region_where_fixed_steps_snap_it():
    """Skin detail posterised into 5-unit steps: with fixed levels the median of a region snaps to a
    level, up to half a step off, depending on the outline; with levels drifting two steps across the
    image every pixel is still within half a step and flat steps remain, but no region's median snaps."""
    h, w = 256, 256
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    values = (6.0 * np.sin(x / 23.0) + 5.0 * np.cos(y / 31.0) + 0.04 * (x - y)).astype(np.float32)
    fixed = drifting_steps(values, 5.0, 0.0, clean=1)
    drifting = drifting_steps(values, 5.0, 2.0, clean=1)
    assert np.allclose(fixed, band_lightness(values, 0.0, 5.0, clean=1))
    interior = (slice(4, -4), slice(4, -4))  # away from the antialiased borders of the half-size map
    assert np.abs(drifting - values)[interior].max() < 2.5 + 0.3
    # flat steps remain: most pixels' neighbours hold the same level
    assert np.mean(np.abs(np.diff(drifting, axis=1)) < 0.2) > 0.8
    fixed_errors, drifting_errors = _median_errors(fixed, values), _median_errors(drifting, values)
    assert fixed_errors.max() > 1.5, fixed_errors.max()
    assert drifting_errors.max() < 0.75 * fixed_errors.max(), (drifting_errors.max(), fixed_errors.max())
    assert drifting_errors.mean() < 0.6 * fixed_errors.mean(), (drifting_errors.mean(), fixed_errors.mean())


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
