"""The diffusers engine's avatars through the same tone guard, on the tiny pipeline (tests/tiny_sd.py).

The tiny model's images are not faces: no landmarks come back and none are found on them, so the guard
measures on the input's landmarks scaled to the avatar (source "input") and still gives every figure.
"""
from __future__ import annotations

import numpy as np
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.diffusers_engine import DiffusersOptions, DiffusersStylizer
from actors.stylize2d.tone_guard import guard_tone
from dataset.schema import TONE_COLUMNS

REQUEST = AvatarRequest(engine="diffusers", size=256, strength=0.7)


@pytest.fixture(scope="module")
def generated(tiny_sd, aligned_faces):
    """[(face, StylizedImage)] for both package photos, one batch, per-item seeds."""
    options = DiffusersOptions(base_model=str(tiny_sd), steps=3, resolution=32, batch_size=2)
    engine = DiffusersStylizer(options, device="cpu")
    faces = [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]
    return list(zip(faces, engine.stylize(faces, "anime", REQUEST, [21, 22])))


def test_every_item_gets_the_figures(generated):
    for face, avatar in generated:
        assert avatar.landmarks is None and avatar.image.shape == (256, 256, 3)
        image, report = guard_tone(avatar, face, landmarks_fn=lambda rgb: None)
        assert report.mask_source == "input"
        assert {d.mask for d in report.after.deltas} == {"skin", "oval"}
        columns = report.columns()
        assert tuple(columns) == TONE_COLUMNS
        assert all(np.isfinite(v) for k, v in columns.items() if isinstance(v, float))
        assert image.shape == avatar.image.shape and image.dtype == np.uint8


def test_no_face_to_recolour_is_measured_not_painted(generated):
    """The tiny model draws coloured noise, not a face: with no landmarks of its own and skin colours far
    from the input's, the guard reports the drift and leaves the image alone (no face-shaped paint)."""
    for face, avatar in generated:
        image, report = guard_tone(avatar, face, landmarks_fn=lambda rgb: None)
        assert report.delta_e_raw > 15.0 and not report.tone_ok and not report.skin_ok
        assert report.passes == 0 and report.correction == 0.0
        assert image.tobytes() == avatar.image.tobytes()


def test_a_face_without_landmarks_is_still_corrected(aligned_faces):
    """What a real diffusion avatar looks like to the guard: the face where the input's was, no landmarks
    from the engine, none detected; lighter and cooler than the input."""
    import cv2

    from actors.stylize2d.protocol import StylizedImage

    face = aligned_faces["grace_hopper"]
    lab = cv2.cvtColor(cv2.resize(face.crop, (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lab[..., 0] += 6.0
    lab[..., 2] *= 0.8
    avatar = StylizedImage(np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8), None)
    image, report = guard_tone(avatar, face, landmarks_fn=lambda rgb: None)
    assert report.mask_source == "input"
    assert report.lightening_raw > 3.0 and report.tone_ok and report.passes >= 1
    assert not np.array_equal(image, avatar.image)
