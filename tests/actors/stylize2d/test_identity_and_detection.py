"""Acceptance: realistic keeps identity; realistic and cartoon avatars are still faces."""
from __future__ import annotations

import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer

PHOTOS = ("astronaut", "grace_hopper")


@pytest.fixture(scope="module")
def avatars(aligned_faces):
    engine = OfflineStylizer()
    return {(name, style): engine.stylize([aligned_faces[name]], style, AvatarRequest(styles=(style,)), [0])[0]
            for name in PHOTOS for style in ("realistic", "cartoon")}


@pytest.mark.parametrize("name", PHOTOS)
def test_realistic_keeps_sface_identity(aligned_faces, avatars, name):
    from actors.metrics.identity import IdentityModel

    cosine, reason = IdentityModel().similarity(aligned_faces[name].crop, avatars[(name, "realistic")].image)
    assert reason == ""
    assert cosine >= 0.5


@pytest.mark.parametrize("style", ["realistic", "cartoon"])
@pytest.mark.parametrize("name", PHOTOS)
def test_face_is_still_detected(avatars, name, style):
    import numpy as np

    from actors.align.aligner import FaceAligner

    avatar = avatars[(name, style)]
    with FaceAligner() as aligner:
        landmarks = aligner.landmarks(avatar.image)
    assert landmarks is not None
    # ... and where the engine says it is.
    inter_ocular = np.linalg.norm(avatar.landmarks[468, :2] - avatar.landmarks[473, :2])
    error = np.linalg.norm(landmarks[:, :2] - avatar.landmarks[:, :2], axis=1).mean()
    assert error < 0.1 * inter_ocular


def test_anime_returns_the_landmarks_of_the_warped_face(aligned_faces):
    """Landmarks re-detected on the anime avatar match the carried ones, not the input's, at the jaw."""
    import numpy as np

    from actors.align.aligner import FaceAligner

    face = aligned_faces["astronaut"]
    avatar = OfflineStylizer().stylize([face], "anime", AvatarRequest(styles=("anime",)), [0])[0]
    with FaceAligner() as aligner:
        detected = aligner.landmarks(avatar.image)
    assert detected is not None
    jaw = [152, 148, 176, 377, 400]
    carried_error = np.linalg.norm(detected[jaw, :2] - avatar.landmarks[jaw, :2], axis=1).mean()
    input_error = np.linalg.norm(detected[jaw, :2] - face.landmarks[jaw, :2], axis=1).mean()
    assert carried_error < 0.6 * input_error
