"""The skin-tone guard: corrects drift, leaves faithful avatars alone, records both tones."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actors.metrics.skin_tone import skin_tone
from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.tone_guard import ToneReport, guard_tone


@pytest.fixture(scope="module")
def realistic(aligned_faces):
    """The realistic avatar of each package photo (faithful to the input's tone)."""
    engine = OfflineStylizer()
    request = AvatarRequest()
    return {name: engine.stylize([face], "realistic", request, [0])[0] for name, face in aligned_faces.items()}


def lightened(avatar: StylizedImage, amount: float = 14.0) -> StylizedImage:
    """The avatar with its whole image lifted in L* and made less yellow: the typical generative drift."""
    lab = cv2.cvtColor(avatar.image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] = np.clip(lab[..., 0] + amount, 0, 100)
    lab[..., 2] *= 0.7
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    return StylizedImage(image=rgb, landmarks=avatar.landmarks)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_guard_corrects_a_lightened_avatar(aligned_faces, realistic, name):
    face = aligned_faces[name]
    drifted = lightened(realistic[name])
    image, report = guard_tone(drifted, face, threshold=4.0, enabled=True)
    assert isinstance(report, ToneReport)
    assert report.ita_raw - face.ita > 8.0  # the drift is real
    assert abs(report.ita_out - face.ita) <= 4.0
    assert abs(report.mst_out - face.mst) <= 1
    assert report.correction == pytest.approx(report.ita_out - report.ita_raw)
    assert report.correction < -8.0
    # Measured independently on the written image, with the avatar's own skin mask.
    from actors.align.skin_mask import skin_mask_from_landmarks

    ita, _ = skin_tone(image, skin_mask_from_landmarks(drifted.landmarks, image.shape))
    assert ita == pytest.approx(report.ita_out, abs=1e-6)


def test_guard_preserves_shading_and_leaves_the_background(aligned_faces, realistic):
    face = aligned_faces["grace_hopper"]
    drifted = lightened(realistic["grace_hopper"])
    image, _ = guard_tone(drifted, face, threshold=4.0, enabled=True)
    before = cv2.cvtColor(drifted.image, cv2.COLOR_RGB2Lab)[..., 0].astype(float)
    after = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)[..., 0].astype(float)
    skin = face.skin_mask
    # Shading survives: the skin's lightness pattern is the same up to an offset.
    assert np.corrcoef(before[skin], after[skin])[0, 1] > 0.95
    assert abs(np.std(after[skin]) - np.std(before[skin])) < 0.2 * np.std(before[skin])
    # Far from the face (top corners) nothing changes.
    assert np.array_equal(image[:40, :40], drifted.image[:40, :40])


def test_guard_leaves_a_faithful_avatar_untouched(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    avatar = realistic["astronaut"]
    image, report = guard_tone(avatar, face, threshold=4.0, enabled=True)
    assert abs(report.ita_raw - face.ita) <= 4.0
    assert image.tobytes() == avatar.image.tobytes()
    assert report.correction == 0.0
    assert (report.ita_out, report.mst_out) == (report.ita_raw, report.mst_raw)
    assert (report.ita_in, report.mst_in) == (face.ita, face.mst)


def test_disabled_guard_measures_but_does_not_correct(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    drifted = lightened(realistic["astronaut"])
    image, report = guard_tone(drifted, face, threshold=4.0, enabled=False)
    assert image.tobytes() == drifted.image.tobytes()
    assert report.ita_raw - face.ita > 8.0
    assert report.correction == 0.0 and report.ita_out == report.ita_raw


def test_guard_redetects_landmarks_when_the_engine_has_none(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    drifted = lightened(realistic["astronaut"])
    calls = []

    def landmarks_fn(image):
        calls.append(image.shape)
        return realistic["astronaut"].landmarks  # a detector that finds the face where it is

    blind = StylizedImage(image=drifted.image, landmarks=None)
    _, report = guard_tone(blind, face, threshold=4.0, enabled=True, landmarks_fn=landmarks_fn)
    assert calls == [(512, 512, 3)]
    assert report.mask_source == "detected"
    assert abs(report.ita_out - face.ita) <= 4.0


def test_guard_falls_back_to_the_input_mask(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    drifted = lightened(realistic["astronaut"])
    blind = StylizedImage(image=cv2.resize(drifted.image, (256, 256), interpolation=cv2.INTER_AREA), landmarks=None)
    image, report = guard_tone(blind, face, threshold=4.0, enabled=True, landmarks_fn=lambda image: None)
    assert report.mask_source == "input"
    assert image.shape == (256, 256, 3)
    assert abs(report.ita_out - face.ita) <= 4.0


def test_guard_rejects_bad_arguments(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    with pytest.raises(ValueError, match="threshold"):
        guard_tone(realistic["astronaut"], face, threshold=0.0, enabled=True)
    grey = StylizedImage(image=np.zeros((512, 512), np.uint8), landmarks=None)
    with pytest.raises(ValueError, match="uint8 RGB"):
        guard_tone(grey, face, threshold=4.0, enabled=True)
