"""The landmark skin mask, and the skin tone the aligner measures with it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actors.align import skin_mask as sm
from actors.align.skin_mask import skin_mask_from_landmarks

PHOTOS = ("astronaut", "grace_hopper")


def test_contours_follow_mediapipe_edges():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    edges = {frozenset(e) for e in fmc.FACEMESH_TESSELATION}
    contour_edges = {
        frozenset(e)
        for name in ("FACEMESH_FACE_OVAL", "FACEMESH_LEFT_EYE", "FACEMESH_RIGHT_EYE", "FACEMESH_LEFT_EYEBROW",
                     "FACEMESH_RIGHT_EYEBROW", "FACEMESH_LIPS", "FACEMESH_NOSE")
        for e in getattr(fmc, name)
    }
    polygons = (sm.FACE_OVAL, sm.RIGHT_EYE, sm.LEFT_EYE, sm.OUTER_LIPS)
    for polygon in polygons:
        for a, b in zip(polygon, polygon[1:] + polygon[:1]):
            assert frozenset((a, b)) in contour_edges, (a, b)
    for polygon in (sm.RIGHT_BROW, sm.LEFT_BROW, sm.NOSTRILS):  # closed across the contour's ends
        for a, b in zip(polygon, polygon[1:]):
            assert frozenset((a, b)) in contour_edges | edges, (a, b)
    assert len(set(sm.FACE_OVAL)) == len(fmc.FACEMESH_FACE_OVAL)


def _inside(mask, point) -> bool:
    return bool(mask[int(round(point[1])), int(round(point[0]))])


@pytest.mark.parametrize("name", PHOTOS)
def test_mask_excludes_features_and_keeps_cheeks(aligned_faces, name):
    face = aligned_faces[name]
    mask, lm = face.skin_mask, face.landmarks
    assert mask.sum() > 0.08 * mask.size  # a real face area, not a sliver
    for index in (468, 473):  # iris centres
        assert not _inside(mask, lm[index])
    for brow in ((105, 52), (334, 282)):  # brow centres
        assert not _inside(mask, lm[list(brow)].mean(axis=0))
    assert not _inside(mask, lm[[13, 14]].mean(axis=0))  # mouth centre
    for lip in (0, 17):  # upper and lower lip, outer edge
        assert not _inside(mask, lm[lip])
    assert not _inside(mask, lm[[98, 2]].mean(axis=0))  # a nostril
    for cheek in (50, 280, 205, 425):
        assert _inside(mask, lm[cheek])
    assert _inside(mask, lm[151])  # forehead
    # Nothing outside the face oval.
    oval = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(lm[list(sm.FACE_OVAL), :2]).astype(np.int32)], 1)
    assert not (mask & (oval == 0)).any()


def test_mask_moves_with_the_landmarks(aligned_faces):
    lm = aligned_faces["astronaut"].landmarks
    base = skin_mask_from_landmarks(lm, (512, 512))
    shifted = skin_mask_from_landmarks(lm + [40, 0, 0], (512, 512, 3))
    np.testing.assert_array_equal(shifted[:, 40:], base[:, :-40])
    # 2-column landmarks are enough; the image may be a different size.
    small = skin_mask_from_landmarks(lm[:, :2] / 2, (256, 256))
    assert small.shape == (256, 256) and abs(small.sum() * 4 / base.sum() - 1) < 0.1


@pytest.mark.parametrize(
    "landmarks, shape, message",
    [
        (np.zeros((468, 3)), (512, 512), "478"),
        (np.zeros((478, 1)), (512, 512), "478"),
        (np.full((478, 2), np.nan), (512, 512), "NaN"),
        (np.zeros((478, 2)), (0, 512), "positive"),
    ],
)
def test_bad_mask_inputs(landmarks, shape, message):
    with pytest.raises(ValueError, match=message):
        skin_mask_from_landmarks(landmarks, shape)


def _recolour_skin(aligner, photo, lightness, yellow):
    """Scale L* and b* of the face skin of `photo` (a darker or lighter person, same shading)."""
    from skimage.color import lab2rgb, rgb2lab

    region = skin_mask_from_landmarks(aligner.landmarks(photo), photo.shape, feature_margin=0.0, oval_margin=0.0)
    lab = rgb2lab(photo[region][None].astype(np.float64) / 255.0)[0]
    lab[:, 0] *= lightness
    lab[:, 2] *= yellow
    out = photo.copy()
    out[region] = np.clip(np.round(lab2rgb(lab[None])[0] * 255), 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("name", PHOTOS)
def test_darker_skin_lowers_ita_and_raises_mst(aligner, aligned_faces, package_photos, name):
    photo = package_photos[name]
    original = aligned_faces[name]
    darker = aligner.align(_recolour_skin(aligner, photo, lightness=0.6, yellow=1.2))
    lighter = aligner.align(_recolour_skin(aligner, photo, lightness=1.15, yellow=0.8))
    assert darker.ita < original.ita - 15 and darker.mst > original.mst
    assert lighter.ita > original.ita + 5 and lighter.mst <= original.mst


def test_skin_tone_is_stable_under_rotation_and_scale(aligner, aligned_faces, package_photos):
    from tests.actors.align.photos import rotate, scale

    photo, reference = package_photos["grace_hopper"], aligned_faces["grace_hopper"]
    for variant in (rotate(photo, 30), scale(photo, 0.5)):
        face = aligner.align(variant)
        assert abs(face.ita - reference.ita) < 3 and abs(face.mst - reference.mst) <= 1


@pytest.mark.parametrize("name", PHOTOS)
def test_sampled_skin_tone_matches_the_full_mask(aligned_faces, name):
    from actors.metrics.skin_tone import skin_tone

    face = aligned_faces[name]  # measured on every 2nd pixel by default
    ita, mst = skin_tone(face.crop, face.skin_mask)
    assert abs(face.ita - ita) < 0.5 and face.mst == mst
