"""The MakeHuman head's textures in the person's own skin tone (`MakeHumanHeadEngine.bake`).

Images: "skin", an RGBA atlas in MakeHuman's UV layout (`texture_size`², 1024 by default) for the
skin, eyelashes (alpha), teeth and tongue, whose charts do not overlap; "eyes", 256², the two
eyeballs' fronts on the discs `dress` maps the eyes to; "hair", RGBA at half the atlas size in the
scalp's place of the same layout, when the head has a hair cap. Per bake:

1. Skin albedo (`skin_albedo`): the median colour of `face.skin_mask` with the photo's smooth
   shading divided out, and the shading map itself.
2. The photo on the visible face (`project_photo`): each skin texel's point, through the head's
   `image_points` (the posed head with its expression), lands on a crop pixel; it counts as seen
   when it faces the camera (`FACING`), is not hidden by the head itself (a z-buffer of skin, eyes,
   teeth and tongue: `camera_depth`), lies on the person above the chin and inside MediaPipe's face
   oval, and is not a loose strand of hair above the brows (`bake.py`'s visibility pieces, reused).
   Texels seen badly take their mirror image's pixel when that one was seen better. The photo is
   delit by the shading map and what is left of specular spots is pulled back (`compress_highlights`).
3. Soft seam: the photo's weight is its visibility times MakeHuman's face region (`mpfb_face.jpg`,
   a soft disc in UV space, widened a little; less on the eyelids, which the photo shows folded),
   and toward the seam the photo's local mean colour is led to the albedo's (`match_seam`), so the
   face fades into one skin that covers scalp, ears, neck and shoulders, with a faint grain; the
   lips keep a lip tint where the photo does not reach, the inside of the mouth is dark.
4. Eyes (iris colour from the photo: `iris`), teeth with gums, tongue and eyelash strands (alpha)
   are painted (`features`); the hair cap gets the photo's hair colour with combed strands.
5. A gutter of a few texels around every chart repeats its edge (no seam bleeding under filtering).

Materials: skin (rough), eyes (glossy), eyelashes (MASK, double-sided), teeth, tongue, and hair
(MASK: a ragged hairline). Colour maths runs in linear light.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from actors.align.skin_mask import FACE_OVAL
from dataset.face import AlignedFace

from ..bake import (TEXTURE_SIZES, _depth_slack, _mirror_faces, _usable_photo, _vertex_facing,
                    _visibility)
from ..mesh import HeadMesh, HeadTextures, Material
from ..render import sample_image
from . import features
from .hair import HAIR_PART, hair_coloured, hair_weights
from .iris import measure_iris
from .camera_depth import camera_depth
from .dress import EYE_DISC_RADIUS, EYE_DISCS, eyeballs
from .skin_albedo import LUMA, SkinAlbedo, linear_to_srgb8, measure_skin_albedo, srgb_to_linear
from .uv_regions import AtlasLayout, build_layout, interpolate, region_mask, vertex_region

ATLAS, EYES = "skin", "eyes"  # image names
ATLAS_PARTS = ("skin", "eyelashes", "teeth", "tongue")  # the parts drawn from the atlas
EYE_IMAGE_SIZE = 256
FACING = (0.3, 0.65)  # cosine to the camera where the photo starts to count / counts fully (grazing skin smears)
OVAL_FADE = 0.15  # the photo fades out over this share of the inter-ocular distance inside the face oval
BROW_TOPS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)  # MediaPipe's upper brow contours
BROW_MARGIN = 0.0  # of the face's height: loose hair is looked for from this far above the brows' top
FACE_REGION_GAIN = 1.6  # MakeHuman's face mask × this, clipped to 1: the photo reaches a little past the disc
EYELID_DAMPING = 0.8  # the photo's weight on MakeHuman's eyelid region: × (1 − this)
HIGHLIGHT_RANGE = 0.3  # the projected face stays below ×e^0.3 of the albedo's luminance (soft limit)
SEAM_GRID, SEAM_SIGMA_CELLS = 16, 1.5  # the photo's local mean colour: atlas/16 cells, Gaussian of 1.5 cells
GRAIN = 0.035  # relative amplitude of the albedo's skin grain
LIP_TINT = np.array([1.15, 0.82, 0.85])  # the albedo × this on the lips, where the photo does not reach them
MATERIALS = {
    "skin": Material(texture=ATLAS, roughness=0.65),
    EYES: Material(texture=EYES, roughness=0.12),
    "eyelashes": Material(texture=ATLAS, roughness=0.9, alpha_mode="MASK", double_sided=True),
    "teeth": Material(texture=ATLAS, roughness=0.35),
    "tongue": Material(texture=ATLAS, roughness=0.5),
    HAIR_PART: Material(texture=HAIR_PART, roughness=0.55, alpha_mode="MASK"),
}


@dataclass(frozen=True)
class _Layouts:
    """What depends on MakeHuman's UV layout alone, computed once per texture size."""

    atlas: AtlasLayout  # every non-hair part at the texture size
    scalp: AtlasLayout  # the skin at half the size (the hair image's texels)
    skin: np.ndarray  # (M,) atlas texel indices of the skin
    photo: np.ndarray  # (P,) indices into `skin` of the texels the photo may reach
    photo_region: np.ndarray  # (P,) the photo's largest weight there (face region, not inside the mouth)
    skin_tint: np.ndarray  # (M, 3) float32: the albedo's multiplier per skin texel (grain, lip tint)
    mouth: np.ndarray  # (M,) float32: inside-of-the-mouth weight
    ears: np.ndarray  # (512, 512) float32 MakeHuman's ear mask in UV space


class MakeHumanTextureBaker:
    """Bakes `HeadTextures` of one size for MakeHuman heads; keeps the UV rasters between heads."""

    def __init__(self, texture_size: int = 1024):
        if texture_size not in TEXTURE_SIZES:
            raise ValueError(f"texture_size must be one of {TEXTURE_SIZES}, got {texture_size}.")
        self.size = texture_size
        self._layouts: dict[bytes, _Layouts] = {}

    def bake(self, mesh: HeadMesh, face: AlignedFace) -> HeadTextures:
        """The textures and materials of a fitted MakeHuman head (see the module docstring)."""
        check_inputs(mesh, face)
        layouts = self._layout(mesh)
        atlas = layouts.atlas
        albedo = measure_skin_albedo(face.crop, face.skin_mask, face.landmarks)
        colour = np.zeros((len(atlas.texel), 3), np.float32)
        alpha = np.ones(len(atlas.texel), np.float32)

        colour[layouts.skin] = self._skin(mesh, face, layouts, albedo)
        _paint_features(mesh, face, atlas, colour, alpha)

        images = {ATLAS: _to_image(atlas, colour, alpha, albedo.linear), EYES: _eye_image(mesh, face)}
        materials = {name: MATERIALS[name] for name in (*ATLAS_PARTS, EYES)}
        if any(part.name == HAIR_PART for part in mesh.part_list()):
            images[HAIR_PART] = _hair_image(mesh, layouts.scalp, layouts.ears)
            materials[HAIR_PART] = MATERIALS[HAIR_PART]
        return HeadTextures(images=images, materials=materials)

    def _skin(self, mesh: HeadMesh, face: AlignedFace, layouts: _Layouts, albedo: SkinAlbedo) -> np.ndarray:
        """(M, 3) linear RGB of the skin texels: the delit photo over the albedo, through the soft seam."""
        mouth = features.MOUTH_LINEAR[None, :]
        base = albedo.linear[None, :] * layouts.skin_tint
        base += layouts.mouth[:, None] * (mouth - base)
        chosen = layouts.skin[layouts.photo]
        photo, seen = project_photo(mesh, face, layouts.atlas, chosen, albedo.shading)
        photo = compress_highlights(photo, albedo.linear)
        weight = seen * layouts.photo_region
        photo = match_seam(photo, weight, layouts.atlas.texel[chosen], self.size, albedo.linear)
        base[layouts.photo] += weight[:, None] * (photo - base[layouts.photo])
        return base

    def _layout(self, mesh: HeadMesh) -> _Layouts:
        uv_faces = np.concatenate([mesh.uv_faces[part.faces] for part in mesh.part_list() if part.name in ATLAS_PARTS])
        used = np.unique(uv_faces)
        key = hashlib.blake2b(np.ascontiguousarray(mesh.uvs[used], np.float32).tobytes()
                              + np.ascontiguousarray(uv_faces, np.int32).tobytes(), digest_size=16).digest()
        if key not in self._layouts:
            self._layouts.clear()  # one MakeHuman layout at a time: a new one replaces the old
            self._layouts[key] = _build_layouts(mesh, self.size)
        return self._layouts[key]


def _build_layouts(mesh: HeadMesh, size: int) -> _Layouts:
    atlas = build_layout(mesh, size, ATLAS_PARTS)
    skin = np.flatnonzero(atlas.of_part("skin"))
    region = np.clip(atlas.regions["face"][skin] * FACE_REGION_GAIN, 0.0, 1.0) * (1.0 - atlas.regions["inside-mouth"][skin])
    region *= 1.0 - EYELID_DAMPING * atlas.regions["eyelids"][skin]  # lids hidden in the photo's fold show when they blink
    photo = np.flatnonzero(region > 1e-3)
    lips = atlas.regions["lips"][skin]
    tint = (1.0 + GRAIN * _grain(atlas, skin))[:, None] * (1.0 + lips[:, None] * (LIP_TINT - 1.0))
    return _Layouts(atlas=atlas, scalp=build_layout(mesh, size // 2, ("skin",)), skin=skin, photo=photo,
                    photo_region=region[photo].astype(np.float32), skin_tint=tint.astype(np.float32),
                    mouth=atlas.regions["inside-mouth"][skin].astype(np.float32), ears=region_mask("ears", 512))


def _grain(atlas: AtlasLayout, skin: np.ndarray) -> np.ndarray:
    """(M,) zero-mean skin grain in about [-1, 1]: smooth noise in texel space at a ~1/300 of the atlas
    scale (fixed per layout, so every head gets the same grain)."""
    size = atlas.size
    cells = max(size // 3, 8)
    noise = np.random.default_rng(11).standard_normal((cells, cells)).astype(np.float32)
    fine = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    coarse = cv2.resize(np.random.default_rng(12).standard_normal((cells // 8, cells // 8)).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_CUBIC)
    field = (0.7 * fine + 0.3 * coarse).reshape(-1)[atlas.texel[skin]]
    return np.clip(field / max(float(field.std()), 1e-6), -2.5, 2.5) / 2.5


def check_inputs(mesh: HeadMesh, face: AlignedFace) -> None:
    """Pure: one ValueError per broken rule."""
    mesh.check_inputs()
    names = [part.name for part in mesh.part_list()]
    missing = [name for name in (*ATLAS_PARTS, EYES) if name not in names]
    if missing:
        raise ValueError(f"not a MakeHuman head: parts {missing} are missing (it has {names}).")
    if mesh.uvs is None:
        raise ValueError("the mesh has no UVs: MakeHuman heads carry MakeHuman's atlas UVs.")
    eyes = next(part for part in mesh.part_list() if part.name == EYES)
    eye_uvs = mesh.uvs[mesh.uv_faces[eyes.faces].reshape(-1)]
    off_disc = np.min([np.hypot(*(eye_uvs - centre).T) for centre in EYE_DISCS], axis=0) > EYE_DISC_RADIUS + 1e-3
    if off_disc.any():
        raise ValueError("the eyes' UVs are MakeHuman's atlas ones: dress the head first (makehuman.dress.dress).")
    crop = np.asarray(face.crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"face.crop must be (H, W, 3) uint8 RGB, got {crop.shape} {crop.dtype}.")
    for name in ("mask", "skin_mask"):
        if np.shape(getattr(face, name)) != crop.shape[:2]:
            raise ValueError(f"face.{name} must be {crop.shape[:2]}, got {np.shape(getattr(face, name))}.")


def project_photo(mesh: HeadMesh, face: AlignedFace, atlas: AtlasLayout, chosen: np.ndarray,
                  shading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the `chosen` skin texels: ((M, 3) delit linear photo colour, (M,) confidence 0..1 that the
    camera saw the texel, directly or through its mirror image)."""
    points = np.asarray(mesh.image_points, dtype=np.float32)
    crop = np.asarray(face.crop)
    height, width = crop.shape[:2]
    solid = np.concatenate([mesh.faces[part.faces] for part in mesh.part_list() if part.name in ("skin", "eyes", "teeth", "tongue")])
    zbuffer = camera_depth(points, solid, height, width)
    usable = _usable_photo(crop, face.mask, face.skin_mask) & ~stray_hair(face)
    skin_faces = mesh.faces[next(part for part in mesh.part_list() if part.name == "skin").faces]
    facing = _vertex_facing(mesh, points, skin_faces)
    mirror = _skin_mirror(mesh.vertices, skin_faces)
    slack = _depth_slack(points, mesh.faces, 0.01 * float(np.ptp(points[:, 2]) or 1.0))

    triangle = atlas.triangle[chosen]
    corners, weights = atlas.corners[chosen], atlas.weights[chosen]
    attributes = np.concatenate([points, facing[:, None]], axis=1)
    direct = interpolate(attributes, corners, weights)
    mirrored = interpolate(attributes, mirror[corners], weights)
    oval = face_oval_weight(face.landmarks, crop.shape[:2])
    seen_direct = (_visibility(direct[:, :3], zbuffer, slack[triangle], usable) * _facing_ramp(direct[:, 3])
                   * sample_image(oval, direct[:, 0] - 0.5, direct[:, 1] - 0.5)[:, 0])
    mirror_slack = slack[_mirror_faces(mesh.faces, mirror)][triangle]
    seen_mirror = (_visibility(mirrored[:, :3], zbuffer, mirror_slack, usable) * _facing_ramp(mirrored[:, 3])
                   * sample_image(oval, mirrored[:, 0] - 0.5, mirrored[:, 1] - 0.5)[:, 0] * (1.0 - seen_direct))

    delit = srgb_to_linear(crop) / shading[..., None]
    colour = (sample_image(delit, direct[:, 0] - 0.5, direct[:, 1] - 0.5) * seen_direct[:, None]
              + sample_image(delit, mirrored[:, 0] - 0.5, mirrored[:, 1] - 0.5) * seen_mirror[:, None])
    confidence = seen_direct + seen_mirror
    return colour / np.maximum(confidence, 1e-6)[:, None], confidence


def _paint_features(mesh: HeadMesh, face: AlignedFace, atlas: AtlasLayout, colour: np.ndarray, alpha: np.ndarray) -> None:
    """Eyes, teeth, tongue and eyelashes into the atlas's `colour` (linear RGB) and `alpha`, in place."""
    parts = {part.name: part for part in mesh.part_list()}

    teeth = np.flatnonzero(atlas.of_part("teeth"))
    teeth_faces = mesh.faces[parts["teeth"].faces]
    ids, local = np.unique(teeth_faces, return_inverse=True)
    piece = features.components(local.reshape(-1, 3), len(ids))
    upper_piece = max(np.unique(piece), key=lambda label: mesh.vertices[ids[piece == label], 1].mean())
    upper_vertex = np.zeros(len(mesh.vertices), bool)
    upper_vertex[ids[piece == upper_piece]] = True
    colour[teeth] = features.paint_teeth(atlas.at(mesh.vertices, teeth), upper_vertex[atlas.corners[teeth, 0]],
                                         mesh.vertices[ids[piece == upper_piece]], mesh.vertices[ids[piece != upper_piece]])
    teeth_vertices = mesh.vertices[ids]
    tongue = np.flatnonzero(atlas.of_part("tongue"))
    colour[tongue] = features.paint_mouth_part(atlas.at(mesh.vertices, tongue), features.TONGUE_SRGB,
                                               float(teeth_vertices[:, 2].max()), float(np.ptp(teeth_vertices[:, 2])))

    lashes = np.flatnonzero(atlas.of_part("eyelashes"))
    lash_faces = mesh.faces[parts["eyelashes"].faces]
    ids, local = np.unique(lash_faces, return_inverse=True)
    flap = features.components(local.reshape(-1, 3), len(ids))
    root = features.lash_roots(mesh.vertices[ids], flap, mesh.vertices[np.unique(mesh.faces[parts["skin"].faces])])
    _, centres, _ = eyeballs(mesh)
    lower_flap = np.array([mesh.vertices[ids[flap == label], 1].mean() < centres[:, 1].mean() for label in range(flap.max() + 1)])
    lookup = np.full(len(mesh.vertices), -1, np.int64)
    lookup[ids] = np.arange(len(ids))
    corners = lookup[atlas.corners[lashes]]
    texel_root = (atlas.weights[lashes] * root[corners]).sum(axis=1)
    texel_flap = flap[corners[:, 0]]
    alpha[lashes] = features.lash_alpha(atlas.at(mesh.vertices, lashes), texel_flap, texel_root, lower_flap[texel_flap])
    colour[lashes] = features.LASH_LINEAR


def match_seam(photo: np.ndarray, weight: np.ndarray, texel: np.ndarray, size: int, albedo: np.ndarray) -> np.ndarray:
    """(N, 3) the photo's texels with their large-scale colour led to the albedo's toward the seam.

    The photo's local mean colour (a normalised Gaussian over the atlas at 1/SEAM_GRID of its
    resolution, weighted by `weight`) is divided out and the albedo put in its place, in proportion
    to 1 − weight: the face's centre keeps the photo as it is, while at the seam, where the photo
    fades into the albedo, both already agree — no ring where a shadowed jaw or a warmer cheek meets
    the neck. Details (brows, lips, pores) ride on top unchanged."""
    cells = max(size // SEAM_GRID, 4)
    row, col = texel // size, texel % size
    cell = (row * cells // size) * cells + col * cells // size
    mass = np.bincount(cell, weight, minlength=cells * cells).astype(np.float32)
    sums = np.stack([np.bincount(cell, photo[:, c] * weight, minlength=cells * cells) for c in range(3)], axis=1)
    sums = cv2.GaussianBlur(sums.reshape(cells, cells, 3).astype(np.float32), (0, 0), SEAM_SIGMA_CELLS)
    mass = cv2.GaussianBlur(mass.reshape(cells, cells), (0, 0), SEAM_SIGMA_CELLS)
    local = sums / np.maximum(mass, 1e-6)[..., None]
    x = (col + 0.5) * cells / size - 0.5
    y = (row + 0.5) * cells / size - 0.5
    local_at = np.maximum(sample_image(local, x, y), 1e-5)
    gain = np.clip(np.asarray(albedo, np.float32)[None, :] / local_at, 0.5, 2.0)
    return photo * gain ** (1.0 - np.clip(weight, 0.0, 1.0))[:, None]


def compress_highlights(linear: np.ndarray, albedo: np.ndarray) -> np.ndarray:
    """(N, 3) the photo's colours with what delighting left of specular spots pulled back: luminance
    above the albedo's is compressed (log ratio through a tanh, at most ×e^HIGHLIGHT_RANGE), and as
    much as it is compressed the colour turns to the albedo's (a sheen is the light's colour, not the
    skin's). Darker pixels — brows, lash lines, wrinkles, pores — keep their contrast and colour."""
    luminance = np.maximum(linear @ LUMA, 1e-5)
    albedo = np.asarray(albedo, np.float32)
    reference = max(float(albedo @ LUMA), 1e-5)
    ratio = np.log(luminance / reference)
    target = np.where(ratio > 0, HIGHLIGHT_RANGE * np.tanh(ratio / HIGHLIGHT_RANGE), ratio)
    compressed = np.clip((ratio - target) / np.maximum(ratio, 1e-6), 0.0, 1.0)[:, None]
    scaled = linear * np.exp(target - ratio)[:, None]
    return scaled + compressed * (albedo[None, :] * np.exp(target)[:, None] - scaled)


def stray_hair(face: AlignedFace) -> np.ndarray:
    """(H, W) bool: hair-coloured pixels above the brows (fringes, loose strands): the forehead under
    them takes the albedo, and the hair cap shows the hair."""
    crop = np.asarray(face.crop)
    landmarks = np.asarray(face.landmarks, dtype=np.float64)
    skin = np.asarray(face.skin_mask, dtype=bool)
    stray = np.zeros(crop.shape[:2], bool)
    top = int(landmarks[list(BROW_TOPS), 1].min() - BROW_MARGIN * abs(landmarks[152, 1] - landmarks[10, 1]))
    if top <= 0 or skin.sum() < 50:
        return stray
    lab = cv2.cvtColor(crop[:top].astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    skin_lab = np.median(cv2.cvtColor(crop[skin].reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[:, 0], axis=0)
    stray[:top] = hair_coloured(lab, skin_lab)
    return stray


def face_oval_weight(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 1) float32: 1 inside MediaPipe's face oval, fading to 0 at its edge over OVAL_FADE of the
    inter-ocular distance (beyond the oval a photo shows hair, ears, background or a collar, not the
    face the head's skin should wear)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    oval = np.zeros(shape, np.uint8)
    cv2.fillPoly(oval, [np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)], 1)
    fade = max(OVAL_FADE * float(np.linalg.norm(landmarks[468, :2] - landmarks[473, :2])), 1.0)
    inside = cv2.distanceTransform(oval, cv2.DIST_L2, 3)
    return np.clip(inside / fade, 0.0, 1.0)[..., None].astype(np.float32)


def _eye_image(mesh: HeadMesh, face: AlignedFace) -> np.ndarray:
    """(256, 256, 4) uint8: both eyeballs' fronts with the photo's iris colour, on the discs `dress` maps them to."""
    _, centres, radii = eyeballs(mesh)
    iris = measure_iris(np.asarray(face.crop), np.asarray(face.landmarks))
    linear = features.eye_image(EYE_IMAGE_SIZE, iris.rgb, features.iris_angles(centres, radii), EYE_DISCS, EYE_DISC_RADIUS)
    image = np.full((EYE_IMAGE_SIZE, EYE_IMAGE_SIZE, 4), 255, np.uint8)
    image[..., :3] = linear_to_srgb8(linear)
    return image


def _hair_image(mesh: HeadMesh, scalp: AtlasLayout, ears: np.ndarray) -> np.ndarray:
    # ears: MakeHuman's ear mask (`region_mask("ears", ...)`): no hair there
    """(S, S, 4) uint8: the photo's hair colour with combed strands over the scalp's texels, alpha cut
    along a ragged hairline (`features.paint_hair`); transparent elsewhere."""
    rgb = np.asarray(mesh.params.get("hair_rgb", features.LASH_SRGB), np.float32)
    weights = hair_weights(mesh, vertex_region(mesh, ears))
    hairy = (weights[scalp.corners] > 0).any(axis=1)
    chosen = np.flatnonzero(hairy)
    weight = scalp.at(weights[:, None], chosen)[:, 0]
    linear = np.zeros((len(scalp.texel), 3), np.float32)
    alpha = np.zeros(len(scalp.texel), np.float32)
    linear[chosen], alpha[chosen] = features.paint_hair(scalp.at(mesh.vertices, chosen), weight, rgb)
    return _to_image(scalp, linear, alpha, srgb_to_linear(np.clip(rgb, 0, 255).astype(np.uint8)), transparent=True)


def _to_image(layout: AtlasLayout, linear: np.ndarray, alpha: np.ndarray, background: np.ndarray,
              transparent: bool = False) -> np.ndarray:
    """(S, S, 4) uint8 sRGB + alpha: covered texels from `linear`/`alpha`, the gutter copied from the
    nearest chart texel, the rest `background` (opaque, or clear when `transparent`)."""
    size = layout.size
    fill = np.empty(4, np.uint8)
    fill[:3] = linear_to_srgb8(np.asarray(background, np.float32))
    fill[3] = 0 if transparent else 255
    image = np.empty((size * size, 4), np.uint8)
    image.view(np.uint32)[:] = fill.view(np.uint32)  # one 4-byte word per texel: ~10× faster than a 3-of-4 broadcast
    image[layout.texel, :3] = linear_to_srgb8(linear)
    image[layout.texel, 3] = (np.clip(alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    outside, nearest = layout.gutter
    image[outside] = image[nearest]
    return image.reshape(size, size, 4)


def _facing_ramp(cosine: np.ndarray) -> np.ndarray:
    return np.clip((cosine - FACING[0]) / (FACING[1] - FACING[0]), 0.0, 1.0)


def _skin_mirror(vertices: np.ndarray, skin_faces: np.ndarray) -> np.ndarray:
    """(V,) for each vertex, the skin vertex nearest its reflection across x = 0 (itself off the skin)."""
    mirror = np.arange(len(vertices))
    skin = np.unique(skin_faces)
    points = np.asarray(vertices, dtype=np.float64)[skin]
    mirror[skin] = skin[cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0]))[1]]
    return mirror
