"""Hair as a shape: a cap over the scalp, added to a fitted head when the photo shows hair.

1. `measure_hair(face, mesh)`: the band of the crop just above the forehead (between the temples,
   inside the person mask) is hair when most of it is *not* skin-coloured — distance to the face's
   median skin colour in CIELAB, with lightness counted half, or the skin's hue and chroma (a bald
   scalp is skin under other light) — or when it is much grainier than the face's skin (strands of
   hair that happens to have the skin's colour). The hair colour is the median of the darker half
   of those pixels (sheen left out); the volume is how far the person mask reaches beyond the
   fitted head's temples (clamped; the crown is often outside the crop), so a voluminous head of
   hair gets a thicker cap.
2. `hair_weights(mesh)`: where hair grows on a head, per skin vertex, from the head's own shape
   (angles about its centre at eye level, +y up, +z the face): above a hairline whose
   elevation depends on the azimuth around the vertical axis — high over the forehead, over the
   ears at the sides, low at the nape — with a soft ramp; the ears (MakeHuman's ear mask in UV
   space) never carry hair.
3. `with_hair(mesh, ...)`: the cap is the skin triangles whose corners all carry hair, copied and
   pushed out along the vertex normals (thin at the hairline, `volume` over the crown), appended as
   the part "hair" with its own material. Each cap vertex keeps its scalp vertex's skin weights
   (the scalp is bound to `head`) and morph offsets (a raised brow lifts the hairline with it), its
   UVs (the cap's texture lives in the scalp's place of MakeHuman's atlas) and, moved by the same
   offset through the fitted camera, its image point.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from ..mesh import HeadMesh, MeshPart, Skin

HAIR_PART, SKIN_PART, EYES_PART = "hair", "skin", "eyes"
# Hairline elevation (degrees above the horizontal through the head's centre) by |azimuth| (0: the face).
HAIRLINE_AZIMUTH = (0.0, 30.0, 55.0, 80.0, 100.0, 125.0, 150.0, 180.0)
HAIRLINE_ELEVATION = (37.0, 33.0, 22.0, 10.0, 7.0, -2.0, -20.0, -30.0)
HAIRLINE_RAMP = 7.0  # degrees from no hair to full hair
CAP_AT_HAIRLINE_M = 0.0015  # the cap's offset where it starts (clears the skin, no visible step)
CAP_START_DEGREES, CAP_RAMP_DEGREES = 4.0, 40.0  # the cap thickens from 4° above the hairline over 40°
VOLUME_RANGE_M = (0.004, 0.014)  # cap thickness over the crown
VOLUME_SHARE = 0.5  # of the mask's margin beyond the fitted temples (the average skull is not the person's)
SKIN_DISTANCE = 10.0  # CIELAB distance (lightness halved) under which a pixel counts as skin-coloured
SKIN_HUE_DEGREES = 15.0  # ... or: hue within this of the skin's,
SKIN_CHROMA_RATIO = (0.5, 2.0)  # chroma within these multiples of the skin's,
SKIN_DARKER_L = 15.0  # and L* at most this much below the skin's
MIN_HAIR_SHARE = 0.4  # share of the band above the forehead that must be hair-coloured
MIN_BAND_PIXELS = 200
STRAND_GRAIN_RATIO, STRAND_GRAIN_MIN = 1.8, 2.0  # ... or: the band is this much grainier than the skin (L* std over 5×5)
HAIR_TONE_QUANTILES = (0.1, 0.6)  # the hair colour: median of these luminance quantiles (sheen left out)
FOREHEAD_TOP, CHIN, TEMPLE_RIGHT, TEMPLE_LEFT = 10, 152, 54, 284  # MediaPipe landmarks


@dataclass(frozen=True)
class HairSample:
    """What the photo shows of the hair: whether there is any, its colour and how far it stands off the skull."""

    found: bool
    rgb: np.ndarray  # (3,) float32 sRGB 0..255: median colour of the hair pixels (meaningless when not found)
    share: float  # share of the band above the forehead that is not skin-coloured
    volume_m: float  # cap thickness over the crown, metres


def measure_hair(face, mesh: HeadMesh) -> HairSample:
    """The hair above the forehead of an aligned face (`crop`, `mask`, `landmarks`, `skin_mask`),
    with the fitted `mesh` (image points and `params["scale_px_per_m"]`) for the volume."""
    crop = np.asarray(face.crop)
    landmarks = np.asarray(face.landmarks, dtype=np.float64)
    band = _forehead_band(crop.shape[:2], landmarks, face.mask)
    skin = np.asarray(face.skin_mask, dtype=bool)
    if band.sum() < MIN_BAND_PIXELS or skin.sum() < 50:
        return HairSample(False, np.zeros(3, np.float32), 0.0, VOLUME_RANGE_M[0])
    rows = np.flatnonzero(band.any(axis=1))
    window = slice(max(int(rows[0]) - 2, 0), int(rows[-1]) + 3)  # the band's rows (and a margin for the 5×5 spread)
    lab = cv2.cvtColor(crop[window].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    skin_lab = np.median(cv2.cvtColor(crop[skin].reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, 0], axis=0)
    hairy = np.zeros(band.shape, bool)
    hairy[window] = hair_coloured(lab, skin_lab) & (np.asarray(face.mask)[window] >= 128)
    share = float(hairy[band].mean())
    band_grain = float(np.median(_local_spread(lab[..., 0])[band[window]]))
    skin_rows = np.flatnonzero(skin.any(axis=1))
    skin_window = slice(int(skin_rows[0]), int(skin_rows[-1]) + 1)
    skin_l = cv2.cvtColor(crop[skin_window].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]
    skin_grain = float(np.median(_local_spread(skin_l)[skin[skin_window]]))
    textured = band_grain >= max(STRAND_GRAIN_RATIO * skin_grain, STRAND_GRAIN_MIN)
    if share < MIN_HAIR_SHARE and not textured:
        return HairSample(False, np.zeros(3, np.float32), share, VOLUME_RANGE_M[0])
    if share < MIN_HAIR_SHARE:  # hair of the skin's colour, told apart by its strands: the whole band is hair
        hairy = band.copy()
    pixels = crop[band & hairy].reshape(-1, 3).astype(np.float32)
    luminance = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    low, high = np.quantile(luminance, HAIR_TONE_QUANTILES)
    rgb = np.median(pixels[(luminance >= low) & (luminance <= high)], axis=0)
    top, chin = landmarks[FOREHEAD_TOP, 1], landmarks[CHIN, 1]
    rows = (int(top + 0.02 * (chin - top)), int(top + 0.15 * (chin - top)))
    return HairSample(True, rgb.astype(np.float32), share, _volume(rows, np.asarray(face.mask), mesh))


def _local_spread(lightness: np.ndarray) -> np.ndarray:
    """(H, W) standard deviation of L* over 5×5 pixels: strands make hair grainy, skin is smooth."""
    mean = cv2.blur(lightness, (5, 5))
    return np.sqrt(np.maximum(cv2.blur(lightness * lightness, (5, 5)) - mean * mean, 0.0))


def _forehead_band(shape: tuple[int, int], landmarks: np.ndarray, mask) -> np.ndarray:
    """Pixels above the forehead: between the temples, from a quarter of the face's height above the
    forehead's top landmark down to just above it, inside the person mask."""
    height, width = shape
    top, chin = landmarks[FOREHEAD_TOP, :2], landmarks[CHIN, :2]
    face_height = max(float(np.linalg.norm(chin - top)), 1.0)
    left, right = sorted((landmarks[TEMPLE_RIGHT, 0], landmarks[TEMPLE_LEFT, 0]))
    band = np.zeros((height, width), bool)
    row0, row1 = max(int(np.ceil(top[1] - 0.25 * face_height)), 0), min(int(np.floor(top[1] - 0.04 * face_height)) + 1, height)
    col0, col1 = max(int(np.ceil(left)), 0), min(int(np.floor(right)) + 1, width)
    band[row0:row1, col0:col1] = True
    return band & (np.asarray(mask) >= 128)


def hair_coloured(lab: np.ndarray, skin_lab: np.ndarray) -> np.ndarray:
    """Pixels that are not skin-coloured. Skin-coloured: close to the skin's median in CIELAB with
    lightness counted half, or of the skin's hue and chroma and not much darker (a bald scalp under
    a highlight is lighter and greyer than the face, hair is darker or of another hue or chroma)."""
    difference = lab - skin_lab
    difference[..., 0] *= 0.5
    near = np.sqrt((difference**2).sum(axis=-1)) < SKIN_DISTANCE
    chroma, skin_chroma = np.hypot(lab[..., 1], lab[..., 2]), max(float(np.hypot(*skin_lab[1:])), 1e-6)
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    skin_hue = np.degrees(np.arctan2(skin_lab[2], skin_lab[1]))
    same_hue = np.abs((hue - skin_hue + 180.0) % 360.0 - 180.0) < SKIN_HUE_DEGREES
    same_chroma = (chroma > SKIN_CHROMA_RATIO[0] * skin_chroma) & (chroma < SKIN_CHROMA_RATIO[1] * skin_chroma)
    lit = lab[..., 0] > skin_lab[0] - SKIN_DARKER_L
    return ~(near | (same_hue & same_chroma & lit))


def _volume(band_rows: tuple[int, int], mask: np.ndarray, mesh: HeadMesh) -> float:
    """How far the hair stands out beside the fitted head's temples, in metres (clamped to VOLUME_RANGE_M):
    per crop row between the forehead's top and the brows, the person mask's width beyond the head's."""
    scale = float(np.asarray(mesh.params.get("scale_px_per_m", 0.0)))
    skin = next(part for part in mesh.part_list() if part.name == "skin")
    points = np.asarray(mesh.image_points, dtype=np.float64)[np.unique(mesh.faces[skin.faces])]
    margins = []
    for row in range(max(band_rows[0], 0), min(band_rows[1], mask.shape[0])):
        head = points[np.abs(points[:, 1] - row) < 1.0, 0]
        person = np.flatnonzero(mask[row] >= 128)
        if head.size < 2 or person.size < 2:
            continue
        margins.append(VOLUME_SHARE * ((head.min() - person.min()) + (person.max() - head.max())) / 2)
    if scale <= 0 or not margins:
        return VOLUME_RANGE_M[0]
    return float(np.clip(np.median(margins) / scale, *VOLUME_RANGE_M))


def hair_weights(mesh: HeadMesh, ears: np.ndarray | None = None) -> np.ndarray:
    """(V,) float32 in [0, 1]: where hair grows on `mesh` (see `above_hairline`)."""
    return _smoothstep(above_hairline(mesh, ears) / HAIRLINE_RAMP).astype(np.float32)


def above_hairline(mesh: HeadMesh, ears: np.ndarray | None = None) -> np.ndarray:
    """(V,) degrees of elevation above the hairline (negative below it; −90 on `ears`, (V,) bool).

    Angles are taken about the head's own centre: eye level (the eyeballs' mean height), halfway
    between the front and the back of the skin above it, on the midline."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    parts = {part.name: part for part in mesh.part_list()}
    eye_level = vertices[np.unique(mesh.faces[parts[EYES_PART].faces]), 1].mean()
    skin = vertices[np.unique(mesh.faces[parts[SKIN_PART].faces])]
    upper = skin[skin[:, 1] > eye_level]
    centre = np.array([0.0, eye_level, (upper[:, 2].min() + upper[:, 2].max()) / 2])
    x, y, z = (vertices - centre).T
    azimuth = np.degrees(np.abs(np.arctan2(x, z)))
    elevation = np.degrees(np.arctan2(y, np.hypot(x, z)))
    above = elevation - np.interp(azimuth, HAIRLINE_AZIMUTH, HAIRLINE_ELEVATION)
    if ears is not None:
        above[np.asarray(ears, dtype=bool)] = -90.0
    return above


def with_hair(mesh: HeadMesh, ears: np.ndarray, sample: HairSample) -> HeadMesh:
    """`mesh` with a "hair" cap over the skin above the hairline (`ears`: (V,) bool vertices never
    covered; see the module docstring); `mesh` itself when the photo shows no hair."""
    if not sample.found:
        return mesh
    skin = next(part for part in mesh.part_list() if part.name == SKIN_PART)
    skin_faces = mesh.faces[skin.faces]
    above = above_hairline(mesh, ears)
    covered = (above[skin_faces] > 0).all(axis=1)
    if not covered.any():
        return mesh
    cap_faces = skin_faces[covered]
    source = np.unique(cap_faces)
    local = np.full(len(mesh.vertices), -1, np.int64)
    local[source] = np.arange(len(source))

    normals = _vertex_normals(mesh.vertices, skin_faces)[source]
    ramp = _smoothstep((above[source] - CAP_START_DEGREES) / CAP_RAMP_DEGREES)
    offset = normals * (CAP_AT_HAIRLINE_M + (sample.volume_m - CAP_AT_HAIRLINE_M) * ramp)[:, None]
    count = len(mesh.vertices)
    vertices = np.concatenate([mesh.vertices, mesh.vertices[source] + offset]).astype(np.float32)
    image_points = np.concatenate([mesh.image_points, mesh.image_points[source] + _camera_offsets(mesh, offset)])
    faces = np.concatenate([mesh.faces, count + local[cap_faces]]).astype(np.int32)
    uv_faces = np.concatenate([mesh.uv_faces, mesh.uv_faces[skin.faces][covered]]).astype(np.int32)
    parts = [*mesh.part_list(), MeshPart(HAIR_PART, len(mesh.faces), len(faces), HAIR_PART)]
    morphs = {name: np.concatenate([target, target[source]]).astype(np.float32) for name, target in mesh.morph_targets.items()}
    skin_rig = mesh.skin
    if skin_rig is not None:
        skin_rig = Skin(skin_rig.joint_names, skin_rig.parents, skin_rig.bind_positions,
                        np.concatenate([skin_rig.joints, skin_rig.joints[source]]),
                        np.concatenate([skin_rig.weights, skin_rig.weights[source]]))
    params = {**mesh.params, "hair_rgb": sample.rgb.astype(np.float32), "hair_volume_m": np.float32(sample.volume_m),
              "hair_vertices": np.int32(len(source))}
    hairy = dataclasses.replace(mesh, vertices=vertices, faces=faces, image_points=image_points.astype(np.float32),
                                uv_faces=uv_faces, parts=parts, morph_targets=morphs, skin=skin_rig, params=params)
    hairy.check_inputs()
    return hairy


def _camera_offsets(mesh: HeadMesh, offsets: np.ndarray) -> np.ndarray:
    """HeadMesh-space offsets → image-point offsets (crop px x, y and depth) through the fitted camera
    (`params` rotation and scale_px_per_m: x = s·(R·v)_x, y = −s·(R·v)_y, depth = −s·(R·v)_z)."""
    rotation = np.asarray(mesh.params["rotation"], dtype=np.float64)
    scale = float(mesh.params["scale_px_per_m"])
    return scale * (offsets @ rotation.T) * np.array([1.0, -1.0, -1.0])


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) area-weighted unit normals from `faces` (vertices they do not use: zero)."""
    corners = np.asarray(vertices, dtype=np.float64)[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    index = faces.reshape(-1)
    normals = np.stack([np.bincount(index, np.repeat(face_normals[:, c], 3), minlength=len(vertices)) for c in range(3)], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
