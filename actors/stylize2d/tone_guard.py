"""Skin-tone guard: the avatar's skin must match the input's however it is measured.

Stylising and generative steps tend to lighten darker skin and cool it (b* drops). The guard compares
the avatar with its input on the same face region under every mask and landmark source of
`actors.metrics.tone_compare` (tight skin mask and whole face oval; landmarks carried through the
stylisation and landmarks detected on the avatar) and, when enabled, corrects until every measurement
holds |ΔITA| ≤ `max_ita` and |Δhue| ≤ `max_hue` (hue scaled down for near-grey skin, see
`tone_compare.HUE_CHROMA_FLOOR`).

The correction (`tone_correction.Correction`: L*, a*, b* shifts and a small L* contrast change, so
shading, bands and lines stay as the style drew them) is painted over a feathered face-and-neck skin
region, so there is no seam at the forehead, ears or neck and nothing outside the skin moves. It is
solved for all measurements at once, the tight skin mask first, then the result is re-measured; a few
passes at most, and the best result is kept. No correction breaks a bound a measurement already held
before the guard acted (`tone_correction.Hold`): when two landmark sources disagree by more than a
bound, the guard balances them in L* instead of making the skin more saturated or of another hue. It
acts when the skin is beyond half a bound (AIM), so that another measurement (another mask, another
detector) still finds it within the bound; on near-grey skin a hue within the bound is left as drawn
(`NEAR_GREY_HUE_AIM`: there one region's hue differs from another's by as much as that margin).
Style- and engine-agnostic: the guard sees only the image, its landmarks (may be None) and the input.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from actors.metrics.skin_tone import mst_from_lab
from actors.metrics.tone_compare import (
    HUE_CHROMA_FLOOR, FaceRegions, InputTone, ToneComparison, avatar_landmarks, compare_tone, detect_landmarks,
    face_regions, measure_input,
)
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.tone_correction import (
    Correction, Hold, compose, offset_gains, paint_region, solve_correction, to_lab, to_rgb,
)
from dataset.face import AlignedFace

MAX_PASSES = 3  # solve → paint → re-measure rounds at most
MIN_STEP = 0.05  # a step smaller than this (Lab units; contrast in %) changes no 8-bit pixel: stop
AIM = 0.5  # the guard stops when the skin mask is within AIM × the bounds (a margin for other measurements)
INPUT_FALLBACK_MAX_DE = 15.0  # without landmarks of its own, an avatar this far (ΔE2000) from the input's skin
# under the input's face region has no face there to recolour: it is measured, not painted
OVAL_AIM = 0.8  # ... and the whole oval within OVAL_AIM × the bounds (it also holds lips, brows, an open mouth)
# On near-grey skin (the input's chroma below HUE_CHROMA_FLOOR: the darkest and lightest Monk tones) the hue
# of one region differs from another's by as much as that margin (a* moves by a unit between cheeks and
# forehead), so a correction made to gain it moved the regions nobody measured across the bound: for the
# tight skin mask's hue the guard aims at the bound itself there.
NEAR_GREY_HUE_AIM = 1.0
REFERENCE_KEY = "tone_reference"  # AlignedFace.extras cache of the input's InputTone
LIGHTENED = 3.0  # ITA° lighter than the input beyond which an avatar counts as lightened (audits' threshold)

LandmarksFn = Callable[[np.ndarray], "np.ndarray | None"]


@dataclass
class ToneReport:
    """What the guard measured on one avatar, before (raw) and after (out) it acted.

    ITA°/MST/hue in, raw and out are under the tight skin mask with the first landmark source; the
    deltas are the worst case (largest magnitude, signed; positive ΔITA = lighter) over every mask and
    landmark source. `columns()` gives the per-style columns of `dataset.schema.RESULTS_SCHEMA`.
    """

    ita_in: float
    mst_in: int
    hue_in: float
    ita_raw: float
    mst_raw: int
    hue_raw: float
    ita_out: float
    mst_out: int
    hue_out: float
    correction: float  # ITA° change the guard made (ita_out − ita_raw); 0 when it kept the avatar as made
    delta_ita_raw: float  # worst ΔITA° before the guard
    delta_hue_raw: float
    delta_e_raw: float  # worst CIEDE2000 of the median skin colours before the guard
    delta_ita: float  # worst ΔITA° as written
    delta_hue: float
    delta_e: float
    lightening_raw: float  # largest ΔITA° over every measurement before the guard (> 3: lightened)
    lightening: float  # the same as written
    tone_ok: bool  # every measurement of the written avatar within the bounds
    skin_ok: bool  # every tight-skin-mask measurement within the bounds (what the guard always aims for)
    worst: str  # "mask/source" of the measurement furthest out as written, e.g. "oval/detected"
    passes: int  # correction passes run (0: none needed or guard off); the best result is kept
    mask_source: str  # landmark sources measured, joined by "+": carried, detected, or input (fallback)
    before: ToneComparison
    after: ToneComparison

    @property
    def lightened(self) -> bool:
        """More than 3° ITA lighter than the input as written, under any measurement (the audits' definition)."""
        return self.lightening > LIGHTENED

    def columns(self) -> dict[str, Any]:
        """{RESULTS_SCHEMA per-style column: this avatar's value} (dataset.schema.TONE_COLUMNS, in order)."""
        return {
            "ita_raw": float(self.ita_raw), "mst_raw": int(self.mst_raw),
            "ita_out": float(self.ita_out), "mst_out": int(self.mst_out),
            "tone_correction": float(self.correction),
            "hue_in": float(self.hue_in), "hue_raw": float(self.hue_raw), "hue_out": float(self.hue_out),
            "delta_ita_raw": float(self.delta_ita_raw), "delta_hue_raw": float(self.delta_hue_raw),
            "delta_e_raw": float(self.delta_e_raw),
            "delta_ita": float(self.delta_ita), "delta_hue": float(self.delta_hue), "delta_e": float(self.delta_e),
            "lightening_raw": float(self.lightening_raw), "lightening": float(self.lightening),
            "tone_ok": bool(self.tone_ok), "tone_skin_ok": bool(self.skin_ok), "tone_worst": self.worst,
            "tone_passes": int(self.passes), "tone_mask_source": self.mask_source,
        }


def input_tone(face: AlignedFace) -> InputTone:
    """The input face's tone under every mask, measured once per face and kept in `face.extras`
    (tied to this very crop array, so a face copied with a new crop is measured again)."""
    cached = face.extras.get(REFERENCE_KEY)
    if cached is not None and cached[0]() is face.crop:
        return cached[1]
    reference = measure_input(face.crop, face.landmarks)
    try:
        face.extras[REFERENCE_KEY] = (weakref.ref(face.crop), reference)
    except TypeError:  # a crop that is not a numpy array cannot be weakly referenced: no cache
        pass
    return reference


def check_inputs(avatar: StylizedImage, max_ita: float, max_hue: float) -> None:
    """Raise one precise ValueError per broken rule."""
    image = np.asarray(avatar.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"avatar.image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}.")
    if avatar.landmarks is not None:
        landmarks = np.asarray(avatar.landmarks)
        if landmarks.ndim != 2 or landmarks.shape[0] != 478 or landmarks.shape[1] < 2:
            raise ValueError(f"avatar.landmarks must be (478, 2 or 3) or None, got {landmarks.shape}.")
    if not max_ita > 0:
        raise ValueError(f"`max_ita` must be a positive ITA° difference, got {max_ita}.")
    if not max_hue > 0:
        raise ValueError(f"`max_hue` must be a positive hue-angle difference, got {max_hue}.")


def guard_tone(
    avatar: StylizedImage,
    face: AlignedFace,
    *,
    max_ita: float = 2.0,
    max_hue: float = 3.0,
    enabled: bool = True,
    landmarks_fn: LandmarksFn | None = None,
    reference: InputTone | None = None,
) -> tuple[np.ndarray, ToneReport]:
    """(image to write, report): the avatar's own image unless the guard had to correct it.

    avatar: the engine's image (H, W, 3) uint8 and its carried landmarks (None when the engine cannot tell).
    face: the aligned input. landmarks_fn: a detector run on the avatar (production: `FaceAligner.landmarks`);
    None skips the detected source. reference: the input's `InputTone` (default: `input_tone(face)`,
    cached per face). With `enabled=False` the avatar is measured and returned unchanged.
    """
    check_inputs(avatar, max_ita, max_hue)
    image = np.asarray(avatar.image)
    reference = reference if reference is not None else input_tone(face)
    detected = detect_landmarks(image, landmarks_fn)
    landmarks = avatar_landmarks(image, avatar.landmarks, detected, reference)
    regions = face_regions(image.shape, landmarks)
    before = compare_tone(image, regions, reference)
    if not before.deltas:
        raise ValueError("No skin to measure on the avatar: every mask holds too few pixels.")

    out, after, passes = image, before, 0
    no_face = list(landmarks) == ["input"] and before.primary.delta_e > INPUT_FALLBACK_MAX_DE
    hue_aims = _hue_aims(reference)
    if enabled and not no_face and not _good_enough(before, max_ita, max_hue, hue_aims):
        out, after, passes = _correct(image, landmarks, regions, reference, before, max_ita, max_hue, hue_aims)
    return out, _report(reference, before, after, passes, landmarks, max_ita, max_hue)


def _correct(image: np.ndarray, landmarks: dict[str, np.ndarray], regions: FaceRegions, reference: InputTone,
             before: ToneComparison, max_ita: float, max_hue: float,
             hue_aims: tuple[float, float]) -> tuple[np.ndarray, ToneComparison, int]:
    """(image, its comparison, passes run): corrections, each solved on the last measurement and
    re-measured, until `_good_enough` (with `hue_aims`, see `_hue_aims`) or MAX_PASSES. The best image
    seen is kept (the avatar as made when nothing beat it)."""
    lab = to_lab(image)
    weight = paint_region(lab, landmarks, np.asarray(before.primary.avatar.lab, np.float32))
    gains = offset_gains(weight, regions, before)
    rows, cols = np.nonzero(weight > 0)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))  # the painted part only
    pivot = float(before.primary.avatar.lab[0])  # the contrast turns about the avatar's median skin L*
    skin_l = lab[..., 0][regions.mask(before.primary.source, "skin")]
    reach = float(max(np.subtract(*np.percentile(skin_l, [95, 5])), 5.0))  # ... over the skin's own shades
    correction = Correction(pivot=pivot, reach=reach)
    hold = Hold.of(before, max_ita, max_hue)
    best, current, passes = (before, image), before, 0
    while passes < MAX_PASSES and not _good_enough(current, max_ita, max_hue, hue_aims):
        step = solve_correction(current, gains, max_ita * AIM, max_hue * AIM, pivot=pivot, reach=reach,
                                applied_gain=correction.gain, hold=hold)
        if max(np.abs(step.shift).max(), 100.0 * abs(step.gain - 1.0)) < MIN_STEP:
            break
        correction = compose(correction, step)
        passes += 1
        candidate = image.copy()
        candidate[box] = to_rgb(correction.apply(lab[box], weight[box]))
        current = compare_tone(candidate, regions, reference)
        if current.priority_badness(max_ita, max_hue) < best[0].priority_badness(max_ita, max_hue):
            best = (current, candidate)
    return best[1], best[0], passes


def _hue_aims(reference: InputTone) -> tuple[float, float]:
    """(skin mask, oval) fractions of the hue bound the guard aims at: AIM and OVAL_AIM; on near-grey
    skin NEAR_GREY_HUE_AIM for the skin mask (the oval, with two to three times the pixels, is steadier
    and keeps its margin)."""
    chroma = float(np.hypot(*reference.regions["skin"].lab[1:]))
    return (AIM, OVAL_AIM) if chroma >= HUE_CHROMA_FLOOR else (NEAR_GREY_HUE_AIM, OVAL_AIM)


def _good_enough(comparison: ToneComparison, max_ita: float, max_hue: float, hue_aims: tuple[float, float]) -> bool:
    """Nothing left to do: the skin mask within AIM × the bounds and the oval within OVAL_AIM × the bounds
    (hue: within `hue_aims` × its bound, see `_hue_aims`)."""
    return (comparison.mask_badness("skin", max_ita * AIM, max_hue * hue_aims[0]) <= 1.0
            and comparison.mask_badness("oval", max_ita * OVAL_AIM, max_hue * hue_aims[1]) <= 1.0)


def _report(reference: InputTone, before: ToneComparison, after: ToneComparison, passes: int,
            landmarks: dict[str, np.ndarray], max_ita: float, max_hue: float) -> ToneReport:
    raw, out = before.primary.avatar, after.primary.avatar
    return ToneReport(
        ita_in=reference.ita, mst_in=reference.mst, hue_in=reference.hue,
        ita_raw=raw.ita, mst_raw=mst_from_lab(np.asarray(raw.lab)), hue_raw=raw.hue,
        ita_out=out.ita, mst_out=mst_from_lab(np.asarray(out.lab)), hue_out=out.hue,
        correction=out.ita - raw.ita,
        delta_ita_raw=before.worst_ita, delta_hue_raw=before.worst_hue, delta_e_raw=before.worst_delta_e,
        delta_ita=after.worst_ita, delta_hue=after.worst_hue, delta_e=after.worst_delta_e,
        lightening_raw=before.lightening, lightening=after.lightening,
        tone_ok=after.within(max_ita, max_hue), skin_ok=after.mask_badness("skin", max_ita, max_hue) <= 1.0,
        worst=f"{after.worst.mask}/{after.worst.source}", passes=passes,
        mask_source="+".join(landmarks), before=before, after=after,
    )
