"""`anime`: cel-shaded anime portrait — larger eyes, smaller nose and mouth, a softer, narrower jaw
(a landmark-driven mesh warp), flat colour in two skin shades, painted anime eyes, clean line art and a
pastel backdrop. The landmarks go through the same warp and come back with the image.
"""
from __future__ import annotations

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, eyes, lines, regions
from actors.stylize2d.offline.filters import (
    band_lightness, flatten, median_lab, remove_specks, to_float, to_lab, to_rgb, to_uint8, two_tone, wide_blur,
    xdog_lines,
)
from actors.stylize2d.offline.warp import FaceWarp, Magnify, Slim
from actors.stylize2d.skin_region import skin_region

LINE_COLOUR = np.array([0.22, 0.13, 0.12], np.float32)  # warm dark brown, as in cel animation


def anime_warp(landmarks: np.ndarray, amount: float) -> FaceWarp:
    """Bigger eyes, smaller nose and mouth, narrower lower face; `amount` 1 is the default look."""
    lm = np.asarray(landmarks, np.float32)[:, :2]
    eye_w = regions.eye_width(lm)
    fields = []
    for contour in (regions.EYE_LEFT, regions.EYE_RIGHT):
        centre = lm[list(contour)].mean(axis=0)
        fields.append(Magnify(tuple(centre), 0.95 * eye_w, 0.25 * amount, 0.5 * amount))
    nose_w = float(np.linalg.norm(lm[regions.NOSE_WINGS[0]] - lm[regions.NOSE_WINGS[1]]))
    fields.append(Magnify(tuple(lm[regions.NOSE_TIP]), 0.55 * nose_w, -0.3 * amount, -0.22 * amount))
    mouth = lm[[61, 291, 13, 14]].mean(axis=0)  # mouth corners and lip-centre points
    mouth_w = float(np.linalg.norm(lm[61] - lm[291]))
    fields.append(Magnify(tuple(mouth), 0.65 * mouth_w, -0.22 * amount, -0.18 * amount))
    face_w = regions.face_width(lm)
    fields.append(Slim(axis_x=float((lm[234, 0] + lm[454, 0]) / 2), top=float(lm[regions.NOSE_TIP, 1]),
                       full=float(mouth[1]), bottom=float(lm[regions.CHIN, 1]), half_width=face_w / 2,
                       amount=0.13 * amount, lift=0.12 * amount))
    return FaceWarp(fields)


def cel_colour(crop: np.ndarray, landmarks: np.ndarray, person: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Lab cel shading: skin in a base and a shadow shade of the measured skin colour `skin`, hair and
    clothes in a few broad bands, calm chroma."""
    flat = flatten(crop, smoothness=150.0, sigma_color=6.0)
    lab = to_lab(flat)
    # Anime skin is one flat colour: accept a wide range of skin shades (ruddy, shadowed) as skin.
    chroma = float(np.hypot(skin[1], skin[2]))
    weight = skin_region(lab, landmarks, skin, person, chroma_tolerance=max(14.0, 0.6 * chroma),
                         lightness_tolerance=40.0)
    # The shadow shade scales with the skin's lightness so dark skin keeps readable shading, not black.
    shade = float(np.clip(0.2 * skin[0], 5.0, 11.0))
    skin_l = two_tone(wide_blur(lab[..., 0], 8.0), float(skin[0]), threshold=shade + 1.0, shade=shade)
    broad = wide_blur(lab, 8.0)
    # Hair and clothes follow the broad shading, but strongly darker details (glasses frames, lashes,
    # collars) are kept so they survive as solid dark shapes.
    detail = lab[..., 0] - broad[..., 0]
    keep = np.clip((-detail - 12.0) / 8.0, 0.0, 1.0)
    # Hair: flatten the shading range around its median so it falls into two or three calm bands.
    chin_y = int(np.clip(landmarks[regions.CHIN, 1], 0, lab.shape[0]))
    head = (np.asarray(person)[:chin_y] > 127) & (weight[:chin_y] < 0.5)
    middle = float(np.median(broad[:chin_y, :, 0][head])) if head.any() else float(skin[0])
    compressed = middle + 0.5 * (wide_blur(lab[..., 0], 12.0) - middle)
    other_l = band_lightness(compressed + detail * keep, middle, step=15.0, clean=7)
    hard = np.clip(weight * 2.0, 0.0, 1.0)
    out = np.empty_like(lab)
    out[..., 0] = other_l + (skin_l - other_l) * hard
    chroma = broad[..., 1:] * 1.15
    calm = skin[None, None, 1:] + 0.15 * (lab[..., 1:] - skin[None, None, 1:])
    out[..., 1:] = chroma + (calm - chroma) * weight[..., None]
    return out


def paint_mouth(colour: np.ndarray, landmarks: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Lips as a faint pink of the skin; an open mouth filled with a dark interior and a band of teeth."""
    h, w = colour.shape[:2]
    inner = regions.points(landmarks, regions.LIPS_INNER)
    outer = regions.points(landmarks, regions.LIPS_OUTER)
    x0, y0 = np.floor(outer.min(axis=0) - 3).astype(int).clip(0)
    x1, y1 = np.ceil(outer.max(axis=0) + 4).astype(int)
    x1, y1 = min(x1, w), min(y1, h)
    window = (slice(y0, y1), slice(x0, x1))
    offset = np.array([x0, y0], np.float32)
    size = (y1 - y0, x1 - x0)
    lips = regions.feather(regions.fill_mask(size, [outer - offset]), 1.0)
    lip_lab = np.array([skin[0] - 6.0, skin[1] + 10.0, skin[2] + 2.0], np.float32)
    lip_rgb = to_float(to_rgb(lip_lab[None, None, :]))[0, 0]
    patch = colour[window] + (lip_rgb - colour[window]) * (0.6 * lips[..., None])
    opening = regions.fill_mask(size, [inner - offset])
    if opening.sum() / 255 > 0.02 * regions.face_width(landmarks) ** 2 / 10:
        interior = np.array([0.35, 0.12, 0.12], np.float32)
        teeth = np.array([0.98, 0.97, 0.95], np.float32)
        top = inner[:, 1].min() - y0
        bottom = inner[:, 1].max() - y0
        rows = np.arange(size[0], dtype=np.float32)[:, None]
        upper_band = np.clip((top + 0.55 * (bottom - top) - rows) / 1.5, 0.0, 1.0)
        fill = interior + (teeth - interior) * upper_band[..., None]
        soft = regions.feather(opening, 0.8)[..., None]
        patch = patch + (np.broadcast_to(fill, patch.shape) - patch) * soft
    out = colour.copy()
    out[window] = patch
    return out


def blush(shape: tuple[int, int], landmarks: np.ndarray, strength: float) -> np.ndarray:
    """0..1 soft cheek blush weight under the eyes."""
    h, w = shape
    canvas = np.zeros((h, w), np.float32)
    eye_w = regions.eye_width(landmarks)
    for index in regions.CHEEKS:
        x, y = landmarks[index, :2]
        cv2.ellipse(canvas, (int(round(x)), int(round(y + 0.1 * eye_w))),
                    (int(0.55 * eye_w), int(0.28 * eye_w)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(canvas, (0, 0), 0.25 * eye_w) * strength


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


def render(face: AlignedFace, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, warped landmarks): the anime portrait."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    h, w = face.crop.shape[:2]
    warp = anime_warp(face.landmarks, amount)
    maps = warp.backward_map((h, w))
    crop = warp.apply(face.crop, maps)
    mask = warp.apply(face.mask, maps)
    skin_mask = warp.apply(face.skin_mask.astype(np.uint8) * 255, maps, cv2.INTER_NEAREST) > 127
    landmarks = warp.forward(face.landmarks)
    alpha = background.person_alpha(mask, feather=1.0)
    skin = median_lab(to_lab(crop), skin_mask)
    lab = cel_colour(crop, landmarks, mask, skin)
    lab[..., 1] += blush((h, w), landmarks, 7.0 * amount)
    colour = paint_mouth(to_float(to_rgb(lab)), landmarks, skin)
    # Eyes are painted, not filtered: iris, pupil, catchlights and lashes.
    iris_rgb = eyes.iris_colour(face.crop, face.landmarks)
    colour = eyes.paint_eyes(colour, landmarks, iris_rgb, LINE_COLOUR)
    # Line art: hair and clothing contours from the image, the face drawn from landmarks.
    gray = cv2.cvtColor(to_uint8(colour), cv2.COLOR_RGB2GRAY)
    edges = remove_specks(xdog_lines(gray, sigma=1.2, k=1.6, tau=0.015, phi=70.0), min_area=40)
    face_area = regions.feather(regions.fill_mask((h, w), [regions.points(landmarks, regions.FACE_OVAL)]), 4.0)
    edges = 1.0 - (1.0 - edges) * (alpha > 0.5) * (1.0 - face_area)
    ink = np.minimum(edges, lines.face_strokes(landmarks, (h, w), weight=1.6, eyes=False))
    ink = np.minimum(ink, lines.silhouette(alpha, width=2))
    colour = colour * ink[..., None] + LINE_COLOUR * (1.0 - ink[..., None])
    out = background.composite(colour, pastel_backdrop((h, w), rng), alpha)
    return to_uint8(out), landmarks
