"""Acceptance: every offline style, guard on, on the Monk ladder (both package photos recoloured to tones
1–10) and on every real photo in tests/fixtures/faces/ plus the package photos — as measured by the
independent checker (tests/independent_tone.py: its own landmarks, masks and colour maths).

A checker cannot resolve a difference smaller than its own uncertainty on a face, so each face gets a
slack, measured on the input alone (never on an avatar): how far the checker's reading moves when the
same photo is re-framed or re-encoded, or when its masks are drawn from the other detector's landmarks
(the aligner's) instead of its own. The bounds are checked at bound + slack. A face whose slack is
larger than a bound (RESOLVABLE) cannot be checked at that bound by this checker at all: its figures
are printed, the guard's own contract still holds for it, and such faces must stay few.

Run with -s to see the table.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.tone_guard import ToneReport, guard_tone
from tests import independent_tone as it
from tests.real_faces import load_rgb, real_face_paths
from tests.skin_ladder import build_ladder

STYLES = ("realistic", "cartoon", "anime", "sketch")
MAX_ITA, MAX_HUE, LIGHTENED = 2.0, 3.0, 3.0
RESOLVABLE = (2.0, 3.0)  # largest skin-mask slack (ITA°, hue°) at which the checker can judge a 2° / 3° bound

pytestmark = pytest.mark.slow


@dataclass
class Slack:
    """The checker's own uncertainty on one input, per mask (ITA°, hue°)."""

    ita: dict[str, float]
    hue: dict[str, float]

    @property
    def resolvable(self) -> bool:
        return self.ita["skin"] <= RESOLVABLE[0] and self.hue["skin"] <= RESOLVABLE[1]


@dataclass
class Case:
    name: str
    style: str
    mst_in: int
    report: ToneReport
    raw: it.ToneDifference  # checker: guard off
    out: it.ToneDifference  # checker: guard on
    slack: Slack
    same: it.ToneDifference  # checker, guard on: input and avatar under one region (each detection's)


def _reframed(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    matrix = np.float32([[0.92, 0, 0.03 * w], [0, 0.92, 0.05 * h]])
    return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def _reencoded(rgb: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def checker_slack(checker: it.IndependentToneChecker, face, reference: it.FaceColours) -> Slack:
    """How far the checker's reading of this input moves without any change of tone."""
    readings = [checker.compare(None, variant(face.crop), reference) for variant in (_reframed, _reencoded)]
    other = it.face_masks(it.FaceGeometry(np.asarray(face.landmarks, np.float64)[:, :2], "landmarker"),
                          face.crop.shape[:2])
    ita, hue = {}, {}
    for mask in it.MASKS:
        moved = [r.masks[mask] for r in readings if r is not None]
        moved.append(it.mask_difference(reference.masks[mask], it.skin_colour(face.crop, other[mask])))
        ita[mask] = max(abs(m.ita) for m in moved)
        hue[mask] = max(abs(m.hue_error) for m in moved)
    return Slack(ita, hue)


@pytest.fixture(scope="module")
def inputs(aligned_faces):
    """[(name, AlignedFace)]: the ladder, the real photos, the package photos."""
    from actors.align.aligner import FaceAligner

    with FaceAligner() as aligner:
        real = [(path.stem, aligner.align(load_rgb(path))) for path in real_face_paths()]
    return [*build_ladder(aligned_faces), *real, *sorted(aligned_faces.items())]


def stylize_and_guard(engine: OfflineStylizer, request: AvatarRequest, face, style: str, seed_index: int,
                      detector) -> tuple[StylizedImage, np.ndarray, ToneReport]:
    """(the avatar as made, the image the guard writes, its report) at item seed `seed_index`."""
    [avatar] = engine.stylize([face], style, request, [request.item_seed("%012x" % seed_index)])
    image, report = guard_tone(avatar, face, max_ita=MAX_ITA, max_hue=MAX_HUE, landmarks_fn=detector.landmarks)
    return avatar, image, report


@pytest.fixture(scope="module")
def sweep(inputs):
    """Every input through every style, guard off and on, measured by the guard and by the checker."""
    from actors.align.aligner import FaceAligner

    engine, request = OfflineStylizer(), AvatarRequest(styles=STYLES)
    checker = it.IndependentToneChecker()
    cases = []
    with FaceAligner() as detector:
        for index, (name, face) in enumerate(inputs):
            reference = checker.measure(face.crop)
            assert reference is not None, f"the checker finds no face in the input {name}"
            geometry = checker.detector(face.crop)
            slack = checker_slack(checker, face, reference)
            for style in STYLES:
                avatar, image, report = stylize_and_guard(engine, request, face, style, index, detector)
                raw, out = checker.compare(None, avatar.image, reference), checker.compare(None, image, reference)
                same = checker.compare_same_region(face.crop, image, geometry)
                assert raw is not None and out is not None and same is not None, \
                    f"the checker finds no face in {name} {style}"
                cases.append(Case(name, style, int(face.mst), report, raw, out, slack, same))
    checker.close()
    print_table(cases)
    return cases


def print_table(cases: list[Case]) -> None:
    print("\ninput               style      MST | guard: worst ΔITA raw→out, skin ok, passes | "
          "checker skin ΔITA raw→out, Δhue out | oval ΔITA out | slack ITA/hue")
    for c in cases:
        skin_raw, skin, oval = c.raw.masks["skin"], c.out.masks["skin"], c.out.masks["oval"]
        print(f"{c.name:19s} {c.style:9s} {c.mst_in:3d} | {c.report.delta_ita_raw:+6.1f} → {c.report.delta_ita:+5.1f}"
              f" {'ok ' if c.report.skin_ok else 'NO '} {c.report.passes} | {skin_raw.ita:+6.1f} → {skin.ita:+5.1f}"
              f" {skin.hue_error:+5.1f} | {oval.ita:+5.1f} | {c.slack.ita['skin']:.1f}/{c.slack.hue['skin']:.1f}")
    for style in STYLES:
        of_style = [c for c in cases if c.style == style]
        for label, key in (("off", "raw"), ("on", "out")):
            skins = [getattr(c, key).masks["skin"] for c in of_style]
            lightened = sum(s.ita > LIGHTENED for s in skins)
            print(f"checker {style:9s} guard {label:3s}: max |ΔITA| {max(abs(s.ita) for s in skins):4.1f}, "
                  f"max |Δhue| {max(abs(s.hue_error) for s in skins):4.1f}, lightened {lightened}/{len(skins)}")


def test_the_sweep_covers_every_input_and_style(sweep, inputs):
    assert len(inputs) >= 20 + 2 + 6  # the ladder, the package photos, the real photos
    assert len(sweep) == len(inputs) * len(STYLES)
    assert {c.mst_in for c in sweep} >= {1, 5, 7, 9, 10}


def test_the_guard_holds_the_skin_within_the_bounds(sweep):
    """The guard's own contract: the tight skin mask, every landmark source, both ITA readings."""
    failures = [f"{c.name} {c.style}: {c.report.after.mask_badness('skin', MAX_ITA, MAX_HUE):.2f}× the bound"
                for c in sweep if not c.report.skin_ok]
    assert not failures, failures


def resolvable(sweep: list[Case]) -> list[Case]:
    return [c for c in sweep if c.slack.resolvable]


def test_the_independent_checker_finds_every_skin_within_the_bounds(sweep):
    failures = []
    for c in resolvable(sweep):
        skin = c.out.masks["skin"]
        if abs(skin.ita) > MAX_ITA + c.slack.ita["skin"] or abs(skin.hue_error) > MAX_HUE + c.slack.hue["skin"]:
            failures.append(f"{c.name} {c.style}: ΔITA {skin.ita:+.1f}, Δhue {skin.hue_error:+.1f} "
                            f"(slack {c.slack.ita['skin']:.1f}/{c.slack.hue['skin']:.1f})")
    assert not failures, failures


def test_the_checker_agrees_wherever_the_guard_reports_every_mask_within(sweep):
    """The original failure was a guard that reported success while an independent audit did not. Where
    the guard finds every mask within 80% of the bounds (a reading at 2.9° against 3° is a coin toss for
    any second implementation), the checker finds both of its masks within the bounds."""
    claimed = [c for c in resolvable(sweep) if c.report.after.badness(0.8 * MAX_ITA, 0.8 * MAX_HUE) <= 1.0]
    assert len(claimed) >= 0.5 * len(sweep)
    failures = []
    for c in claimed:
        for mask in it.MASKS:
            m = c.out.masks[mask]
            if abs(m.ita) > MAX_ITA + c.slack.ita[mask] or abs(m.hue_error) > MAX_HUE + c.slack.hue[mask]:
                failures.append(f"{c.name} {c.style} {mask}: ΔITA {m.ita:+.1f}, Δhue {m.hue_error:+.1f}")
    assert not failures, failures


def test_lightening_rate_is_zero(sweep):
    lightened = [f"{c.name} {c.style}: {c.out.masks['skin'].ita:+.1f}°" for c in resolvable(sweep)
                 if c.out.masks["skin"].ita > LIGHTENED + c.slack.ita["skin"]]
    assert not lightened, lightened
    # and by the guard's own measurement of the skin, on every avatar
    assert not [f"{c.name} {c.style}" for c in sweep
                if max(d.ita_error for d in c.report.after.deltas if d.mask == "skin") > LIGHTENED]


def test_the_checker_resolves_most_faces_finely(sweep):
    """The slack is an allowance for hard photos (a turned head in hard light, a laughing face whose jaw two
    detectors place differently, near-grey ladder tones), not a blanket: on most inputs it is under 1°."""
    slack = {c.name: c.slack for c in sweep}
    print("\nchecker slack per input (skin ITA°/hue°): " + ", ".join(
        f"{name} {s.ita['skin']:.1f}/{s.hue['skin']:.1f}{'' if s.resolvable else ' (not resolvable)'}"
        for name, s in slack.items()))
    assert np.median([s.ita["skin"] for s in slack.values()]) < 1.0
    unresolvable = sorted(name for name, s in slack.items() if not s.resolvable)
    assert len(unresolvable) <= len(slack) // 5, unresolvable


def lightened_cooler(avatar: StylizedImage, lighter: float = 7.0, b_scale: float = 0.8) -> StylizedImage:
    """What generators do to brown skin: lighter and less yellow (greyer, cooler)."""
    lab = cv2.cvtColor(avatar.image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 0] = np.clip(lab[..., 0] + lighter, 0, 100)
    lab[..., 2] *= b_scale
    return StylizedImage(np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8),
                         avatar.landmarks)


def test_guard_off_shows_the_lightening_and_both_measurements_see_it(sweep, inputs):
    """Guard off, the lightening is there and the guard's own measurement reports what the checker sees
    (the old guard recorded 2.2° where an independent audit found 8.5°). On styled avatars of brown skin:
    real drift of the current anime/cartoon styles where there is some, and always the typical
    generative drift (lighter, cooler) added to them."""
    from actors.align.aligner import FaceAligner

    resolved = {c.name for c in resolvable(sweep)}
    # brown skin, MST 5–8: at MST 9–10 ITA is near −80° and hardly moves with lightness (7 L* ≈ 1° ITA)
    brown = {name: face for name, face in inputs if 5 <= face.mst <= 8 and name in resolved}
    engine, request = OfflineStylizer(), AvatarRequest()
    checker = it.IndependentToneChecker()
    seen = []
    with FaceAligner() as detector:
        for name, face in list(brown.items())[:: max(1, len(brown) // 6)]:
            for style in ("anime", "cartoon"):
                [avatar] = engine.stylize([face], style, request, [0])
                avatar = lightened_cooler(avatar)
                _, off = guard_tone(avatar, face, enabled=False, landmarks_fn=detector.landmarks)
                image, on = guard_tone(avatar, face, landmarks_fn=detector.landmarks)
                raw = checker.compare(face.crop, avatar.image)
                assert raw.masks["skin"].ita > LIGHTENED and raw.masks["skin"].hue < 0, (name, style, raw.masks)
                assert off.lightened and off.lightening_raw > LIGHTENED and not off.tone_ok, (name, style)
                assert on.skin_ok and checker.compare(face.crop, image).masks["skin"].ita < LIGHTENED
                seen.append(name)
    checker.close()
    assert len(seen) >= 8
    natural = [c for c in sweep if c.style in ("anime", "cartoon") and c.mst_in >= 5
               and c.raw.masks["skin"].ita > LIGHTENED + c.slack.ita["skin"]]
    print(f"\nnatural lightening of the current anime/cartoon styles on brown skin (checker, guard off): "
          + ", ".join(f"{c.name} {c.style} {c.raw.masks['skin'].ita:+.1f}° (guard measured {c.report.lightening_raw:+.1f}°)"
                      for c in natural))
    for c in natural:
        assert c.report.lightening_raw > LIGHTENED - 1.0, f"{c.name} {c.style}: the guard missed what the checker sees"


# Item 1's acceptance: every avatar within the bounds on one region. Borderline readings move with the
# item seed (it picks the backdrop, which moves the landmarks both the guard and the checker find on the
# avatar): one seed alone once said 7 misses where the same code gave 10 and 8 with others, and it hid an
# anime 3.1° lighter. So the reading is taken at two seeds and both must be clean (at three more seeds,
# 2000–4000, the development machine found 1 miss in 372: Grace Hopper's MST 10 anime at 2000, 2.2° darker,
# where one 8-bit step of R, G or B moves a* or b* by 0.5–0.7 and each guard pass lands up to half a unit
# away from its aim).
SAME_REGION_MISSES_AT_MOST = 0
OTHER_SEED = 1000  # offset of the second item seed


@pytest.fixture(scope="module")
def same_region_other_seed(inputs):
    """{(name, style): the same-region reading} of every input and style, guard on, at a second seed."""
    from actors.align.aligner import FaceAligner

    engine, request = OfflineStylizer(), AvatarRequest(styles=STYLES)
    checker = it.IndependentToneChecker()
    readings = {}
    with FaceAligner() as detector:
        for index, (name, face) in enumerate(inputs):
            geometry = checker.detector(face.crop)
            for style in STYLES:
                _, image, _ = stylize_and_guard(engine, request, face, style, index + OTHER_SEED, detector)
                same = checker.compare_same_region(face.crop, image, geometry)
                assert same is not None, f"the checker finds no face in {name} {style}"
                readings[(name, style)] = same
    checker.close()
    return readings


def test_on_one_region_no_avatar_is_lighter_on_any_input(sweep, same_region_other_seed):
    """Item 1's reading: input and avatar measured under the same region, drawn from the checker's own
    landmarks found on the input and, separately, on the avatar. Detection noise does not enter, so
    there is no slack and every input counts, the hard ones too: at either seed, no avatar is more than
    3° ITA lighter under any of the four regions, and none is outside the 2°/3° bounds."""
    seeds = {"first seed": {(c.name, c.style): c.same for c in sweep}, "second seed": same_region_other_seed}
    counts = []
    for label, readings in seeds.items():
        lightened = [f"{name} {style}: {same.lightening:+.1f}°" for (name, style), same in readings.items()
                     if same.lightening > LIGHTENED]
        assert not lightened, (label, lightened)
        misses = [f"{name} {style}: ΔITA {same.ita:+.1f}, Δhue {same.hue_error:+.1f}"
                  for (name, style), same in readings.items() if not same.within(MAX_ITA, MAX_HUE)]
        print(f"\nsame-region, {label}: {len(readings) - len(misses)} of {len(readings)} avatars within the bounds;"
              f" out: " + "; ".join(misses))
        counts.append(len(misses))
    assert max(counts) <= SAME_REGION_MISSES_AT_MOST, counts
