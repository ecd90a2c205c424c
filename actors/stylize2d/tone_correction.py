"""The tone guard's correction, in CIELAB over a feathered face-and-neck skin region (`paint_region`).

A `Correction` shifts L*, a*, b* by constants and may change the contrast of L* a little (±15% a pass,
±30% in all) about the skin's median: every shading step, band and line of the style keeps its place and
order (a flat-shaded style stays flat), and every median moves predictably, so the effect on each measurement
is known before painting. `solve_correction` picks the correction that brings every (mask × landmark
source) measurement within the bounds, the tight skin mask first, or as close as one correction can
(the whole oval also holds lips, brows and an open mouth, which a style draws its own way).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from actors.metrics.skin_tone import ita_from_lab
from actors.metrics.tone_compare import (
    OVAL_PRIORITY, FaceRegions, ToneComparison, hue_error, hue_from_lab, region_mask,
)
from actors.stylize2d.skin_region import skin_region

DISTANCE_WEIGHT = 0.05  # cost of 1 ΔE76 unit away from the input's colours, in fractions of a bound
GAIN_WEIGHT = 0.5  # cost of a 0.1 change of L* contrast: 0.05 of a bound
MAX_GAIN_CHANGE = 0.15  # one correction changes L* contrast by at most this ...
MAX_TOTAL_GAIN_CHANGE = 0.3  # ... and the composed passes keep it within 1 ± this: more deepens a flat style's
# shadow patches into blotches (uncapped, three passes reached 1.51)
HOLD_WEIGHT = 10.0  # cost of breaking a bound the avatar held before the guard, per fraction of that bound
# beyond it: far above what it could win elsewhere, so a correction keeps the bounds already held (at most
# a little beyond) instead of trading them for another measurement's


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB → float32 CIELAB (OpenCV's conversion: fast, for painting; measuring uses scikit-image)."""
    return cv2.cvtColor(rgb.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 CIELAB → uint8 RGB (L* clipped to 0..100, RGB to 0..255)."""
    lab = lab.astype(np.float32, copy=True)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def skin_weight(lab: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """0..1: the face-and-neck skin (`skin_region`) and, fully, the strict skin mask's inside."""
    scale = lab.shape[0] / 512.0
    region = skin_region(lab, landmarks, skin_lab, feather=3.0 * scale)
    strict = region_mask(landmarks, lab.shape, "skin")
    soft = cv2.GaussianBlur(strict.astype(np.float32), (0, 0), 1.5 * scale)
    return np.maximum(region, np.where(strict, 1.0, soft)).astype(np.float32)


def paint_region(lab: np.ndarray, landmarks: dict[str, np.ndarray], skin_lab: np.ndarray) -> np.ndarray:
    """0..1 weight of the avatar pixels to recolour: the union over every landmark source."""
    weight = np.zeros(lab.shape[:2], np.float32)
    for points in landmarks.values():
        weight = np.maximum(weight, skin_weight(lab, points, skin_lab))
    return weight


@dataclass(frozen=True)
class Correction:
    """L* → pivot + shift + gain × (L* − pivot) and a*, b* + shift, painted with a 0..1 weight.

    A monotone map of L* moves every median (and every lightness band) exactly as it moves one colour,
    so its effect on each measurement is known without repainting. The gain keeps the order of every
    shade and changes only how far shadows sit from the base tone: it is what brings the tight skin mask
    and the whole oval (which holds more of the darker features) into agreement when a style drew its
    shading shallower or deeper than the photo's.
    """

    shift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # ΔL*, Δa*, Δb*
    gain: float = 1.0  # contrast of L* about the pivot
    pivot: float = 50.0  # L* that the gain leaves in place (the avatar's median skin L*)
    reach: float = 30.0  # the gain acts on L* within pivot ± reach (the skin's shades), not beyond (hair, ink)

    def apply(self, lab: np.ndarray, weight: np.ndarray) -> np.ndarray:
        target = lab.copy()
        deviation = np.clip(lab[..., 0] - self.pivot, -self.reach, self.reach)
        target[..., 0] = lab[..., 0] + self.shift[0] + (self.gain - 1.0) * deviation
        target[..., 1] += self.shift[1]
        target[..., 2] += self.shift[2]
        return lab + weight[..., None] * (target - lab)


@dataclass(frozen=True)
class Hold:
    """Bounds a correction must not break: per measurement, whether its ITA (`ita`) and its hue (`hue`)
    were within `max_ita` / `max_hue` before the guard acted (`solve_correction`)."""

    ita: np.ndarray  # (K,) bool
    hue: np.ndarray  # (K,) bool
    max_ita: float
    max_hue: float

    @classmethod
    def of(cls, comparison: ToneComparison, max_ita: float, max_hue: float) -> Hold:
        return cls(ita=np.array([abs(d.ita_error) <= max_ita for d in comparison.deltas]),
                   hue=np.array([abs(d.hue_error) <= max_hue for d in comparison.deltas]),
                   max_ita=float(max_ita), max_hue=float(max_hue))


def solve_correction(comparison: ToneComparison, gains: np.ndarray, max_ita: float, max_hue: float,
                     pivot: float, reach: float, max_gain_change: float = MAX_GAIN_CHANGE,
                     applied_gain: float = 1.0, max_total_gain_change: float = MAX_TOTAL_GAIN_CHANGE,
                     hold: Hold | None = None) -> Correction:
    """The Correction that minimises the worst measurement (as a fraction of its bound), each
    measurement k's median colour moving by gains[k] × what the correction does to it; a coarse-to-fine
    grid search over ΔL*, gain, Δa*, Δb*.

    A small cost for the distance to the input's colours (and for contrast change) picks, among
    equally good corrections, the most faithful and least visible one. `applied_gain`: the contrast of
    the corrections this one is composed onto (`compose`): the step changes contrast by at most
    `max_gain_change`, and the composed total stays within 1 ± `max_total_gain_change`.

    `hold`: the bounds the avatar met before the guard acted, which a correction may not break. Without
    it, when two landmark sources disagreed by more than the ITA bound, the minimax raised a* and b*:
    more chroma compresses every ITA difference, so the worst ITA shrank while the hue of every
    measurement went beyond its bound (a bearded face's `cartoon`: hue 0.1° → 5.2°, b* +2).
    """
    medians = np.array([d.avatar.lab for d in comparison.deltas])  # (K, 3)
    references = np.array([d.reference.lab for d in comparison.deltas])
    ita_bias = np.array([d.avatar.ita for d in comparison.deltas]) - ita_from_lab(medians)
    target_ita = np.array([d.reference.ita for d in comparison.deltas])
    target_ita_of_median = ita_from_lab(references)
    target_hue = hue_from_lab(references)
    target_chroma = np.hypot(references[:, 1], references[:, 2])
    priority = np.array([1.0 if d.mask == "skin" else OVAL_PRIORITY for d in comparison.deltas])

    def cost(params: np.ndarray) -> np.ndarray:  # (N, 4): ΔL, gain, Δa, Δb -> (N,)
        change = np.empty((len(params), len(medians), 3))
        deviation = np.clip(medians[None, :, 0] - pivot, -reach, reach)
        change[..., 0] = params[:, None, 0] + (params[:, None, 1] - 1.0) * deviation
        change[..., 1] = params[:, None, 2]
        change[..., 2] = params[:, None, 3]
        moved = medians[None] + gains[None, :, None] * change  # (N, K, 3)
        moved[..., 0] = np.clip(moved[..., 0], 0.0, 100.0)
        ita_moved = ita_from_lab(moved)
        d_ita = np.maximum(np.abs(ita_moved + ita_bias[None] - target_ita[None]),
                           np.abs(ita_moved - target_ita_of_median[None]))
        d_hue = (hue_from_lab(moved) - target_hue[None] + 180.0) % 360.0 - 180.0
        d_hue = hue_error(d_hue, np.hypot(moved[..., 1], moved[..., 2]), target_chroma[None])
        per = np.maximum(d_ita / max_ita, np.abs(d_hue) / max_hue) * priority[None]
        worst = per.max(axis=1)
        if hold is not None:
            broken = np.maximum(np.where(hold.ita[None], d_ita / hold.max_ita - 1.0, 0.0),
                                np.where(hold.hue[None], np.abs(d_hue) / hold.max_hue - 1.0, 0.0))
            worst = worst + HOLD_WEIGHT * np.maximum(broken, 0.0).max(axis=1)
        distance = np.linalg.norm(moved - references[None], axis=2).mean(axis=1)
        return worst + DISTANCE_WEIGHT * distance + GAIN_WEIGHT * np.abs(applied_gain * params[:, 1] - 1.0)

    # Search only between the shifts each measurement alone asks for (and none), a unit beyond: far
    # outside that box, greying the skin would make every ITA and hue difference small.
    needed = (references - medians) / np.maximum(gains, 0.2)[:, None]
    low = np.minimum(needed.min(axis=0), 0.0) - 1.0
    high = np.maximum(needed.max(axis=0), 0.0) + 1.0
    # The step's contrast: within 1 ± max_gain_change, and the total (applied × step) within
    # 1 ± max_total_gain_change; 1 (no change) always stays inside.
    gain_low = min(max((1.0 - max_total_gain_change) / applied_gain, 1.0 - max_gain_change), 1.0)
    gain_high = max(min((1.0 + max_total_gain_change) / applied_gain, 1.0 + max_gain_change), 1.0)
    low = np.array([low[0], gain_low, low[1], low[2]])
    high = np.array([high[0], gain_high, high[1], high[2]])
    best, span = (low + high) / 2.0, (high - low) / 2.0
    # The search starts from no contrast change; its first grid spans the whole (maybe lopsided) range.
    best[1], span[1] = 1.0, max(1.0 - gain_low, gain_high - 1.0)
    for _ in range(4):
        axes = [np.linspace(max(c - w, lo), min(c + w, hi), 9) for c, w, lo, hi in zip(best, span, low, high)]
        grid = np.vstack([np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 4), best[None]])
        best = grid[int(np.argmin(cost(grid)))]
        span = span / 3.0
    return Correction(shift=(float(best[0]), float(best[2]), float(best[3])), gain=float(best[1]),
                      pivot=float(pivot), reach=float(reach))


def offset_gains(weight: np.ndarray, regions: FaceRegions, comparison: ToneComparison) -> np.ndarray:
    """Per measurement, how much of a correction reaches its median: the mean paint weight of its mask."""
    inside = weight[regions.union]
    return np.array([float(inside[regions.members[(d.source, d.mask)]].mean()) for d in comparison.deltas])


def compose(first: Correction, then: Correction) -> Correction:
    """`then` refined onto `first` (both solved against the same raw avatar's pivot and reach): the
    shifts add and the gains multiply, which is exact inside the reach."""
    return Correction(shift=tuple(a + b for a, b in zip(first.shift, then.shift)),
                      gain=first.gain * then.gain, pivot=first.pivot, reach=first.reach)
