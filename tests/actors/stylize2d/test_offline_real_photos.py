"""The offline styles on real photos: they keep the person (SFace), stay clearly stylised, carry their
landmarks with the image, and do not lighten or cool the skin at the source.

Photos: the two package photos plus every real portrait in tests/fixtures/faces (darker skin
included), aligned once per session; the tone checks also run the Monk ladder (both package photos
recoloured to tones 1–10). Every measurement here is made another way than the styles make it:
identity by OpenCV Zoo's SFace (the styles never see it), landmarks re-detected on the avatar by the
aligner, colour by scikit-image's `rgb2lab` under masks drawn in this file.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer

STYLES = ("anime", "cartoon", "sketch", "realistic")
# SFace cosine of the avatar to the aligned input (same person > 0.363), issue 12 item 3.
IDENTITY_TARGETS = {"anime": 0.40, "cartoon": 0.60, "sketch": 0.70, "realistic": 0.85}
FLAT_STYLES = ("anime", "cartoon")


def _fixture_names() -> tuple[str, ...]:
    try:
        from tests.real_faces import real_face_paths

        return tuple(path.stem for path in real_face_paths())
    except FileNotFoundError:
        return ()


PHOTOS = ("astronaut", "grace_hopper") + _fixture_names()

# Masks drawn here from MediaPipe landmark indices (no project mask code).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
HOLES = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7, 70, 63, 105, 66, 107),  # eye + brow
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249, 300, 293, 334, 296, 336),
    (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),  # lips
    (98, 97, 2, 326, 327, 294, 278, 344, 440, 275, 4, 45, 220, 115, 48, 64),  # nose tip and nostrils
)


OPENINGS = (HOLES[0][:16], HOLES[1][:16],
            (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95))


def face_oval(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(landmarks)[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    return mask.astype(bool)


def oval_without_openings(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The whole face oval minus the eye and mouth openings (which every drawn style redraws: white
    sclera, painted irises, teeth), brows, lips and nostrils included."""
    mask = face_oval(landmarks, shape).astype(np.uint8)
    for opening in OPENINGS:
        cv2.fillPoly(mask, [np.round(np.asarray(landmarks)[list(opening), :2]).astype(np.int32)], 0)
    return mask.astype(bool)


def skin_only(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The face oval shrunk by 8% toward its centre, minus the convex hulls of each eye with its brow,
    the lips and the lower nose, each grown by 6% of the inter-ocular distance."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    oval = lm[list(FACE_OVAL)]
    centre = oval.mean(axis=0)
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(centre + (oval - centre) * 0.92).astype(np.int32)], 1)
    holes = np.zeros_like(mask)
    for hole in HOLES:
        cv2.fillConvexPoly(holes, cv2.convexHull(np.round(lm[list(hole)]).astype(np.int32)), 1)
    grow = max(1, int(round(0.06 * np.linalg.norm(lm[468] - lm[473]))))
    holes = cv2.dilate(holes, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return (mask > 0) & (holes == 0)


def median_skin_lab(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel median Lab over the mask, inside the 10–90% L* band (scikit-image colour maths)."""
    lab = rgb2lab(image[mask][None].astype(np.float64) / 255.0)[0]
    low, high = np.quantile(lab[:, 0], [0.1, 0.9])
    return np.median(lab[(lab[:, 0] >= low) & (lab[:, 0] <= high)], axis=0)


def ita_degrees(lab: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(lab[0] - 50.0, lab[2])))


@pytest.fixture(scope="session")
def photo_faces(aligned_faces):
    """Every test photo aligned once: the package photos plus the real fixtures."""
    from actors.align.aligner import FaceAligner
    from tests.real_faces import load_rgb, real_face_paths

    faces = dict(aligned_faces)
    names = _fixture_names()
    if names:
        with FaceAligner() as aligner:
            for path in real_face_paths():
                faces[path.stem] = aligner.align(load_rgb(path))
    return faces


@pytest.fixture(scope="module")
def avatar_of(photo_faces):
    """(photo or face, style) → StylizedImage at the default request, rendered once."""
    engine = OfflineStylizer()
    cache: dict = {}

    def render(name_or_face, style: str):
        face = photo_faces[name_or_face] if isinstance(name_or_face, str) else name_or_face
        key = (name_or_face if isinstance(name_or_face, str) else id(face), style)
        if key not in cache:
            cache[key] = engine.stylize([face], style, AvatarRequest(styles=(style,)), [0])[0]
        return cache[key]

    return render


@pytest.fixture(scope="module")
def identity():
    from actors.metrics.identity import IdentityModel

    return IdentityModel()


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", PHOTOS)
def test_avatar_keeps_the_persons_identity(photo_faces, avatar_of, identity, name, style):
    cosine, reason = identity.similarity(photo_faces[name].crop, avatar_of(name, style).image)
    assert reason == "", reason
    assert cosine >= IDENTITY_TARGETS[style], f"{name} {style}: SFace {cosine:.3f}"


SAME_PERSON = ({"obama_smiling", "obama_speaking"},)  # fixture photos of one person


@pytest.mark.parametrize("style", FLAT_STYLES)
def test_avatar_is_nearest_to_its_own_person(photo_faces, avatar_of, identity, style):
    """Not a generic face: each avatar is the same person as its own photo only (SFace above the
    same-person threshold for it, below for everyone else)."""
    from actors.metrics.identity import SAME_PERSON_THRESHOLD, cosine_similarity

    photos = {name: identity.embed(photo_faces[name].crop) for name in PHOTOS}
    confusions = []
    for name in PHOTOS:
        avatar = identity.embed(avatar_of(name, style).image)
        for other, embedding in photos.items():
            related = other == name or any({name, other} <= group for group in SAME_PERSON)
            cosine = cosine_similarity(avatar, embedding)
            if not related and cosine > SAME_PERSON_THRESHOLD:
                confusions.append(f"{name} {style} looks like {other}: {cosine:.2f}")
    assert not confusions, confusions


def flat_share(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of the face whose L* barely changes from pixel to pixel (< 0.5 L* per px): flat colour.
    A photo has grain and texture almost everywhere; drawn flat colour does not."""
    gy, gx = np.gradient(rgb2lab(image)[..., 0])
    return float(np.mean(np.hypot(gx, gy)[mask] < 0.5))


@pytest.mark.parametrize("style", FLAT_STYLES)
@pytest.mark.parametrize("name", PHOTOS)
def test_flat_styles_are_drawn_not_filtered(photo_faces, avatar_of, name, style):
    face, avatar = photo_faces[name], avatar_of(name, style)
    photo = flat_share(face.crop, face_oval(face.landmarks, face.crop.shape))
    drawn = flat_share(avatar.image, face_oval(avatar.landmarks, avatar.image.shape))
    retouched = flat_share(avatar_of(name, "realistic").image, face_oval(face.landmarks, face.crop.shape))
    # A retouched photo barely moves (realistic: +0.07 at most); flat colour covers far more of the face.
    margin = {"anime": 0.35, "cartoon": 0.2}[style]
    assert drawn >= photo + margin, f"{name} {style}: flat {drawn:.2f}, photo {photo:.2f}"
    assert drawn >= retouched + margin - 0.05, f"{name} {style}: flat {drawn:.2f}, realistic {retouched:.2f}"


@pytest.mark.parametrize("name", PHOTOS)
def test_drawn_styles_move_far_more_than_the_retouch(photo_faces, avatar_of, name):
    face = photo_faces[name]
    oval = face_oval(face.landmarks, face.crop.shape)
    photo_lab = rgb2lab(face.crop)

    def distance(style):
        avatar = avatar_of(name, style)
        where = oval & face_oval(avatar.landmarks, avatar.image.shape)
        return float(deltaE_ciede2000(photo_lab, rgb2lab(avatar.image))[where].mean())

    retouch = distance("realistic")
    for style in ("anime", "cartoon", "sketch"):
        assert distance(style) >= max(2.0, 2.0 * retouch), f"{name} {style} vs realistic {retouch:.2f}"


@pytest.mark.parametrize("style", STYLES)
def test_returned_landmarks_are_where_the_face_is_drawn(photo_faces, avatar_of, style):
    """The aligner, run on the avatar, finds the face where the returned landmarks say it is (mean
    error < 6% of the inter-ocular distance). Photos whose own aligned crop the aligner cannot find
    (a strongly turned head) are left out. A detector can miss a drawn face at the margin (BlazeFace
    on a dark, laughing face before a saturated backdrop), or fit its mesh wrongly there: on the Santa
    hat's laughing `anime` face a change of a* by 0.3 on average (invisible) moved the detected mouth
    up onto the nose. So at least 80% must be found where the landmarks say, and the median error over
    all photos found must be small (a style whose landmarks miss its drawing misses on every photo)."""
    from actors.align.aligner import FaceAligner

    checked, missed, errors = 0, [], {}
    with FaceAligner() as aligner:
        for name in PHOTOS:
            face, avatar = photo_faces[name], avatar_of(name, style)
            if aligner.landmarks(face.crop) is None:
                continue
            checked += 1
            detected = aligner.landmarks(avatar.image)
            if detected is None:
                missed.append(name)
                continue
            inter_ocular = np.linalg.norm(avatar.landmarks[468, :2] - avatar.landmarks[473, :2])
            errors[name] = np.linalg.norm(detected[:, :2] - avatar.landmarks[:, :2], axis=1).mean() / inter_ocular
    assert checked >= 2
    misplaced = [name for name, error in errors.items() if error >= 0.06]
    assert len(missed) + len(misplaced) <= 0.2 * checked, \
        f"{style}: not found {missed}, misplaced {misplaced}: {errors}"
    assert np.median(list(errors.values())) < 0.04, errors  # measured 0.015–0.026


def test_anime_landmarks_follow_its_warp(photo_faces, avatar_of):
    """The anime warp moves the features: landmarks detected on the avatars are nearer the carried
    landmarks than the input's, over all photos (medians: one mesh fitted wrongly, see above, is off by
    far more than any warp)."""
    from actors.align.aligner import FaceAligner

    carried, unmoved = [], []
    with FaceAligner() as aligner:
        for name in PHOTOS:
            face, avatar = photo_faces[name], avatar_of(name, "anime")
            detected = aligner.landmarks(avatar.image)
            if detected is None:
                continue
            carried.append(np.linalg.norm(detected[:, :2] - avatar.landmarks[:, :2], axis=1).mean())
            unmoved.append(np.linalg.norm(detected[:, :2] - face.landmarks[:, :2], axis=1).mean())
    assert len(carried) >= 2
    assert np.median(carried) < 0.9 * np.median(unmoved), (carried, unmoved)


@pytest.fixture(scope="module")
def ladder(aligned_faces):
    from tests.skin_ladder import build_ladder

    return build_ladder(aligned_faces)


def tone_shifts(face, avatar) -> dict[str, tuple[float, float]]:
    """{mask: (ΔITA°, Δb*)} of the median skin colour, avatar minus input, over the same face region
    (each image's own landmarks)."""
    shifts = {}
    for mask_name, make in (("skin", skin_only), ("oval", oval_without_openings)):
        before = median_skin_lab(face.crop, make(face.landmarks, face.crop.shape))
        after = median_skin_lab(avatar.image, make(avatar.landmarks, avatar.image.shape))
        shifts[mask_name] = (ita_degrees(after) - ita_degrees(before), float(after[2] - before[2]))
    return shifts


@pytest.mark.parametrize("style", STYLES)
def test_no_tone_drift_at_the_source_on_the_ladder(ladder, avatar_of, style):
    """Monk tones 1–10: the avatar's median skin ITA within 4° of the input's under both masks (a few
    tenths of L* are degrees near ITA 0–40), and b* (the warmth) never more than 2 units lower."""
    problems = []
    for name, face in ladder:
        for mask_name, (d_ita, d_warmth) in tone_shifts(face, avatar_of(face, style)).items():
            if abs(d_ita) > 4.0 or d_warmth < -2.0:
                problems.append(f"{name}/{mask_name}: ΔITA {d_ita:+.1f}°, Δb* {d_warmth:+.1f}")
    assert not problems, problems


@pytest.mark.parametrize("style", STYLES)
def test_no_lightening_or_cooling_at_the_source_on_real_photos(photo_faces, avatar_of, style):
    """Real photos: the skin never lighter than +2° ITA under the tight mask; the whole oval (brows,
    lips, shadows and wrinkles included, which a drawn face cleans up) never lighter than +5°; never
    darker than −7° (cartoon's deeper shadow bands darken the oval of the window-lit man_south_asian by
    −6.2° before the guard; guard on, the independent checker reads −1.3° on his skin); b* never more
    than 2 units lower."""
    problems = []
    for name in PHOTOS:
        face = photo_faces[name]
        for mask_name, (d_ita, d_warmth) in tone_shifts(face, avatar_of(name, style)).items():
            lightest = 2.0 if mask_name == "skin" else 5.0
            if not -7.0 <= d_ita <= lightest or d_warmth < -2.0:
                problems.append(f"{name}/{mask_name}: ΔITA {d_ita:+.1f}°, Δb* {d_warmth:+.1f}")
    assert not problems, problems


def rim_beyond_the_oval(face, width: float = 0.06) -> np.ndarray:
    """The person's pixels in a band `width` × face width wide just outside the face oval: the jaw line
    in shadow, the far cheek of a turned head, the hairline. Drawn here from the landmarks and the
    input's person segmentation."""
    lm = np.asarray(face.landmarks, np.float64)[:, :2]
    oval = face_oval(lm, face.crop.shape).astype(np.uint8)
    grow = max(1, int(round(width * np.linalg.norm(lm[234] - lm[454]))))
    band = cv2.dilate(oval, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0
    return band & (oval == 0) & (np.asarray(face.mask) > 200)


def test_sketch_keeps_the_photos_colour_just_beyond_the_face(photo_faces, avatar_of):
    """The sketch's wash lightens the person away from the face, never next to it: in the band just
    outside the face oval (the jaw line in shadow, a turned head's far cheek) the median L* stays
    within 4 of the photo's. Lightening it made the checker read the darkest faces lighter (the Santa
    hat photo's jaw in shadow came out grey)."""
    problems = []
    for name in PHOTOS:
        face = photo_faces[name]
        rim = rim_beyond_the_oval(face)
        if rim.sum() < 200:
            continue
        photo = median_skin_lab(face.crop, rim)
        sketch = median_skin_lab(np.asarray(avatar_of(name, "sketch").image), rim)
        if abs(sketch[0] - photo[0]) > 4.0:
            problems.append(f"{name}: L* {photo[0]:.1f} → {sketch[0]:.1f}")
    assert not problems, problems


def red_ear_pixels(face) -> np.ndarray:
    """Person pixels beside the face oval at ear height (between the brows' and the mouth's rows, up to
    a quarter face width out) that are strongly red in the photo (a* > 30): light through an ear, or
    an ear flushed. Drawn here from the landmarks, the person segmentation and scikit-image's Lab."""
    lm = np.asarray(face.landmarks, np.float64)[:, :2]
    h, w = face.crop.shape[:2]
    width = float(np.linalg.norm(lm[234] - lm[454]))
    oval = face_oval(lm, face.crop.shape)
    rows = np.arange(h)[:, None]
    cols = np.arange(w)[None, :]
    beside = ((cols < lm[234, 0]) & (cols > lm[234, 0] - 0.25 * width)) | (
        (cols > lm[454, 0]) & (cols < lm[454, 0] + 0.25 * width))
    height = (rows > lm[105, 1]) & (rows < lm[13, 1])
    red = rgb2lab(face.crop)[..., 1] > 30.0
    return beside & height & red & ~oval & (np.asarray(face.mask) > 200)


@pytest.mark.parametrize("style", FLAT_STYLES)
def test_a_red_backlit_ear_is_drawn_as_skin_not_as_dark_hair(photo_faces, avatar_of, style):
    """man_south_asian's ear is lit from behind: its concha and fossa glow red (a* 35–54). `anime` drew
    them as two dark brown blobs (89% of the red pixels more than 20 L* darker than the photo): what
    was not close to the skin's chroma became hair. Now at most a quarter may be (measured: 0–11% on
    the four photos with red ears, both styles; 9% there in `anime`)."""
    problems, checked = [], 0
    for name in PHOTOS:
        red = red_ear_pixels(photo_faces[name])
        if red.sum() < 200:
            continue
        checked += 1
        photo_l = rgb2lab(photo_faces[name].crop)[..., 0][red]
        avatar_l = rgb2lab(np.asarray(avatar_of(name, style).image))[..., 0][red]
        darker = float(np.mean(avatar_l < photo_l - 20.0))
        if darker > 0.25:
            problems.append(f"{name}: {darker:.0%} of {red.sum()} red ear pixels drawn dark")
    assert checked >= 1  # man_south_asian
    assert not problems, problems


CHEEKS = (205, 425, 50, 280)  # mesh points on both cheeks, under the eyes and beside the nose


def cheek_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median Lab (scikit-image) over four discs on the cheeks, 0.18 × the iris spacing across."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    mask = np.zeros(image.shape[:2], np.uint8)
    radius = int(round(0.18 * np.linalg.norm(lm[468] - lm[473])))
    for point in CHEEKS:
        cv2.circle(mask, tuple(int(round(v)) for v in lm[point]), radius, 1, -1)
    return np.median(rgb2lab(np.asarray(image))[mask > 0], axis=0)


def test_anime_keeps_the_cheeks_own_colour(photo_faces, ladder, avatar_of):
    """The colour `anime` keeps at cheek scale is the photo's own, not the flattened photo's (which greys
    the colour of creases and wrinkles): over the ladder and the real photos the cheeks' median a*, b*
    stay within 0.45 of the photo's on average (measured about 0.3; with the flattened colour 0.53 /
    0.59, and MST 9–10 cheeks read 3.5° of hue off by the independent checker) and 1.5 at most."""
    faces = [face for _, face in ladder] + [photo_faces[name] for name in PHOTOS]
    errors = []
    for face in faces:
        avatar = avatar_of(face, "anime")
        before, after = cheek_colour(face.crop, face.landmarks), cheek_colour(avatar.image, avatar.landmarks)
        errors.append(np.abs(after[1:] - before[1:]))
    errors = np.array(errors)
    assert errors.mean(axis=0).max() <= 0.45, errors.mean(axis=0)
    assert errors.max() <= 1.5, errors.max(axis=0)


def moved_outlines(landmarks: np.ndarray):
    """The landmarks shifted by up to 4% of the face width in x and y and scaled by ±6%: 27 outlines,
    as far apart as two detectors' are on a turned or tilted face."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    width, centre = np.ptp(lm[list(FACE_OVAL), 0]), lm.mean(axis=0)
    for dx in (-0.04, 0.0, 0.04):
        for dy in (-0.04, 0.0, 0.04):
            for scale in (0.94, 1.0, 1.06):
                yield (lm - centre) * scale + centre + np.array([dx, dy]) * width


def test_cartoon_skin_reads_the_same_under_any_outline(photo_faces, avatar_of):
    """`cartoon` posterises the skin's detail into 5-L* steps. With fixed levels its lightness was a comb
    and the median skin L* under an outline snapped to a tooth, so which outline one drew decided
    whether the avatar read lighter or darker than the photo (man_glasses: 4.5° ITA darker under the
    independent checker's oval, within 1° under the guard's). The levels now drift across the image:
    over 27 outlines the avatar − photo median L* varies (standard deviation) by 0.27 on average over
    the photos (fixed levels: 0.38) and by 0.44 at most on any photo (0.63)."""
    spreads = {}
    for name in PHOTOS:
        face, avatar = photo_faces[name], avatar_of(name, "cartoon")
        differences = [median_skin_lab(avatar.image, skin_only(moved, avatar.image.shape))[0]
                       - median_skin_lab(face.crop, skin_only(original, face.crop.shape))[0]
                       for moved, original in zip(moved_outlines(avatar.landmarks), moved_outlines(face.landmarks))]
        spreads[name] = float(np.std(differences))
    assert np.mean(list(spreads.values())) <= 0.32, spreads
    assert max(spreads.values()) <= 0.5, spreads


def test_sketch_skin_matches_the_photo_at_every_lightness(photo_faces, avatar_of):
    """`sketch`'s graphite darkened the skin's shadows more than its lit parts, so with only its median
    matched a region holding more shadow read darker (man_glasses: −2.3…−2.7° ITA under the
    independent checker). Its skin's L* quantiles 0.2–0.8, under this file's own skin mask, now stay
    within 1.0 of the photo's on every photo and 0.5 on average (measured: 0.75 and 0.35; matching the
    median alone, 3.22 and 0.96)."""
    quantiles = np.linspace(0.2, 0.8, 13)
    errors = {}
    for name in PHOTOS:
        face, avatar = photo_faces[name], avatar_of(name, "sketch")
        mask = skin_only(face.landmarks, face.crop.shape)
        drawn = rgb2lab(avatar.image[mask][None] / 255.0)[0][:, 0]
        photo = rgb2lab(face.crop[mask][None] / 255.0)[0][:, 0]
        errors[name] = float(np.abs(np.quantile(drawn, quantiles) - np.quantile(photo, quantiles)).max())
    assert max(errors.values()) <= 1.0, errors
    assert np.mean(list(errors.values())) <= 0.5, errors


def dark_hair_pixels(face) -> np.ndarray:
    """Dark (L* < 30) pixels of the person above the brows, outside the face oval and within 0.75 face
    widths of the face's centre line: the hair around the head (the person mask is the aligner's
    segmentation, the input the style was given)."""
    lm = np.asarray(face.landmarks)
    lightness = rgb2lab(face.crop / 255.0)[..., 0]
    region = np.zeros(lightness.shape, bool)
    region[: int(min(lm[105, 1], lm[334, 1]))] = True
    region &= ~face_oval(lm, face.crop.shape)
    columns = np.arange(lightness.shape[1])[None, :]
    region &= np.abs(columns - lm[:, 0].mean()) < 0.75 * np.ptp(lm[:, 0])
    return region & (lightness < 30.0) & (np.asarray(face.mask) > 127)


def test_sketch_keeps_dark_hair_dark(photo_faces, avatar_of):
    """Washed out like clothes and drawn by the dodge pencil (which draws a flat dark area light), black
    and dark brown hair came out as light grey blotches: the person looked grey-haired (median L* of the
    hair 24–46 above the photo's on every photo with dark hair). The sketch now keeps the hair in its own
    colour: within 8 L* of the photo's (measured: 0.5–5 darker)."""
    checked = {}
    for name in PHOTOS:
        face = photo_faces[name]
        hair = dark_hair_pixels(face)
        if hair.sum() < 1500:  # bald, or hair lighter than L* 30
            continue
        drawn = np.median(rgb2lab(avatar_of(name, "sketch").image / 255.0)[..., 0][hair])
        checked[name] = float(drawn - np.median(rgb2lab(face.crop / 255.0)[..., 0][hair]))
    assert len(checked) >= 6, checked
    assert max(checked.values()) <= 8.0, checked
