"""`sketch`: a pencil portrait with a light watercolour wash on drawing paper.

Graphite comes from a colour-dodge pencil rendering plus XDoG contours and seeded hatching in the
shadows. The wash is the flattened photo (multiply blend), the whole face kept as it is (its light and
shadow carry the person); it fades out into the paper toward the edges of the person, as in a painted
study, but never on the face or just around it (`face_surround`: a jaw line in deep shadow or the far
side of a turned head is still the person's skin, and washing it out would lighten it), nor on the hair
around the head, which keeps its own colour and is hatched where dark (washed out like clothes, black hair
came out as light grey blotches). Graphite greys the skin a little and unevenly, so at the end half the
photo's own light and colour comes back at the scale of a cheek (`cel.skin_low_pass`), the skin's
lightness is matched to the photo's at every percentile from the 10th to the 90th
(`cel.match_skin_lightness`: graphite darkens the shadows more than the lit skin) and then its median
colour exactly (`cel.recentre_skin`): the sketch neither darkens nor lightens the skin tone, over the
whole face or any part of it.
"""
from __future__ import annotations

import cv2
import numpy as np

from dataset.face import AlignedFace
from actors.stylize2d.offline import background, cel, lines, regions
from actors.stylize2d.offline.filters import (
    flatten, median_lab, remove_specks, to_float, to_lab, to_rgb, to_uint8, xdog_lines,
)
from actors.stylize2d.offline.hair import hair_weight
from actors.stylize2d.skin_region import face_and_neck, skin_region

WASH_SMOOTHNESS = 50.0  # flattening λ of the watercolour wash
FACE_MARGIN = 0.08  # the wash keeps the photo's colour this far (× face width) beyond the face area: the
# shadowed jaw line and the far cheek of a turned head are face too, whatever their colour
LIGHT_SIGMA = 8.0  # px: the scale from which the photo's own light and colour are brought back on the skin ...
LIGHT_SHARE = 0.5  # ... and the share brought back: in full the wash turns into the photo with pencil lines
HAIR_REACH = (0.9, 1.3)  # the wash covers the hair fully up to the first distance from the face's centre
# (in face widths across, 1.2 face widths down) and fades out by the second, as in a painted study


def pencil(gray: np.ndarray) -> np.ndarray:
    """Colour-dodge pencil rendering: 0..1, light with graphite-grey edges and soft shading."""
    g = gray.astype(np.float32) / 255.0
    inverted_blur = cv2.GaussianBlur(1.0 - g, (0, 0), 6.0)
    return np.clip(g / np.maximum(1.0 - inverted_blur, 1e-3), 0.0, 1.0)


def hatching(shape: tuple[int, int], darkness: np.ndarray, rng: np.random.Generator, angle: float = 35.0) -> np.ndarray:
    """0..1 pencil hatching (0 = graphite) whose density follows `darkness` (0..1)."""
    h, w = shape
    noise = rng.standard_normal((h, w)).astype(np.float32)
    # Streak the noise along the stroke direction with a line kernel.
    length = 21
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    kernel /= kernel.sum()
    strokes = cv2.filter2D(noise, -1, kernel)
    strokes = strokes / (strokes.std() + 1e-6)
    # A stroke is drawn where the streaked noise exceeds a threshold that falls as darkness rises.
    threshold = 2.4 - 2.0 * np.clip(darkness, 0.0, 1.0)
    return 1.0 - 0.5 * np.clip((strokes - threshold) * 2.0, 0.0, 1.0)


def face_surround(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """0..1: the face area, the neck and a FACE_MARGIN band around them (the jaw line in shadow, the far
    cheek and ear side of a turned head), feathered: what the wash always paints in the photo's colour."""
    margin = max(1, int(round(FACE_MARGIN * regions.face_width(landmarks))))
    area = np.maximum(regions.face_area(landmarks, shape), face_and_neck(landmarks, shape))
    distance = cv2.distanceTransform((area == 0).astype(np.uint8), cv2.DIST_L2, 3)
    return regions.feather(distance <= margin, margin / 2.0)


def wash_alpha(face: AlignedFace, alpha: np.ndarray, rng: np.random.Generator, surround: np.ndarray,
               hair: np.ndarray) -> np.ndarray:
    """Where the watercolour goes: the person, fading out away from the face with a ragged border; the
    face, its `surround` and the `hair` (0..1) around the head always. Faded like clothes, dark hair
    came out as light grey blotches (the dodge pencil draws a flat dark area light), which aged the
    person and lost their hair colour."""
    h, w = alpha.shape
    lm = face.landmarks
    centre = lm[:, :2].mean(axis=0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    reach = regions.face_width(lm)
    r = np.sqrt(((x - centre[0]) / reach) ** 2 + ((y - centre[1]) / (1.2 * reach)) ** 2)
    noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 5.0)
    noise /= noise.std() + 1e-6
    fade = np.clip(2.5 - 2.6 * r + 0.18 * noise, 0.0, 1.0)
    # The face itself is always fully painted: the fade only eats into hair, clothes and shoulders.
    face = np.maximum(regions.feather(face_and_neck(lm, (h, w)), 6.0), surround)
    near = np.clip((HAIR_REACH[1] - r) / (HAIR_REACH[1] - HAIR_REACH[0]), 0.0, 1.0)
    face = np.maximum(face, hair * near)
    return np.maximum(np.minimum(alpha, fade), np.minimum(face, alpha))


def wash_colour(face: AlignedFace, skin: np.ndarray, sheet: np.ndarray, paper_tint: np.ndarray,
                kept_surround: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wash, kept weight, hair weight): the flattened photo as a translucent wash; skin (near `skin`, the
    photo's median skin Lab), the whole face (its shadow side too: lightening it would erase the light
    that shapes the face), `kept_surround` (0..1, the person around the face) and the hair
    (`hair.hair_weight`) kept as they are, everything else lighter and softer."""
    flat = flatten(face.crop, smoothness=WASH_SMOOTHNESS, sigma_color=6.0)
    lab = to_lab(flat)
    oval = regions.face_area(face.landmarks, lab.shape[:2])
    face_oval = np.maximum(regions.feather(oval, 4.0), kept_surround)
    skin_weight = skin_region(lab, face.landmarks, skin, face.mask)
    weight = np.maximum(skin_weight, face_oval)
    lighter = lab.copy()
    lighter[..., 0] += (100.0 - lighter[..., 0]) * 0.35
    lighter[..., 1:] *= 0.8
    hair = hair_weight(face.mask, skin_weight, face.landmarks)
    shown = np.maximum(weight, hair)
    lab = lighter + (lab - lighter) * shown[..., None]
    return to_float(to_rgb(lab)) * (sheet / paper_tint[None, None, :]), weight, hair


def render(face: AlignedFace, rng: np.random.Generator, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(512×512 uint8 RGB, landmarks): the washed pencil portrait; the geometry does not move."""
    amount = float(np.clip(strength / 0.6, 0.3, 1.5))
    h, w = face.crop.shape[:2]
    alpha = background.person_alpha(face.mask, feather=1.5)
    paper_tint = background.pick_colour("sketch", rng)
    sheet = background.paper((h, w), paper_tint, rng, grain=0.025)
    photo = to_lab(face.crop)
    skin_lab = median_lab(photo, face.skin_mask)
    surround = face_surround(face.landmarks, (h, w))
    wash, kept, hair = wash_colour(face, skin_lab, sheet, paper_tint, surround * alpha)
    where = wash_alpha(face, alpha, rng, surround, hair)
    painted = sheet + (wash - sheet) * where[..., None]
    # Graphite: dodge pencil shading, clean contours, and hatching in the deep shadows.
    gray = cv2.cvtColor(face.crop, cv2.COLOR_RGB2GRAY)
    dodge = pencil(cv2.GaussianBlur(gray, (0, 0), 1.0)) ** 2.0
    contours = remove_specks(xdog_lines(gray, sigma=1.0, k=1.6, tau=0.008, phi=60.0), min_area=10)
    # Hatching in the shadows of hair (inside the face area too) and clothes; skin is modelled by the
    # wash, not by strokes.
    shadow = np.clip((0.35 - gray.astype(np.float32) / 255.0) / 0.3, 0.0, 1.0) * np.maximum(1.0 - kept, hair)
    hatch = hatching((h, w), shadow * 0.5 * amount, rng)
    # The features drawn as a light pencil line (lids, lip parting, nose base, chin); the brows are
    # drawn by the photo's own contours, which keep their shape.
    strokes = lines.face_strokes(face.landmarks, (h, w), weight=1.1, brows=False, jaw=False)
    strokes = np.minimum(strokes, lines.chin_stroke(face.landmarks, gray, weight=1.1))
    features = 1.0 - 0.45 * (1.0 - strokes)
    graphite = np.minimum(np.minimum(dodge, 0.3 + 0.7 * contours), features) * hatch
    # Graphite is strongest on the person and fades with the wash's reach, like a loose study.
    reach = np.clip(np.maximum(where * 1.5, 0.35) * np.maximum(alpha, 0.2), 0.0, 1.0)
    graphite = 1.0 - (1.0 - graphite) * (0.6 + 0.25 * amount) * reach
    lab = to_lab(to_uint8(painted * graphite[..., None]))
    # Graphite and the flattened wash also shift the skin unevenly (more in creases and on the shadow
    # side): half the photo's own light and colour comes back at the scale of a cheek, so the skin
    # matches the photo over any face region (the lines, finer than that, stay); then its lightness at
    # every percentile (graphite darkens the shadows more than the lit skin), then the median exactly.
    lab += LIGHT_SHARE * cel.skin_low_pass(photo - lab, kept, LIGHT_SIGMA)
    cel.match_skin_lightness(lab, face.skin_mask, photo, kept)
    cel.recentre_skin(lab, face.skin_mask, skin_lab, kept)
    return to_rgb(lab), face.landmarks.copy()
