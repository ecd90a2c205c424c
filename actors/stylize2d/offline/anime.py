"""`anime`: a cel-shaded anime portrait of the person, not of a generic character.

What is drawn comes from the photo: the eye outlines are the person's (landmarks), with an enlarged
iris in their own iris colour, catchlights and a heavy lash line along their own upper lid; brows,
nose, mouth, jaw and cheek shapes come through the cel shading, which follows the photo's own shading;
the lips keep their contour and colour; the hair keeps its silhouette and colour, flat-shaded in two
tones; glasses, a bindi and jewellery survive as solid shapes (strong local structure keeps its flat
photo colour), and so does facial hair, found on the lower face by its texture (`facial_hair`). A
modest landmark-driven warp enlarges the eyes and makes the nose, mouth and jaw a little smaller.

Skin tone: skin is painted from the person's median skin colour (`cel.shade_skin`: base, shadow and
light tones at ±one ITA step with the same a*, b*), so the avatar's median skin colour is the input's;
the photo's own colour, and half its light (more would unflatten the cel), at the scale of a cheek are
kept on top of the tones, so the skin also matches over the jaw line, the whole oval or any other region
(a purely flat face matches only on one). The colour is the photo's own, the light the flattened photo's
(`skin_light_and_colour`): flattening lifts the creases' lightness, which half of it makes up for, but
it also greys their colour, and on the darkest, near-grey skin the cheeks' a* then read a unit low.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, cel, eyes, facial_hair, features, hair, lines, regions
from actors.stylize2d.offline.filters import (
    detail_weight, flatten, median_lab, remove_specks, to_float, to_lab, to_rgb, to_uint8, wide_blur, xdog_lines,
)
from actors.stylize2d.offline.warp import FaceWarp, Magnify, Slim

LINE_COLOUR = np.array([0.2, 0.11, 0.1], np.float32)  # warm dark brown, as in cel animation
# Face widths beyond the landmark oval where skin of the face's colour is still painted as skin: the oval
# sits inside the true face edge on a laughing or turned face, and the jaw and cheek sides beyond it
# (often in deep shadow) came out in the lighter tones of hair or clothes. They take the cel tones but
# not the statistics: the tone shares and the kept light come from the skin within the oval's prior.
SKIN_RIM = 0.08


@dataclass(frozen=True)
class Look:
    """The anime look's knobs, tuned against SFace identity on real photos (tests/actors/stylize2d)."""

    skin: cel.SkinShading = field(default_factory=lambda: cel.SkinShading(
        tone_step=15.0, shadow_share=0.22, light_share=0.0, sigma=2.5,
        detail=0.45, detail_sigma=2.0, chroma=0.5, light_sigma=12.0, light=0.5,
        light_colour=1.0))
    smoothness: float = 80.0  # flattening λ (edge-preserving)
    warp: float = 1.0  # scale of the eye / nose / mouth / jaw warp
    other_sigma: float = 4.0  # px: smoothing of L* before clothes are split into tones
    other_detail: float = 0.3  # share of the flattened L* kept under the clothes' tones
    other_chroma: float = 1.1  # chroma gain for clothes
    hair_detail: float = 0.15  # share of the flattened L* kept under the hair tones (strands)
    face_line_tau: float = 0.03  # XDoG threshold inside the face (higher: fewer lines, cleaner skin)
    keep_low: float = 6.0  # local contrast (ΔE) from which the flat photo colour is kept ...
    keep_high: float = 14.0  # ... and fully from here (glasses, facial hair, jewellery)
    lip_opacity: float = 0.5  # the lips' own flat colour over the flattened photo


LOOK = Look()


def anime_warp(landmarks: np.ndarray, amount: float) -> FaceWarp:
    """Larger (mostly taller) eyes, a smaller nose and mouth, a slightly narrower lower face.

    Modest on purpose: the person must stay recognisable (`amount` 1 is the default look).
    """
    lm = np.asarray(landmarks, np.float32)[:, :2]
    eye_w = regions.eye_width(lm)
    fields = []
    for contour in (regions.EYE_LEFT, regions.EYE_RIGHT):
        centre = lm[list(contour)].mean(axis=0)
        fields.append(Magnify(tuple(centre), 0.9 * eye_w, 0.12 * amount, 0.22 * amount))
    nose_w = float(np.linalg.norm(lm[regions.NOSE_WINGS[0]] - lm[regions.NOSE_WINGS[1]]))
    fields.append(Magnify(tuple(lm[regions.NOSE_TIP]), 0.55 * nose_w, -0.14 * amount, -0.1 * amount))
    mouth = lm[[61, 291, 13, 14]].mean(axis=0)  # mouth corners and lip-centre points
    mouth_w = float(np.linalg.norm(lm[61] - lm[291]))
    fields.append(Magnify(tuple(mouth), 0.65 * mouth_w, -0.1 * amount, -0.08 * amount))
    face_w = regions.face_width(lm)
    fields.append(Slim(axis_x=float((lm[234, 0] + lm[454, 0]) / 2), top=float(lm[regions.NOSE_TIP, 1]),
                       full=float(mouth[1]), bottom=float(lm[regions.CHIN, 1]), half_width=face_w / 2,
                       amount=0.06 * amount, lift=0.05 * amount))
    return FaceWarp(fields)


def warp_face(face: AlignedFace, amount: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(crop, person mask, skin mask, landmarks) of `face` through `anime_warp(amount)`, moved together."""
    h, w = face.crop.shape[:2]
    warp = anime_warp(face.landmarks, amount)
    maps = warp.backward_map((h, w))
    skin_mask = warp.apply(face.skin_mask.astype(np.uint8) * 255, maps, cv2.INTER_NEAREST) > 127
    return warp.apply(face.crop, maps), warp.apply(face.mask, maps), skin_mask, warp.forward(face.landmarks)


@dataclass(frozen=True)
class ToonLayers:
    """What the anime and cartoon portraits both start from: the warped photo, masks and landmarks, its
    flat colour (Lab), the person's median skin colour and where skin is (`weight`, from which the tone
    shares and the kept light are taken, and `solid`, the part painted in cel tones, which also reaches
    SKIN_RIM beyond the landmark oval); `person`: the soft person mask."""

    crop: np.ndarray
    mask: np.ndarray
    skin_mask: np.ndarray
    landmarks: np.ndarray
    photo: np.ndarray
    flat: np.ndarray
    lab: np.ndarray
    skin: np.ndarray
    weight: np.ndarray
    solid: np.ndarray
    person: np.ndarray


def toon_layers(face: AlignedFace, warp: float, smoothness: float, sigma_color: float) -> ToonLayers:
    """Warp the photo, its masks and landmarks together (`warp_face`), flatten it edge-preservingly, and
    find the skin by the person's own median skin colour: everything downstream keys on that colour."""
    crop, mask, skin_mask, landmarks = warp_face(face, warp)
    photo = to_lab(crop)
    flat = flatten(crop, smoothness=smoothness, sigma_color=sigma_color)
    lab = to_lab(flat)
    skin = median_lab(photo, skin_mask)
    chroma = float(np.hypot(skin[1], skin[2]))
    found = cel.head_skin_weight(lab, landmarks, skin, mask, chroma_tolerance=max(12.0, 0.5 * chroma), rim=SKIN_RIM)
    return ToonLayers(crop=crop, mask=mask, skin_mask=skin_mask, landmarks=landmarks, photo=photo, flat=flat, lab=lab,
                      skin=skin, weight=found.weight, solid=np.clip(found.painted * 1.5, 0.0, 1.0),
                      person=np.clip((mask.astype(np.float32) / 255.0 - 0.3) / 0.4, 0.0, 1.0))


def clothes_colour(lab: np.ndarray, where: np.ndarray, look: Look = LOOK) -> np.ndarray:
    """(h, w, 3) Lab for what is on the person but neither skin nor hair: L* in three tones around its
    own median, placed by its smoothed shading, some flattened L* kept; the local colour smoothed
    (never a colour from elsewhere, so no seams between regions)."""
    inside = where > 0.5
    if inside.sum() < 100:
        return lab.copy()
    median = float(np.median(lab[::2, ::2, 0][inside[::2, ::2]]))
    spread = float(np.clip(0.2 * (100.0 - median), 6.0, 14.0))
    tones = cel.SkinTones(shadow=np.array([median - spread, 0, 0], np.float32),
                          base=np.array([median, 0, 0], np.float32),
                          light=np.array([median + spread, 0, 0], np.float32))
    shading = wide_blur(lab[..., 0], look.other_sigma)
    index = cel.clean_index(cel.tone_index(shading, where, 0.3, 0.2, softness=2.0), 9)
    banded = cel.tone_lightness(index, tones)
    out = np.empty_like(lab)
    out[..., 0] = banded + look.other_detail * (lab[..., 0] - banded)
    out[..., 1:] = wide_blur(lab[..., 1:], 2.0) * look.other_chroma
    return out


def line_art(flat_rgb: np.ndarray, landmarks: np.ndarray, alpha: np.ndarray, skin: np.ndarray, inner: np.ndarray,
             look: Look = LOOK) -> np.ndarray:
    """0..1 ink (0 = ink): contours of the flat image (only strong ones inside the face, so the skin
    stays clean), landmark strokes for the nose base, lip parting and chin, the outline of the person
    and a thinner one where the skin meets hair or clothes."""
    h, w = alpha.shape
    gray = cv2.cvtColor(flat_rgb, cv2.COLOR_RGB2GRAY)
    outside = remove_specks(xdog_lines(gray, sigma=1.2, k=1.6, tau=0.012, phi=70.0), min_area=40)
    inside = remove_specks(xdog_lines(gray, sigma=1.0, k=1.6, tau=look.face_line_tau, phi=60.0), min_area=25)
    face = regions.feather(regions.face_area(landmarks, (h, w)), 4.0)
    ink = outside + (inside - outside) * face
    ink = 1.0 - (1.0 - ink) * (alpha > 0.5)
    strokes = lines.face_strokes(landmarks, (h, w), weight=1.4, eyes=False, brows=False, jaw=False)
    ink = np.minimum(np.minimum(ink, strokes), lines.chin_stroke(landmarks, gray, weight=1.4))
    # The face's own outline against hair and clothes (not around brows and lips, inside the face).
    skin_edge = 1.0 - lines.silhouette((skin > 0.5).astype(np.float32), width=1)
    skin_edge = 1.0 - skin_edge * (alpha > 0.5) * (1.0 - inner)
    return np.minimum(np.minimum(ink, lines.silhouette(alpha, width=3)), 0.35 + 0.65 * skin_edge)


def pastel_backdrop(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft vertical pastel gradient with a few seeded out-of-focus light discs."""
    h, w = shape
    colour = background.pick_colour("anime", rng)
    top = np.clip(colour * 1.04 + 0.02, 0.0, 1.0)
    bottom = np.clip(colour * 0.9, 0.0, 1.0)
    back = background.vertical_gradient((h, w), top, bottom)
    discs = np.zeros((h, w), np.float32)
    for _ in range(7):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h * 0.7)
        r = rng.uniform(0.04, 0.1) * w
        cv2.circle(discs, (int(cx), int(cy)), int(r), float(rng.uniform(0.25, 0.5)), -1, cv2.LINE_AA)
    discs = cv2.GaussianBlur(discs, (0, 0), 3.0)
    return back + (1.0 - back) * discs[..., None]


def keep_details(out: np.ndarray, lab: np.ndarray, photo: np.ndarray, locks: np.ndarray, inner: np.ndarray,
                 look: Look = LOOK) -> None:
    """In place: strong local structure off the hair (glasses, jewellery, nostrils, facial hair) keeps
    its flat photo colour; small, very high-contrast things the flattening blurs (nose rings, studs, a
    bindi) keep the photo's own colour inside the face."""
    keep = detail_weight(lab, 4.0, look.keep_low, look.keep_high) * (1.0 - locks)
    out += (lab - out) * keep[..., None]
    box = regions.bounding_box(inner)
    if box is not None:
        sparkle = detail_weight(np.ascontiguousarray(photo[box]), 2.0, 16.0, 28.0) * (1.0 - locks[box]) * inner[box]
        out[box] += (photo[box] - out[box]) * sparkle[..., None]


def crisp_lips(out: np.ndarray, crop: np.ndarray, landmarks: np.ndarray) -> None:
    """In place: the lips as in the photo, only their fine texture removed (the flattening would fade
    their contour)."""
    crisp = cel.feature_mask(landmarks, out.shape[:2], cel.LIPS)
    box = regions.bounding_box(crisp)
    if box is not None:
        smooth = to_lab(cv2.medianBlur(np.ascontiguousarray(crop[box]), 5))
        out[box] += (smooth - out[box]) * crisp[box][..., None]


def skin_light_and_colour(flat: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Lab whose cheek-scale light and colour the skin keeps: L* of the flattened photo, a*, b* of the
    photo itself (flattening greys the colour of wrinkles and creases: on MST 9–10 skin the checker
    read the cheeks' hue 3.5° off with the flattened colour, within the bound with the photo's)."""
    return np.dstack([flat[..., :1], photo[..., 1:]])


def render(face: AlignedFace, rng: np.random.Generator, strength: float,
           look: Look = LOOK) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, warped landmarks): the anime portrait."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    h, w = face.crop.shape[:2]
    # 1. Warp the photo, its masks and its landmarks together; flat colour; the skin.
    base = toon_layers(face, amount * look.warp, look.smoothness, 6.0)
    crop, mask, skin_mask, landmarks = base.crop, base.mask, base.skin_mask, base.landmarks
    photo, flat, lab, skin, weight, solid = base.photo, base.flat, base.lab, base.skin, base.weight, base.solid
    # 2. Clothes in tones of their own; inside the face, what is not skin keeps its flat photo colour;
    #    hair in its own colour; skin from the median skin colour.
    out = clothes_colour(lab, base.person * (1.0 - solid), look)
    inner = regions.inner_face(landmarks, (h, w))
    out += (lab - out) * inner[..., None]
    locks = hair.hair_weight(mask, weight, landmarks)
    box = regions.bounding_box(locks)
    drawn = hair.hair_colour(np.ascontiguousarray(lab[box]), locks[box], look.hair_detail) if box else None
    if drawn is not None:
        out[box] += (drawn - out[box]) * locks[box][..., None]
    cel.paint_skin(out, lab, weight, solid, skin, look.skin, skin_light_and_colour(lab, photo))
    # 3. Glasses, jewellery and the like kept, and facial hair (flat photo colour); the lips' own contour
    #    and colour.
    keep_details(out, lab, photo, locks, inner, look)
    beard = facial_hair.facial_hair_weight(lab, photo, landmarks, skin)
    out += (lab - out) * beard[..., None]
    crisp_lips(out, crop, landmarks)
    lips = features.lip_shape(lab, landmarks, skin)
    if lips is not None:
        lips.paint(out, look.lip_opacity)
    cel.recentre_skin(out, skin_mask, skin, solid)
    colour = to_float(to_rgb(out))
    # 4. Eyes: the person's eye outline, an enlarged iris in their own colour, catchlights, lashes.
    colour = eyes.paint_eyes(colour, landmarks, eyes.iris_colour(face.crop, face.landmarks), LINE_COLOUR)
    # 5. Line art and backdrop.
    alpha = background.person_alpha(mask, feather=1.0)
    ink = line_art(flat, landmarks, alpha, solid, inner, look)
    colour = colour * ink[..., None] + LINE_COLOUR * (1.0 - ink[..., None])
    return to_uint8(background.composite(colour, pastel_backdrop((h, w), rng), alpha)), landmarks
