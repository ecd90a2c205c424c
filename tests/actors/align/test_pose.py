"""Head pose: exact on synthetic landmarks, consistent on real photos."""
from __future__ import annotations

import numpy as np
import pytest

from actors.align.pose import REFERENCE_INDICES, REFERENCE_POINTS, euler_from_rotation, head_pose
from tests.actors.align.photos import rotate


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _posed_landmarks(yaw, pitch, roll, scale=12.0, offset=(300.0, 250.0)) -> np.ndarray:
    """478 landmarks in image pixels (y down, z smaller = closer) of the reference head posed as given."""
    rotation = _rz(np.radians(roll)) @ _ry(np.radians(yaw)) @ _rx(np.radians(-pitch))
    camera = scale * REFERENCE_POINTS @ rotation.T  # x right, y up, z toward the camera
    landmarks = np.zeros((478, 3))
    landmarks[REFERENCE_INDICES] = camera * [1, -1, -1] + [offset[0], offset[1], 0]
    return landmarks


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-40, 10, 5), (10, -25, -15), (5, 15, 80), (-20, -5, -100)])
def test_synthetic_pose_is_recovered(angles):
    np.testing.assert_allclose(head_pose(_posed_landmarks(*angles)), angles, atol=1e-6)


def test_synthetic_signs():
    # Nose toward image right ⇒ yaw > 0; nose up (smaller image y) ⇒ pitch > 0.
    turned = _posed_landmarks(30, 0, 0)
    nose, centre = turned[1], turned[REFERENCE_INDICES].mean(axis=0)
    assert nose[0] > centre[0] and head_pose(turned)[0] > 0
    raised = _posed_landmarks(0, 30, 0)
    assert raised[1][1] < _posed_landmarks(0, 0, 0)[1][1] and head_pose(raised)[1] > 0


def test_synthetic_mirror_negates_yaw_and_roll():
    landmarks = _posed_landmarks(25, 12, 8)
    mirrored = landmarks.copy()
    mirrored[:, 0] = 1000 - mirrored[:, 0]
    # Mirroring also swaps which anatomical point sits at each index; swap the reference pairs back.
    pairs = {98: 327, 33: 263, 133: 362, 234: 454, 127: 356, 116: 345, 50: 280}
    for a, b in pairs.items():
        mirrored[[a, b]] = mirrored[[b, a]]
    np.testing.assert_allclose(head_pose(mirrored), (-25, 12, -8), atol=1e-6)


def test_euler_of_identity_is_zero():
    assert euler_from_rotation(np.eye(3)) == (0.0, 0.0, 0.0)


def test_pose_needs_3d_landmarks():
    with pytest.raises(ValueError, match="478"):
        head_pose(np.zeros((478, 2)))


def test_turned_face_and_its_mirror(aligner, cameraman):
    # The cameraman looks to image right: clear positive yaw; the mirror image turns it negative.
    yaw, pitch, _ = head_pose(aligner.landmarks(cameraman))
    mirrored_yaw, mirrored_pitch, _ = head_pose(aligner.landmarks(np.ascontiguousarray(cameraman[:, ::-1])))
    assert yaw > 30 and mirrored_yaw < -30
    assert abs(yaw + mirrored_yaw) < 5 and abs(pitch - mirrored_pitch) < 5


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_mirror_flips_roll_and_keeps_near_frontal_yaw_small(aligner, package_photos, name):
    photo = package_photos[name]
    yaw, _, roll = aligner.align(photo).pose
    m_yaw, _, m_roll = aligner.align(np.ascontiguousarray(photo[:, ::-1])).pose
    assert abs(yaw) < 10 and abs(m_yaw) < 10
    assert abs(roll + m_roll) < 3 and abs(yaw + m_yaw) < 3


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_rotating_the_photo_changes_roll_only(aligner, package_photos, name):
    photo = package_photos[name]
    yaw, pitch, roll = aligner.align(photo).pose
    r_yaw, r_pitch, r_roll = aligner.align(rotate(photo, 20)).pose  # +20°: counter-clockwise
    assert abs((r_roll - roll) - 20) < 2.5
    assert abs(r_yaw - yaw) < 3 and abs(r_pitch - pitch) < 3


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("degrees", [0, 35, -60])
def test_roll_matches_the_eye_line_in_the_source(aligner, package_photos, name, degrees):
    photo = rotate(package_photos[name], degrees)
    points = aligner.landmarks(photo)
    dx, dy = points[473, :2] - points[468, :2]
    eye_line = np.degrees(np.arctan2(-dy, dx))  # counter-clockwise as displayed
    assert abs(head_pose(points)[2] - eye_line) < 3
    assert abs(aligner.align(photo).pose[2] - eye_line) < 3
