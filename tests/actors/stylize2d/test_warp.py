"""The landmark-driven face warp: invertible, fold-free, landmarks carried."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actors.stylize2d.offline.anime import anime_warp
from actors.stylize2d.offline.warp import FaceWarp, Magnify, Slim


@pytest.mark.parametrize("amount", [1.0, 1.5])
def test_backward_map_inverts_the_forward_map(aligned_faces, amount):
    warp = anime_warp(aligned_faces["astronaut"].landmarks, amount)
    map_x, map_y = warp.backward_map((512, 512))
    ys, xs = np.mgrid[40:470:7, 40:470:7]
    sources = np.stack([map_x[ys, xs].ravel(), map_y[ys, xs].ravel()], axis=1)
    landed = warp.forward(sources)
    targets = np.stack([xs.ravel(), ys.ravel()], axis=1)
    assert np.abs(landed - targets).max() < 0.6


def test_anime_warp_does_not_fold(aligned_faces):
    for face in aligned_faces.values():
        warp = anime_warp(face.landmarks, 1.5)  # the strongest setting
        y, x = np.mgrid[0:512:2, 0:512:2].astype(np.float64)
        dx, dy = warp.displacement(x, y)
        fx, fy = x + dx, y + dy
        jxx, jxy = np.gradient(fx, axis=1) / 2, np.gradient(fx, axis=0) / 2
        jyx, jyy = np.gradient(fy, axis=1) / 2, np.gradient(fy, axis=0) / 2
        # Positive everywhere: areas shrink (nose, mouth) or grow (eyes) but never flip over.
        assert (jxx * jyy - jxy * jyx).min() > 0.1


def test_magnify_enlarges_and_shrinks_around_its_centre():
    grow = FaceWarp([Magnify((50.0, 50.0), 20.0, 0.5, 0.5)])
    shrink = FaceWarp([Magnify((50.0, 50.0), 20.0, -0.3, -0.3)])
    point = np.array([[55.0, 50.0]])
    assert grow.forward(point)[0, 0] > 57.0
    assert shrink.forward(point)[0, 0] < 54.0
    far = np.array([[150.0, 150.0]])
    assert np.allclose(grow.forward(far), far, atol=1e-6)


def test_slim_pulls_the_lower_face_in_and_leaves_the_top_alone():
    warp = FaceWarp([Slim(axis_x=100.0, top=50.0, full=100.0, bottom=150.0, half_width=60.0, amount=0.2, lift=0.1)])
    above, cheek = np.array([[60.0, 20.0]]), np.array([[60.0, 120.0]])
    assert np.allclose(warp.forward(above), above)
    moved = warp.forward(cheek)
    assert moved[0, 0] > 60.0 + 4.0 and moved[0, 1] < 120.0


def test_warped_image_follows_the_landmarks():
    # A dot drawn at a point must land where the forward map sends that point.
    image = np.zeros((200, 200), np.uint8)
    cv2.circle(image, (90, 100), 3, 255, -1)
    warp = FaceWarp([Magnify((100.0, 100.0), 40.0, 0.4, 0.4)])
    out = warp.apply(image, warp.backward_map((200, 200), step=2))
    ys, xs = np.nonzero(out > 127)
    expected = warp.forward(np.array([[90.0, 100.0]]))[0]
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0
