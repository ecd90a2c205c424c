"""The test-built skin-tone ladder itself: 20 inputs spanning the Monk scale, shading kept."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.skin_ladder import TONES, build_ladder, recolour_skin


@pytest.fixture(scope="module")
def ladder(aligned_faces):
    return build_ladder(aligned_faces)


def test_ladder_has_every_tone_for_every_photo(ladder):
    assert len(ladder) == 20
    assert [face.extras["ladder_tone"] for _, face in ladder] == list(TONES) * 2


def test_each_rung_measures_as_its_monk_tone(ladder):
    for name, face in ladder:
        assert abs(face.mst - face.extras["ladder_tone"]) <= 1, name
    exact = sum(face.mst == face.extras["ladder_tone"] for _, face in ladder)
    assert exact >= 18


def test_ita_falls_monotonically_down_the_ladder(ladder):
    for start in (0, 10):
        itas = [face.ita for _, face in ladder[start : start + 10]]
        assert all(a > b for a, b in zip(itas, itas[1:])), itas
        assert itas[0] > 55 and itas[-1] < -30  # very light to dark


def test_recolouring_keeps_shading_and_leaves_the_rest(aligned_faces):
    face = aligned_faces["grace_hopper"]
    dark = recolour_skin(face, 8)
    before = cv2.cvtColor(face.crop, cv2.COLOR_RGB2Lab)[..., 0].astype(float)
    after = cv2.cvtColor(dark.crop, cv2.COLOR_RGB2Lab)[..., 0].astype(float)
    skin = face.skin_mask
    assert np.corrcoef(before[skin], after[skin])[0, 1] > 0.9
    assert np.array_equal(dark.crop[:30, :30], face.crop[:30, :30])  # background corner untouched
    assert dark.landmarks is face.landmarks or np.array_equal(dark.landmarks, face.landmarks)


def test_unknown_tone_is_rejected(aligned_faces):
    with pytest.raises(ValueError, match="1..10"):
        recolour_skin(aligned_faces["astronaut"], 11)
