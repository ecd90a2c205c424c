"""The skin-tone guard: corrects drift (checked by the independent checker), leaves faithful avatars
alone, measures every mask and landmark source, reports in the results schema's columns."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pyarrow as pa
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.tone_guard import REFERENCE_KEY, ToneReport, guard_tone, input_tone
from dataset.schema import RESULTS_SCHEMA, TONE_COLUMNS
from tests.independent_tone import IndependentToneChecker


@pytest.fixture(scope="module")
def realistic(aligned_faces):
    """The realistic avatar of each package photo (faithful to the input's tone)."""
    engine = OfflineStylizer()
    request = AvatarRequest()
    return {name: engine.stylize([face], "realistic", request, [0])[0] for name, face in aligned_faces.items()}


@pytest.fixture(scope="module")
def checker():
    checker = IndependentToneChecker()
    yield checker
    checker.close()


def drifted(avatar: StylizedImage, lighter: float = 8.0, b_scale: float = 0.75) -> StylizedImage:
    """The avatar lifted in L* and made less yellow over the whole image: the generative drift."""
    lab = cv2.cvtColor(avatar.image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] = np.clip(lab[..., 0] + lighter, 0, 100)
    lab[..., 2] *= b_scale
    rgb = np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    return StylizedImage(image=rgb, landmarks=avatar.landmarks)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_guard_corrects_a_lighter_cooler_avatar_as_an_independent_check_sees_it(aligned_faces, realistic, checker, name):
    face = aligned_faces[name]
    avatar = drifted(realistic[name])
    image, report = guard_tone(avatar, face, landmarks_fn=lambda rgb: avatar.landmarks)
    assert isinstance(report, ToneReport)
    # the guard saw the drift under every measurement and removed it
    assert report.lightening_raw > 5.0 and report.delta_hue_raw < -2.0 and not report.before.within(2.0, 3.0)
    assert report.tone_ok and report.skin_ok and report.passes >= 1
    assert abs(report.delta_ita) <= 2.0 and report.correction < -4.0
    assert report.mask_source == "carried+detected" and len(report.after.deltas) == 4
    # a second measurement that shares no code with the guard agrees
    before, after = checker.compare(face.crop, avatar.image), checker.compare(face.crop, image)
    assert before.lightening > 5.0
    assert after.within(2.0, 3.0), after.masks


def test_guard_keeps_shading_warmth_and_background(aligned_faces, realistic):
    face = aligned_faces["grace_hopper"]
    avatar = drifted(realistic["grace_hopper"])
    image, report = guard_tone(avatar, face)
    before = cv2.cvtColor(avatar.image, cv2.COLOR_RGB2Lab).astype(float)
    after = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(float)
    skin = face.skin_mask
    # shading survives: the skin's lightness pattern is the same up to an offset and a small contrast change
    assert np.corrcoef(before[..., 0][skin], after[..., 0][skin])[0, 1] > 0.97
    assert 0.8 < np.std(after[..., 0][skin]) / np.std(before[..., 0][skin]) < 1.25
    # warmth comes back: b* (8-bit OpenCV Lab, offset 128) rises toward the input's
    assert np.median(after[..., 2][skin]) > np.median(before[..., 2][skin]) + 3
    # far from the face nothing changes
    assert np.array_equal(image[:40, :40], avatar.image[:40, :40])
    # no seam and no painted edge: the correction adds no lightness edge a tenth as strong as the image's own
    def gradient(rgb):
        lightness = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 0].astype(np.float32) * (100 / 255), (0, 0), 1.0)
        return np.hypot(cv2.Sobel(lightness, cv2.CV_32F, 1, 0) / 8, cv2.Sobel(lightness, cv2.CV_32F, 0, 1) / 8)

    new_edges = gradient(image) - gradient(avatar.image)
    assert np.percentile(new_edges, 99.9) < 3.0 and new_edges.max() < 6.0
    assert np.percentile(gradient(avatar.image), 99.9) > 12.0  # the image's own edges, for scale


def test_guard_leaves_a_faithful_avatar_untouched(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    avatar = realistic["astronaut"]
    image, report = guard_tone(avatar, face)
    assert report.tone_ok and report.passes == 0 and report.correction == 0.0
    assert image.tobytes() == avatar.image.tobytes()
    assert (report.ita_out, report.mst_out) == (report.ita_raw, report.mst_raw)
    assert report.ita_in == pytest.approx(face.ita, abs=0.5) and report.mst_in == face.mst


def test_disabled_guard_measures_but_does_not_correct(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    avatar = drifted(realistic["astronaut"])
    image, report = guard_tone(avatar, face, enabled=False)
    assert image.tobytes() == avatar.image.tobytes()
    assert report.lightened and not report.tone_ok and report.passes == 0
    assert report.correction == 0.0 and report.delta_ita == report.delta_ita_raw


def test_detected_landmarks_are_measured_too(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    avatar = drifted(realistic["astronaut"])
    calls = []

    def landmarks_fn(image):
        calls.append(image.shape)
        return avatar.landmarks  # a detector that finds the face where it is

    blind = StylizedImage(image=avatar.image, landmarks=None)
    _, report = guard_tone(blind, face, landmarks_fn=landmarks_fn)
    assert calls == [(512, 512, 3)]
    assert report.mask_source == "detected" and {d.source for d in report.after.deltas} == {"detected"}
    assert report.tone_ok


def test_a_detector_that_disagrees_with_the_engine_counts(aligned_faces, realistic):
    """An engine whose landmarks sit off the face cannot pass on them alone: the detected ones are measured too."""
    face = aligned_faces["astronaut"]
    avatar = realistic["astronaut"]
    wrong = avatar.landmarks.copy()
    wrong[:, 1] -= 120  # the engine claims the face is higher than it is (over the hair)
    misled = StylizedImage(image=avatar.image, landmarks=wrong)
    _, alone = guard_tone(misled, face, enabled=False)
    _, both = guard_tone(misled, face, enabled=False, landmarks_fn=lambda rgb: avatar.landmarks)
    assert alone.mask_source == "carried" and both.mask_source == "carried+detected"
    detected = both.before.get("skin", "detected")
    assert abs(detected.ita) < 1.0  # on the real face the avatar is faithful
    assert abs(both.before.get("skin", "carried").ita) > 10.0  # the engine's region is not the face
    assert both.delta_ita_raw == pytest.approx(both.before.worst_ita) and abs(both.delta_ita_raw) > 10.0


def test_a_correction_does_not_break_the_bounds_the_avatar_already_held(aligned_faces, realistic):
    """When the detected landmarks sit off the face (here 40 px too high), no one correction can bring
    both sources within the bounds. The guard then must not trade the measurements that were within
    for the ones that were not: it had pushed the faithful carried oval of Grace Hopper's avatar from
    −0.2° to +4.4° ITA (now it stays within 1.4 × its bound; measured +2.6°)."""
    face = aligned_faces["grace_hopper"]
    avatar = realistic["grace_hopper"]
    off_face = avatar.landmarks.copy()
    off_face[:, 1] -= 40
    _, report = guard_tone(avatar, face, landmarks_fn=lambda rgb: off_face)
    assert report.passes > 0 and abs(report.delta_ita_raw) > 2.0  # the detected source is out: it corrects
    for before, after in zip(report.before.deltas, report.after.deltas):
        assert (before.mask, before.source) == (after.mask, after.source)
        if abs(before.ita_error) <= 2.0:
            assert abs(after.ita_error) <= 2.0 * 1.4, (after.mask, after.source, before.ita_error, after.ita_error)
        if abs(before.hue_error) <= 3.0:
            assert abs(after.hue_error) <= 3.0 * 1.4, (after.mask, after.source, before.hue_error, after.hue_error)


def test_falls_back_to_the_input_landmarks(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    avatar = drifted(realistic["astronaut"])
    blind = StylizedImage(image=cv2.resize(avatar.image, (256, 256), interpolation=cv2.INTER_AREA), landmarks=None)
    image, report = guard_tone(blind, face, landmarks_fn=lambda image: None)
    assert report.mask_source == "input" and image.shape == (256, 256, 3)
    assert report.tone_ok and report.lightening_raw > 5.0


def test_input_is_measured_once_per_face(aligned_faces, realistic):
    face = dataclasses.replace(aligned_faces["astronaut"], extras={})
    first = input_tone(face)
    assert input_tone(face) is first
    guard_tone(realistic["astronaut"], face)
    assert face.extras[REFERENCE_KEY][1] is first
    recoloured = dataclasses.replace(face, crop=face.crop.copy())  # a new crop: measured again
    assert input_tone(recoloured) is not first


def test_bad_arguments(aligned_faces, realistic):
    face = aligned_faces["astronaut"]
    with pytest.raises(ValueError, match="max_ita"):
        guard_tone(realistic["astronaut"], face, max_ita=0.0)
    with pytest.raises(ValueError, match="max_hue"):
        guard_tone(realistic["astronaut"], face, max_hue=-1.0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        guard_tone(StylizedImage(image=np.zeros((512, 512), np.uint8), landmarks=None), face)
    with pytest.raises(ValueError, match="landmarks"):
        guard_tone(StylizedImage(image=realistic["astronaut"].image, landmarks=np.zeros((68, 2))), face)


def test_columns_match_the_results_schema(aligned_faces, realistic):
    """The 2D stage appends `columns()` per style into RESULTS_SCHEMA and fails on unknown names."""
    face = aligned_faces["astronaut"]
    _, report = guard_tone(drifted(realistic["astronaut"]), face)
    columns = report.columns()
    assert tuple(columns) == TONE_COLUMNS
    assert set(TONE_COLUMNS) <= set(RESULTS_SCHEMA.names)
    # the values fit the schema's per-style list types (as the stage writes them: one list per row)
    table = pa.Table.from_pylist([{name: [value] for name, value in columns.items()}],
                                 schema=pa.schema([RESULTS_SCHEMA.field(name) for name in TONE_COLUMNS]))
    assert table.num_rows == 1
    assert table.column("tone_ok")[0].as_py() == [True] and table.column("tone_worst")[0].as_py()[0].count("/") == 1


def test_the_contrast_the_guard_adds_stays_within_its_cap(aligned_faces):
    """One correction may change the skin's L* contrast by 15%; composed over three passes it reached
    1.51 on grace_hopper at Monk tone 6 in anime, which deepens the flat shadow patches into blotches.
    The total stays within ±30%, read off the pixels: the slope of the written skin's L* against the
    avatar's as made, over the middle of the skin's shades."""
    from actors.align.aligner import FaceAligner
    from actors.metrics.tone_compare import region_mask
    from tests.skin_ladder import recolour_skin

    face = recolour_skin(aligned_faces["grace_hopper"], 6)
    request = AvatarRequest(styles=("anime",))
    [avatar] = OfflineStylizer().stylize([face], "anime", request, [request.item_seed("%012x" % 15)])
    with FaceAligner() as detector:
        image, report = guard_tone(avatar, face, landmarks_fn=detector.landmarks)
    assert report.passes >= 2  # the case composes corrections
    skin = region_mask(np.asarray(avatar.landmarks), image.shape, "skin")
    made, written = (cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 0][skin].astype(np.float64) * (100.0 / 255.0)
                     for rgb in (avatar.image, image))
    low, high = np.percentile(made, [15, 85])
    middle = (made >= low) & (made <= high)
    slope = np.polyfit(made[middle], written[middle], 1)[0]
    assert 0.7 - 0.03 <= slope <= 1.3 + 0.03, slope


def test_near_grey_skin_within_the_hue_bound_is_left_as_drawn(aligned_faces):
    """On near-grey skin (grace_hopper recoloured to Monk tone 10: chroma about 4) one landmark source's
    tight-mask hue read −2.9 (scaled) and another's 0.0 on the same cartoon: a* moves by a unit between
    regions. Chasing the −2.9 to half the bound swung the regions across it: the independent checker,
    on its own region, went from −2.5 to +5.2. Within the bound, the guard now leaves such skin's hue as
    drawn, and the checker agrees it is within."""
    from actors.align.aligner import FaceAligner
    from tests.skin_ladder import recolour_skin

    face = recolour_skin(aligned_faces["grace_hopper"], 10)
    request = AvatarRequest(styles=("cartoon",))
    [avatar] = OfflineStylizer().stylize([face], "cartoon", request, [request.item_seed("%012x" % 19)])
    with FaceAligner() as detector:
        image, report = guard_tone(avatar, face, landmarks_fn=detector.landmarks)
    assert np.hypot(*report.before.primary.reference.lab[1:]) < 10.0  # near-grey
    assert report.before.mask_badness("skin", 2.0, 3.0) > 0.5  # beyond the half-bound margin ...
    assert report.before.within(2.0, 3.0) and report.passes == 0  # ... but within the bounds: kept
    checker = IndependentToneChecker()
    try:
        same = checker.compare_same_region(face.crop, image, checker.detector(face.crop))
    finally:
        checker.close()
    assert same.within(2.0, 3.0), (same.ita, same.hue_error)
