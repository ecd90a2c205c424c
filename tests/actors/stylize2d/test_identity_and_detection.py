"""Identity at the edges of the strength range, and the detector still finds the drawn faces.

The identity targets at the default strength are tested on every real photo in
test_offline_real_photos.py; here: even the strongest setting keeps the person (SFace above the
same-person threshold) and the gentlest one keeps them better.
"""
from __future__ import annotations

import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer

PHOTOS = ("astronaut", "grace_hopper")
STYLES = ("anime", "cartoon", "sketch", "realistic")


@pytest.fixture(scope="module")
def identity():
    from actors.metrics.identity import IdentityModel

    return IdentityModel()


@pytest.fixture(scope="module")
def cosines(aligned_faces, identity):
    """(photo, style, strength) → SFace cosine of the avatar to the aligned input."""
    engine = OfflineStylizer()
    out = {}
    for name in PHOTOS:
        for style in STYLES:
            for strength in (0.2, 1.0):
                request = AvatarRequest(styles=(style,), strength=strength)
                [avatar] = engine.stylize([aligned_faces[name]], style, request, [0])
                out[(name, style, strength)], _ = identity.similarity(aligned_faces[name].crop, avatar.image)
    return out


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", PHOTOS)
def test_the_strongest_setting_keeps_the_person(cosines, name, style):
    from actors.metrics.identity import SAME_PERSON_THRESHOLD

    strong = cosines[(name, style, 1.0)]
    assert strong is not None and strong > SAME_PERSON_THRESHOLD, strong


@pytest.mark.parametrize("style", ("anime", "cartoon"))
@pytest.mark.parametrize("name", PHOTOS)
def test_a_gentler_setting_keeps_more_of_the_person(cosines, name, style):
    assert cosines[(name, style, 0.2)] > cosines[(name, style, 1.0)]
