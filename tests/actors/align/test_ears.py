"""Ears the segmenter half-saw are given back to the person mask, and nothing else moves.

Synthetic scenes check the rule piece by piece (a speckled ear joins, background and islands do not,
sure pixels never change); the real photo checks it where it was seen: man_south_asian's lit ear in
front of bright blinds, which the segmenter returns as a speckle of mid confidences.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from actors.align import ears
from actors.align.skin_mask import FACE_OVAL
from tests.real_faces import FACES_DIR, load_rgb

SIZE = 512
CENTRE, AXES = (256.0, 270.0), (150.0, 200.0)
SKIN = (150, 100, 75)  # medium brown
LIT_SKIN = (185, 130, 100)  # the same skin where light falls on it (an ear is often lit)
BLINDS = ((235, 225, 170), (250, 245, 225))  # pale yellow and white slats


def _landmarks() -> np.ndarray:
    """478 points, the face oval's in MediaPipe's order on an ellipse (the only ones the rule reads)."""
    points = np.full((478, 3), np.nan, np.float32)
    for index, point in enumerate(FACE_OVAL):
        t = 2.0 * np.pi * index / len(FACE_OVAL)  # from the top towards image left, as MediaPipe's order
        points[point] = (CENTRE[0] - AXES[0] * np.sin(t), CENTRE[1] - AXES[1] * np.cos(t), 0.0)
    return points


def _scene(ear_colour=LIT_SKIN, ear_confidence=None):
    """(crop, mask, landmarks, skin mask, ear): a face in front of blinds, an ear beside its image-left
    side whose mask is speckled (`ear_confidence(rng, shape)`, default: mid confidences with holes)."""
    landmarks = _landmarks()
    rows = np.arange(SIZE)[:, None] // 6 % 2
    crop = np.where(rows[..., None] == 0, BLINDS[0], BLINDS[1]).astype(np.uint8) * np.ones((1, SIZE, 1), np.uint8)
    face = np.zeros((SIZE, SIZE), np.uint8)
    cv2.ellipse(face, (int(CENTRE[0]), int(CENTRE[1])), (int(AXES[0]), int(AXES[1])), 0, 0, 360, 1, -1)
    ear = np.zeros((SIZE, SIZE), np.uint8)
    side = landmarks[234, :2]
    cv2.ellipse(ear, (int(side[0] - 25), int(side[1] + 20)), (35, 60), 0, 0, 360, 1, -1)
    ear = (ear > 0) & (face == 0)
    crop[face > 0] = SKIN
    crop[ear] = ear_colour
    rng = np.random.default_rng(0)
    mask = np.where(face > 0, 255, 0).astype(np.uint8)
    confidence = (ear_confidence or _speckle)(rng, ear.shape)
    mask[ear] = confidence[ear]
    skin = cv2.erode(face, np.ones((41, 41), np.uint8)) > 0
    return crop, mask, landmarks, skin, ear


def _speckle(rng, shape) -> np.ndarray:
    """Mid confidences (0.2–0.9) with a fifth of the pixels missed outright, as on man_south_asian's ear."""
    values = rng.uniform(0.2, 0.9, shape)
    values[rng.random(shape) < 0.2] = 0.0
    return np.round(values * 255).astype(np.uint8)


def test_a_speckled_ear_of_skin_colour_becomes_person():
    crop, mask, landmarks, skin, ear = _scene()
    out = ears.recover_ears(crop, mask, landmarks, skin)
    assert mask[ear].mean() / 255 < 0.6
    assert out[ear].mean() / 255 > 0.97  # solid, holes between the fragments closed too
    assert out.dtype == np.uint8 and out.shape == mask.shape
    assert not np.shares_memory(out, mask) and mask[ear].mean() / 255 < 0.6  # the input is not changed


def test_a_half_seen_patch_of_background_colour_stays_as_it_was():
    """The segmenter's doubt over blinds beside the face is not resolved into person."""
    crop, mask, landmarks, skin, ear = _scene(ear_colour=BLINDS[0])
    out = ears.recover_ears(crop, mask, landmarks, skin)
    assert np.array_equal(out[ear], mask[ear])


def test_skin_coloured_islands_that_do_not_touch_the_person_stay_out():
    """A half-seen skin-coloured blob beyond sure background (another person's hand, a photo on the wall)."""
    crop, mask, landmarks, skin, _ = _scene()
    side = landmarks[234, :2]
    island = np.zeros(mask.shape, np.uint8)
    cv2.circle(island, (int(side[0] - 60), int(side[1] - 40)), 6, 1, -1)
    crop[island > 0] = SKIN
    mask[island > 0] = 128
    gap = (cv2.dilate(island, np.ones((9, 9), np.uint8)) > 0) & (island == 0)
    crop[gap], mask[gap] = BLINDS[1], 0  # sure background all round it
    out = ears.recover_ears(crop, mask, landmarks, skin)
    assert np.array_equal(out[island > 0], mask[island > 0])


def test_sure_pixels_and_everything_away_from_the_ears_are_kept():
    crop, mask, landmarks, skin, ear = _scene()
    out = ears.recover_ears(crop, mask, landmarks, skin)
    sure = (mask >= 0.95 * 255) | (mask == 0) & ~ear
    assert np.array_equal(out[sure], mask[sure])
    below = np.zeros(mask.shape, bool)
    below[int(landmarks[132, 1] + 0.06 * 300 + 2):] = True  # under the earlobe's height: no ear window
    assert np.array_equal(out[below], mask[below])


def test_the_ear_windows_hold_each_ear_and_stay_beside_the_face():
    """The windows the rule (and the styles' ear colours) look in: one a side, holding the whole ear of
    the scene, reaching only a little inside the oval, and not below the earlobe's height."""
    crop, _, landmarks, _, ear = _scene()
    windows = ears.ear_windows(landmarks, crop.shape)
    assert len(windows) == 2
    inside = np.zeros(ear.shape, bool)
    for rows, cols in windows:
        inside[rows, cols] = True
    assert inside[ear].all()
    (_, left), (_, right) = windows
    width = landmarks[454, 0] - landmarks[234, 0]
    assert left.stop <= landmarks[234, 0] + 0.05 * width and right.start >= landmarks[454, 0] - 0.05 * width
    assert max(rows.stop for rows, _ in windows) <= max(landmarks[132, 1], landmarks[361, 1]) + 0.1 * width
    assert ears.ear_windows(landmarks - (2 * SIZE, 0, 0), crop.shape) == []  # off the image: none


def test_a_clean_mask_is_returned_unchanged():
    crop, mask, landmarks, skin, ear = _scene(ear_confidence=lambda rng, shape: np.full(shape, 255, np.uint8))
    assert np.array_equal(ears.recover_ears(crop, mask, landmarks, skin), mask)


@pytest.mark.parametrize("broken, message", [
    (lambda c, m, l, s: (c[..., 0], m, l, s), "crop"),
    (lambda c, m, l, s: (c, m.astype(np.float32), l, s), "mask"),
    (lambda c, m, l, s: (c, m[:10], l, s), "mask"),
    (lambda c, m, l, s: (c, m, l[:68], s), "landmarks"),
    (lambda c, m, l, s: (c, m, l, s[:10]), "skin_mask"),
])
def test_bad_inputs_get_one_precise_error(broken, message):
    crop, mask, landmarks, skin, _ = _scene()
    with pytest.raises(ValueError, match=message):
        ears.recover_ears(*broken(crop, mask, landmarks, skin))


# man_south_asian's crop: a box inside the lit ear, and a strip of the blinds beside it (by eye, on the
# aligned crop; the aligner is deterministic on this photo).
EAR_BOX = (slice(225, 290), slice(38, 62))
BLINDS_BOX = (slice(200, 330), slice(0, 10))


def test_the_real_lit_ear_in_front_of_blinds_is_solid(aligner):
    face = aligner.align(load_rgb(FACES_DIR / "man_south_asian.jpg"))
    raw = aligner._segment(face.crop)  # the segmenter's own mask
    assert raw[EAR_BOX].mean() / 255 < 0.8  # speckled: the styles drew fragments
    assert face.mask[EAR_BOX].mean() / 255 > 0.97
    assert face.mask[BLINDS_BOX].max() == raw[BLINDS_BOX].max() and raw[BLINDS_BOX].mean() / 255 < 0.02
    changed = face.mask != raw
    rows, cols = np.nonzero(changed)
    width = float(np.linalg.norm(face.landmarks[454, :2] - face.landmarks[234, :2]))
    assert rows.min() >= face.landmarks[127, 1] - 0.16 * width  # only at ear height
    assert rows.max() <= face.landmarks[132, 1] + 0.07 * width
    assert (face.mask[changed] == 255).all()  # pixels only ever join the person
