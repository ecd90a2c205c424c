"""Cel shading of skin that keeps the person's tone: flat tones built from the median skin colour.

The base tone is the person's own median skin colour in CIELAB. The shadow and the light tone sit one
step below and above it in ITA° with b* (the warmth) held, so shading never cools or greys the skin.
Which pixels take which tone follows the photo's own shading (quantiles of the smoothed skin L*), with
the shadow and light areas each kept well under half of the skin: the median skin colour of the
avatar stays the base tone, i.e. the input's median. A style may also keep the photo's own light and
colour at the scale of a cheek (`SkinShading.light`, `skin_low_pass`), so that the skin matches the
photo over any region one measures, not only over the whole skin mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from actors.align.ears import ear_windows
from actors.metrics.tone_compare import hue_from_lab
from actors.stylize2d.offline import regions
from actors.stylize2d.offline.filters import band_lightness, drifting_steps, median_lab
from actors.stylize2d.skin_region import face_and_neck, fill_neck_band

SKIN_MATCH_QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # skin L* quantiles `match_skin_lightness` matches
SKIN_MATCH_TAPER = 10.0  # L* over which its end shifts fade beyond the skin's 10th and 90th percentiles
FLUSHED_HUE = 25.0  # hue° (either way) within which a more saturated ear pixel is the skin flushed or backlit
MIN_WARMTH = 4.0  # b* floor used for the ITA geometry (near-grey skin would make tan() explode)
STEP_LIMITS = (3.0, 14.0)  # L* distance of the shadow / light tone from the base, clamped


@dataclass(frozen=True)
class SkinTones:
    """Three Lab tones (float32 (3,)) of one person's skin: shadow, base (= the median), light."""

    shadow: np.ndarray
    base: np.ndarray
    light: np.ndarray


def ita_degrees(lightness: float, warmth: float) -> float:
    """ITA° = atan((L* − 50) / b*), via atan2 so that b* → 0 stays finite."""
    return float(np.degrees(np.arctan2(lightness - 50.0, warmth)))


def lightness_at_ita(ita: float, warmth: float) -> float:
    """The L* that has ITA° `ita` at warmth b* `warmth`."""
    return 50.0 + warmth * float(np.tan(np.radians(np.clip(ita, -85.0, 85.0))))


def skin_tones(skin_lab: np.ndarray, step_degrees: float) -> SkinTones:
    """Shadow, base and light tones `step_degrees` of ITA below / above the median skin colour.

    a* and b* are those of the median for all three tones (same warmth, same hue); only L* moves,
    to where ITA is shifted by ∓`step_degrees`, clamped to `STEP_LIMITS` L* units from the base.
    """
    base = np.asarray(skin_lab, np.float32).reshape(3)
    warmth = max(float(base[2]), MIN_WARMTH)
    ita = ita_degrees(float(base[0]), warmth)
    lo, hi = STEP_LIMITS
    darker = float(np.clip(base[0] - lightness_at_ita(ita - step_degrees, warmth), lo, hi))
    lighter = float(np.clip(lightness_at_ita(ita + step_degrees, warmth) - base[0], lo, hi))
    shadow = base.copy()
    shadow[0] = max(base[0] - darker, 2.0)
    light = base.copy()
    light[0] = min(base[0] + lighter, 98.0)
    return SkinTones(shadow=shadow, base=base, light=light)


def tone_index(lightness: np.ndarray, skin_weight: np.ndarray, shadow_share: float, light_share: float,
               softness: float = 1.2) -> np.ndarray:
    """Per-pixel tone position in [-1, 1] (−1 shadow, 0 base, +1 light) from the smoothed `lightness`.

    Thresholds are the `shadow_share` and 1 − `light_share` quantiles of L* over the skin (weight > 0.5),
    so the areas are controlled and the base tone keeps the median. Steps are ramps `softness` L* wide
    (antialiased borders).
    """
    if not 0.0 <= shadow_share < 0.5 or not 0.0 <= light_share < 0.5:
        raise ValueError(f"Tone shares must be in [0, 0.5), got shadow {shadow_share} and light {light_share}.")
    inside = skin_weight > 0.5
    values = lightness[inside] if inside.any() else lightness.ravel()
    dark_at, light_at = np.quantile(values, [shadow_share, 1.0 - light_share])
    down = np.clip((dark_at - lightness) / softness + 0.5, 0.0, 1.0)
    up = np.clip((lightness - light_at) / softness + 0.5, 0.0, 1.0) if light_share > 0 else 0.0 * lightness
    return (up - down).astype(np.float32)


def clean_index(index: np.ndarray, size: int) -> np.ndarray:
    """Remove specks smaller than about `size` px from a tone map: a median filter on the quantised
    map at half size (the map is smooth; 4x cheaper), brought back with soft borders."""
    if size <= 1:
        return index
    h, w = index.shape
    half = cv2.resize(index, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    quantised = np.clip(np.round(half * 100.0) + 128.0, 0, 255).astype(np.uint8)
    cleaned = (cv2.medianBlur(quantised, (size // 2) | 1).astype(np.float32) - 128.0) / 100.0
    return cv2.resize(cleaned, (w, h), interpolation=cv2.INTER_LINEAR)


def tone_lightness(index: np.ndarray, tones: SkinTones) -> np.ndarray:
    """L* per pixel: the base tone, moving to the shadow tone as `index` → −1 and the light tone as → +1."""
    base = float(tones.base[0])
    down = float(tones.base[0] - tones.shadow[0])
    up = float(tones.light[0] - tones.base[0])
    return (base + np.where(index < 0, index * down, index * up)).astype(np.float32)


def _closeness(chroma: np.ndarray, offset: np.ndarray, chroma_tolerance: float, darker: float,
               lighter: float) -> np.ndarray:
    """0..1: 1 within the tolerances (a*b* distance `chroma` from the skin colour; L* `offset` from it
    at most `darker` below and `lighter` above), ramping to 0 beyond them."""
    close = np.clip(1.0 - (chroma - chroma_tolerance) / chroma_tolerance, 0.0, 1.0)
    beyond = np.maximum(-offset - darker, offset - lighter)
    return close * np.clip(1.0 - beyond / 8.0, 0.0, 1.0)


@dataclass(frozen=True)
class SkinShading:
    """How a style paints skin from the person's median colour (see `shade_skin`)."""

    tone_step: float  # ITA° between the base tone and the shadow / light tone
    shadow_share: float  # skin area in the shadow tone
    light_share: float  # skin area in the light tone
    sigma: float  # px: smoothing of L* before it is split into tones
    detail: float  # share of the photo's own L* (minus the tones) kept on top of the tones
    detail_sigma: float  # px: smoothing of that kept detail
    chroma: float  # share of the photo's a*, b* variation kept around the median
    poster_step: float = 0.0  # L* step the kept detail is posterised to (0: smooth)
    chroma_step: float = 0.0  # a*, b* step the kept chroma variation is posterised to (0: smooth)
    poster_drift: float = 0.0  # steps by which both posterisations' levels drift across the image (`drifting_steps`)
    light_sigma: float = 0.0  # px: the scale from which the photo's own light and colour are kept ...
    light: float = 0.0  # ... the share of that light (L*) kept (0: off, 1: in full) ...
    light_colour: float = 0.0  # ... and of that colour (a*, b*): it does not unflatten the shading


def paint_skin(out: np.ndarray, lab: np.ndarray, weight: np.ndarray, solid: np.ndarray, skin: np.ndarray,
               shading: SkinShading, photo: np.ndarray | None = None) -> None:
    """In place: `out` (Lab) takes `shade_skin`'s tones where skin is `solid` (0..1), within its bounding box.
    `photo` (Lab, as `lab`): the unflattened photo whose light is kept (default: `lab`, see `shade_skin`)."""
    box = regions.bounding_box(solid)
    if box is not None:
        light_source = None if photo is None else np.ascontiguousarray(photo[box])
        shaded = shade_skin(np.ascontiguousarray(lab[box]), weight[box], skin, shading, light_source)
        out[box] += (shaded - out[box]) * solid[box][..., None]


def shade_skin(lab: np.ndarray, weight: np.ndarray, skin: np.ndarray, shading: SkinShading,
               photo: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 3) Lab skin: the three tones of the median skin colour `skin`, placed by the photo's
    shading (`lab`, flattened), plus a controlled share of the photo's own detail and colour variation,
    optionally posterised into flat steps. The detail is centred on the tones (posterised steps are
    symmetric around 0), so the median skin colour stays the input's.

    The kept light (`SkinShading.light`) is taken from `photo` when given, else from `lab`. Edge-preserving
    flattening lifts the dark creases of textured skin more than its smooth parts, so a style that
    keeps the light in full follows the photo itself: its skin then matches the photo over whichever
    region one measures. At a partial share the flattened light reads closer (measured: anime)."""
    tones = skin_tones(skin, shading.tone_step)
    smooth = cv2.GaussianBlur(lab[..., 0], (0, 0), shading.sigma)
    index = clean_index(tone_index(smooth, weight, shading.shadow_share, shading.light_share), 7)
    base = tone_lightness(index, tones)
    residual = lab[..., 0] - base
    if shading.detail_sigma > 0:
        residual = cv2.GaussianBlur(residual, (0, 0), shading.detail_sigma)
    if shading.poster_step > 0:
        residual = drifting_steps(residual, shading.poster_step, shading.poster_drift, clean=5)
    chroma = lab[..., 1:] - skin[None, None, 1:]
    if shading.chroma_step > 0:
        chroma = np.dstack([drifting_steps(cv2.GaussianBlur(np.ascontiguousarray(chroma[..., c]), (0, 0), 2.0),
                                           shading.chroma_step, shading.poster_drift, clean=7) for c in (0, 1)])
    out = np.empty_like(lab)
    out[..., 0] = base + shading.detail * residual
    out[..., 1:] = skin[None, None, 1:] + shading.chroma * chroma
    if shading.light_sigma > 0 and max(shading.light, shading.light_colour) > 0:
        shares = np.array([shading.light, shading.light_colour, shading.light_colour], np.float32)
        source = lab if photo is None else photo
        out += shares * skin_low_pass(source - out, weight, shading.light_sigma)
    return out


def skin_low_pass(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """(h, w, c) Gaussian low pass of `values` over the skin only (normalised convolution by the 0..1
    `weight`: hair, eyes and lips neither pull it nor are reached by it), 0 where there is no skin near.

    Added to the tones as `low_pass(photo − tones)`, it gives the painted skin the photo's own light and
    colour at the scale of a cheek (`sigma`) while the bands, the posterised steps and the lines stay:
    without it a flat-shaded face matches the photo's median over one region (the guard's) and not over
    another holding more or less shadow (the jaw line, the whole oval, another detector's region)."""
    w = np.asarray(weight, np.float32)
    num = cv2.GaussianBlur(np.ascontiguousarray(values * w[..., None]), (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)
    confidence = np.clip(den / 0.25, 0.0, 1.0)
    return num / np.maximum(den, 1e-4)[..., None] * (confidence * w)[..., None]


# Brows (upper edge outer → inner, lower edge inner → outer) and the outer lip contour: they keep their
# own colour even when it is close to the skin's.
BROWS = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276))
LIPS = ((61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),)
FEATURES = BROWS + LIPS


def feature_mask(landmarks: np.ndarray, shape: tuple[int, int], polygons=FEATURES) -> np.ndarray:
    """0..1 soft mask of landmark polygons (default: the brows and lips), grown a little."""
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(mask, [np.round(landmarks[list(polygon), :2]).astype(np.int32)], 255)
    grow = max(1, int(round(0.04 * float(np.linalg.norm(landmarks[468, :2] - landmarks[473, :2])))))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 1.5)


@dataclass(frozen=True)
class HeadSkin:
    """Where skin is on the head and neck (0..1 float32, see `head_skin_weight`): `weight`, from which a
    style takes its tone statistics, and `painted`, what it paints as skin (`weight` plus the rim)."""

    weight: np.ndarray
    painted: np.ndarray


def head_skin_weight(lab: np.ndarray, landmarks: np.ndarray, skin_lab: np.ndarray, person: np.ndarray,
                     chroma_tolerance: float, rim: float = 0.0) -> HeadSkin:
    """0..1 weight of visible skin on the head and neck.

    Inside the landmark face oval and the neck, anything near the skin colour counts (shading,
    highlights); beyond it, in a head ellipse (forehead up to the hairline, ears, a bald scalp), only
    colours close to the median skin colour in chroma and not much darker, so hair of a similar hue
    stays hair.
    Wider than the tone-measuring mask on purpose: skin left out would be shaded as hair or clothes
    and come out as pale or dark patches at the hairline, ears and neck. Lips are never skin, and on
    the brows only what is within 10 L* of the skin is (`feature_mask`): they keep their own colour.

    `rim` (face widths; 0: `painted` is `weight`): `painted` also takes a band around the landmark oval,
    which sits inside the true face edge on a laughing or turned face, and judges a pixel's chroma
    against the skin colour shaded down to its own L* as well. Shade takes chroma with lightness, so
    deep shadow on dark skin is near grey: judged against the unshaded colour only, the shadowed side
    of a dark face (under a hat brim, at the jaw) failed as skin and was painted in the lighter tones
    of hair or clothes. The head ellipse widens by the rim too (a lit ear's outer part lies beyond it),
    the neck band spans the jaw's full width, and a pixel lighter than the skin may match it lit
    towards white (`_lit_chroma_distance`: a highlight on a bald scalp), and at the ears a pixel more
    saturated than the skin in its hue matches it (`_flushed_chroma_distance`: a backlit ear glows red).
    Both weights share one pass over the geometry and the colours.
    """
    h, w = lab.shape[:2]
    lm = np.asarray(landmarks, np.float32)[:, :2]
    face = face_and_neck(lm, (h, w)).astype(np.float32) / 255.0
    oval = lm[[10, 152, 234, 454]]
    centre = ((oval[2] + oval[3]) / 2 + (oval[0] + oval[1]) / 2) / 2
    height = float(np.linalg.norm(oval[1] - oval[0]))
    half_width = 0.62 * float(np.linalg.norm(oval[3] - oval[2]))

    def head_ellipse(grown: int = 0) -> np.ndarray:  # uint8 0/255: the head, `grown` px wider each side
        head = np.zeros((h, w), np.uint8)
        axes = (int(round(half_width)) + grown, int(round(0.75 * height)))
        cv2.ellipse(head, (int(round(centre[0])), int(round(centre[1] - 0.12 * height))), axes, 0.0, 0.0, 360.0,
                    255, -1)
        return head

    head = head_ellipse()
    a, b = np.ascontiguousarray(lab[..., 1]), np.ascontiguousarray(lab[..., 2])
    chroma = np.sqrt((a - skin_lab[1]) ** 2 + (b - skin_lab[2]) ** 2)
    offset = lab[..., 0] - skin_lab[0]
    p = np.asarray(person, np.float32)
    p = p / 255.0 if p.max() > 1.0 else p
    # On the brows, only what is not clearly darker than the skin is skin: the hairs stay brow.
    brows = feature_mask(lm, (h, w), BROWS)
    keep = np.clip((p - 0.3) / 0.4, 0.0, 1.0) * (1.0 - feature_mask(lm, (h, w), LIPS))

    def skin_weight(chroma: np.ndarray, head: np.ndarray) -> np.ndarray:
        loose = _closeness(chroma, offset, chroma_tolerance, 40.0, 40.0)
        loose = loose + (_closeness(chroma, offset, chroma_tolerance, 10.0, 40.0) - loose) * brows
        # Beyond the oval: hair is mostly darker than skin, a bald or lit scalp lighter.
        tight = _closeness(chroma, offset, 0.7 * chroma_tolerance, 20.0, 35.0)
        inner = face * loose
        outer = head.astype(np.float32) / 255.0 * tight
        # Beyond the oval, only skin that joins the face's skin (a forehead, ears, a scalp), not islands
        # of a similar colour in the hair (highlights).
        _, labels = cv2.connectedComponents(((inner > 0.5) | (outer > 0.5)).astype(np.uint8), connectivity=4)
        joined = np.unique(labels[inner > 0.5])
        outer *= np.isin(labels, joined[joined > 0])
        weight = np.maximum(inner, outer) * keep
        # Soft borders, but thin structures that are clearly not skin (glasses frames) stay out.
        return np.minimum(cv2.GaussianBlur(weight, (0, 0), 2.0), np.maximum(inner, outer))

    weight = skin_weight(chroma, head)
    if rim <= 0:
        return HeadSkin(weight, weight)
    grow = max(1, int(round(rim * float(np.linalg.norm(oval[3] - oval[2])))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    # ... and the head ellipse widened by as much (the ears' outer rims lie beyond it) and the whole neck
    # (the prior's neck band is inset from the jaw: the neck's sides beyond it were painted in clothes
    # tones with a straight edge down to the collar).
    widened = head_ellipse(grow)
    fill_neck_band(widened, lm, inset=-grow)
    band = np.maximum(widened, cv2.dilate((face > 0.5).astype(np.uint8), disk) * 255)
    shade = np.clip(lab[..., 0] / max(float(skin_lab[0]), 1.0), 0.0, 1.0)
    shaded = np.minimum(chroma, np.sqrt((a - shade * skin_lab[1]) ** 2 + (b - shade * skin_lab[2]) ** 2))
    matched = np.minimum(shaded, _lit_chroma_distance(lab, skin_lab))
    for window in ear_windows(lm, (h, w)):
        matched[window] = np.minimum(matched[window], _flushed_chroma_distance(lab[window], skin_lab))
    return HeadSkin(weight, skin_weight(matched, band))


def _flushed_chroma_distance(lab: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """0 where a pixel (of an ear's window) has more chroma than the skin at a hue within FLUSHED_HUE
    of its hue, infinite elsewhere. Light through an ear, or blood under its thin skin, saturates the
    skin's own colour towards red: judged by chroma distance only, the concha and the fossa of a
    backlit ear failed as skin and were painted as dark hair blobs. Hair, even brown, has less chroma
    than the skin; lips are excluded by the caller."""
    hue_gap = np.abs((hue_from_lab(lab) - hue_from_lab(skin_lab) + 180.0) % 360.0 - 180.0)
    more_chroma = np.hypot(lab[..., 1], lab[..., 2]) >= float(np.hypot(skin_lab[1], skin_lab[2]))
    flushed = more_chroma & (hue_gap <= FLUSHED_HUE)
    return np.where(flushed, 0.0, np.inf).astype(np.float32)


def _lit_chroma_distance(lab: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """a*b* distance of each pixel from the skin colour lit towards white at the pixel's own L* (a
    highlight on a bald scalp or a forehead mixes the skin with white light: its chroma falls as its L*
    rises). Infinite where the pixel is not lighter than the skin or keeps under 0.6 of that lit
    chroma: grey and white hair, as light, have nearly none."""
    skin_l, skin_ab = float(skin_lab[0]), np.asarray(skin_lab[1:], np.float32)
    lit = np.clip((100.0 - lab[..., 0]) / max(100.0 - skin_l, 1.0), 0.0, 1.0)
    a, b = lab[..., 1], lab[..., 2]
    distance = np.sqrt((a - lit * skin_ab[0]) ** 2 + (b - lit * skin_ab[1]) ** 2)
    chroma = np.hypot(a, b)
    keeps = (lab[..., 0] > skin_l) & (chroma >= 0.6 * lit * float(np.hypot(*skin_ab)))
    return np.where(keeps, distance, np.inf).astype(np.float32)


def match_skin_lightness(lab: np.ndarray, skin_mask: np.ndarray, photo: np.ndarray, weight: np.ndarray,
                         taper: float = SKIN_MATCH_TAPER) -> None:
    """Map the painted skin's L* (in place, by `weight`) so that its 10th to 90th percentiles over
    `skin_mask` are the photo's: a monotone piecewise-linear curve through SKIN_MATCH_QUANTILES.

    A style that darkens shadows more than lit skin (graphite) keeps the median where
    `recentre_skin` puts it and still reads darker under any region holding more shadow than the
    mask the median was taken on (another detector's, or the whole oval). Matched at every
    lightness, the skin reads the same under any of them. Below the skin's 10th percentile and above
    its 90th the curve's end shifts fade out over `taper` L*, so lines, hair and highlights keep
    their own lightness (a fixed shift there lightened dark curls inside the painted weight and drew
    its outline across the hair).
    """
    selected = np.asarray(skin_mask)[::2, ::2].astype(bool)
    if selected.sum() < len(SKIN_MATCH_QUANTILES):
        return
    painted = np.quantile(lab[::2, ::2, 0][selected], SKIN_MATCH_QUANTILES)
    target = np.quantile(photo[::2, ::2, 0][selected], SKIN_MATCH_QUANTILES)
    painted = np.maximum.accumulate(painted + 1e-4 * np.arange(len(painted)))  # strictly increasing for interp
    lightness = lab[..., 0]
    inside = np.interp(lightness, painted, target).astype(np.float32)
    below = lightness + (target[0] - painted[0]) * np.clip((lightness - painted[0] + taper) / taper, 0.0, 1.0)
    above = lightness + (target[-1] - painted[-1]) * np.clip((painted[-1] + taper - lightness) / taper, 0.0, 1.0)
    mapped = np.where(lightness < painted[0], below, np.where(lightness > painted[-1], above, inside))
    lab[..., 0] = lightness + (mapped - lightness) * weight


def recentre_skin(lab: np.ndarray, skin_mask: np.ndarray, skin_lab: np.ndarray, weight: np.ndarray) -> None:
    """Shift the painted skin (in place, by `weight`) so that its median colour over `skin_mask` is
    exactly the photo's median `skin_lab`: shading, flattening and the kept detail are not perfectly
    symmetric, and the skin tone is the one thing a style must not move."""
    # Every other pixel in each direction: the median moves by a few hundredths, at a quarter of the cost.
    offset = median_lab(lab[::2, ::2], np.asarray(skin_mask)[::2, ::2]) - np.asarray(skin_lab, np.float32)
    lab -= offset[None, None, :] * weight[..., None]
