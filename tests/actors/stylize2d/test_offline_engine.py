"""The offline engine: sizes, landmarks, determinism per seed, validation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer

STYLES = ("anime", "cartoon", "realistic", "sketch")


@pytest.fixture(scope="module")
def engine():
    return OfflineStylizer()


@pytest.fixture(scope="module")
def astronaut(aligned_faces):
    return aligned_faces["astronaut"]


@pytest.mark.parametrize("style", STYLES)
def test_output_has_the_requested_size_and_landmarks(engine, astronaut, style):
    request = AvatarRequest(styles=(style,), size=256)
    [avatar] = engine.stylize([astronaut], style, request, [5])
    assert avatar.image.shape == (256, 256, 3) and avatar.image.dtype == np.uint8
    assert avatar.landmarks.shape == (478, 3)
    # Landmarks are in the avatar's pixels: the eyes sit near the template's eyes scaled by 256/512.
    eyes = avatar.landmarks[[468, 473], :2]
    assert np.allclose(eyes[:, 1], 215 * 0.5, atol=12)
    assert 0 < eyes[0, 0] < 128 < eyes[1, 0] < 256


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_gives_identical_bytes(engine, astronaut, style):
    request = AvatarRequest(styles=(style,))
    first = engine.stylize([astronaut], style, request, [11])[0].image
    second = engine.stylize([astronaut], style, request, [11])[0].image
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("style", STYLES)
def test_the_seed_changes_the_decoration_not_the_face(engine, astronaut, style):
    request = AvatarRequest(styles=(style,))
    a, b = (engine.stylize([astronaut], style, request, [seed])[0].image for seed in (1, 2))
    assert a.tobytes() != b.tobytes()
    skin = astronaut.skin_mask
    # The face keeps its colour: only grain and hatching differ, the median skin colour does not move.
    shift = np.abs(np.median(a[skin], axis=0) - np.median(b[skin], axis=0))
    assert shift.max() <= 2.0, shift


def test_batch_matches_single_items(engine, aligned_faces):
    faces = [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]
    request = AvatarRequest(styles=("cartoon",))
    batch = engine.stylize(faces, "cartoon", request, [3, 4])
    singles = [engine.stylize([face], "cartoon", request, [seed])[0] for face, seed in zip(faces, (3, 4))]
    for together, alone in zip(batch, singles):
        assert together.image.tobytes() == alone.image.tobytes()


def test_anime_warps_eyes_bigger_and_carries_the_landmarks(engine, astronaut):
    [avatar] = engine.stylize([astronaut], "anime", AvatarRequest(styles=("anime",)), [0])

    def eye_opening(lm):
        return (np.linalg.norm(lm[159, :2] - lm[145, :2]) + np.linalg.norm(lm[386, :2] - lm[374, :2])) / 2

    def mouth_width(lm):
        return np.linalg.norm(lm[61, :2] - lm[291, :2])

    # A modest enlargement: the person's eyes, a little larger (identity is tested on real photos).
    assert eye_opening(avatar.landmarks) > 1.12 * eye_opening(astronaut.landmarks)
    assert mouth_width(avatar.landmarks) < 0.97 * mouth_width(astronaut.landmarks)
    # Eyes stay on the template (the warp magnifies around them, it does not move them).
    assert np.allclose(avatar.landmarks[[468, 473], :2], astronaut.landmarks[[468, 473], :2], atol=3)


def test_unknown_style_is_a_precise_error(engine, astronaut):
    with pytest.raises(ValueError, match="'oil'.*anime"):
        engine.stylize([astronaut], "oil", AvatarRequest(), [0])


def test_one_seed_per_face_is_required(engine, astronaut):
    with pytest.raises(ValueError, match="2 seeds for 1 faces"):
        engine.stylize([astronaut], "sketch", AvatarRequest(styles=("sketch",)), [0, 1])


def test_a_face_without_skin_is_rejected(engine, astronaut):
    broken = dataclasses.replace(astronaut, skin_mask=np.zeros_like(astronaut.skin_mask))
    with pytest.raises(ValueError, match="skin_mask is empty"):
        engine.stylize([broken], "cartoon", AvatarRequest(styles=("cartoon",)), [0])


def test_a_grey_crop_is_rejected(engine, astronaut):
    broken = dataclasses.replace(astronaut, crop=astronaut.crop[..., 0])
    with pytest.raises(ValueError, match="face.crop"):
        engine.stylize([broken], "realistic", AvatarRequest(), [0])


@pytest.mark.parametrize("style", STYLES)
def test_strength_changes_the_look(engine, astronaut, style):
    gentle, strong = (engine.stylize([astronaut], style, AvatarRequest(styles=(style,), strength=s), [0])[0].image
                      for s in (0.2, 1.0))
    assert gentle.shape == strong.shape == (512, 512, 3)
    assert np.abs(gentle.astype(int) - strong.astype(int)).mean() > 0.5
