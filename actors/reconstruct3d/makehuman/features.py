"""Procedural colours for the parts a photo cannot texture: eyeballs, teeth, tongue, the inside of
the mouth and the eyelashes. Everything is painted from each texel's rest position on the head
(HeadMesh space: metres, +z the face), so it does not depend on how MakeHuman's atlas lays the parts out.

- Eyes: an image of two discs (the planar eye UVs of `dress`), where the angle from the eye's
  forward axis sets pupil, iris and sclera. The iris radius is 0.098 of the distance between the eyeball centres
  (MediaPipe's iris model on real faces, as in `build_correspondence`); its colour is the photo's
  (`iris.measure_iris`), with radial fibres, a lighter collarette and a dark limbal ring. The sclera
  is an off-white that greys toward the back (the lids shade it).
- Teeth and tongue: ivory and a muted pink, darker toward the back of the mouth (no renderer here
  darkens the inside of the mouth on its own).
- Eyelashes: an alpha mask of tapered, slightly curled strands across each lash flap. A texel's
  root-to-tip coordinate is its distance from the eyelid skin (the flaps grow out of the lid margin)
  over its flap's largest, its along-the-lid coordinate the horizontal position across the flap.
All colours here are linear RGB in [0, 1].
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .skin_albedo import srgb_to_linear

IRIS_SHARE_OF_EYE_DISTANCE = 0.098
PUPIL_SHARE = 0.36  # pupil radius / iris radius (an indoor pupil)
SCLERA_SRGB = (212, 203, 195)
SCLERA_BACK_SRGB = (150, 138, 132)
PUPIL_SRGB = (10, 8, 8)
TEETH_SRGB = (248, 244, 232)
TONGUE_SRGB = (178, 92, 96)
MOUTH_SRGB = (96, 40, 44)
LASH_SRGB = (28, 22, 20)
LASH_STRANDS = 48  # strands across one upper flap (half on a lower one)
LASH_ROOT_WIDTH, LASH_TIP_WIDTH = 0.45, 0.15  # strand width at the root and the tip, in strand spacings
LASH_LINE = 0.18  # root share of a flap drawn solid: the lash line along the lid margin
GUM_SRGB = (176, 96, 102)
CROWN_SHARE = 0.36  # of a teeth set's height (MakeHuman's sets include the gums)
ARCH_RADIUS = 0.025  # metres: the dental arch's curvature behind the front teeth
# Boundaries between crowns along the arch from the midline (central incisor, lateral, canine, premolars, molars).
TOOTH_BOUNDARIES_M = np.cumsum([0.0, 0.0085, 0.0065, 0.0075, 0.007, 0.007, 0.010, 0.010])
LASH_CURL = 0.35  # how far a strand's tip sweeps toward the outer corner, in strand spacings
MOUTH_LINEAR = srgb_to_linear(np.array(MOUTH_SRGB, np.uint8))
TEETH_LINEAR = srgb_to_linear(np.array(TEETH_SRGB, np.uint8)).astype(np.float64)
GUM_LINEAR = srgb_to_linear(np.array(GUM_SRGB, np.uint8)).astype(np.float64)
LASH_LINEAR = srgb_to_linear(np.array(LASH_SRGB, np.uint8))


def eye_image(size: int, iris_srgb: np.ndarray, iris_angles: np.ndarray, discs, disc_radius: float) -> np.ndarray:
    """(size, size, 3) linear RGB of the eye image: per disc (`discs`: UV centres, `disc_radius`), a
    planar view of an eyeball's front — pupil, iris (`iris_srgb`, reaching `iris_angles[k]` radians
    from the forward axis) and sclera. Outside the discs: the sclera's back colour."""
    sclera = srgb_to_linear(np.array(SCLERA_SRGB, np.uint8)).astype(np.float64)
    back = srgb_to_linear(np.array(SCLERA_BACK_SRGB, np.uint8)).astype(np.float64)
    iris = srgb_to_linear(np.asarray(np.clip(iris_srgb, 0, 255), np.uint8)).astype(np.float64)
    pupil = srgb_to_linear(np.array(PUPIL_SRGB, np.uint8)).astype(np.float64)
    image = np.empty((size, size, 3))
    image[:] = back
    reach = int(np.ceil(disc_radius * size)) + 1
    for (centre_u, centre_v), iris_angle in zip(discs, iris_angles):
        col0, row0 = max(int(centre_u * size) - reach, 0), max(int((1.0 - centre_v) * size) - reach, 0)
        rows, cols = np.mgrid[row0:min(row0 + 2 * reach, size), col0:min(col0 + 2 * reach, size)]
        dx = ((cols + 0.5) / size - centre_u) / disc_radius
        dy = ((1.0 - (rows + 0.5) / size) - centre_v) / disc_radius  # row 0 = v 1
        radius = np.hypot(dx, dy)
        inside = radius <= 1.0
        rows, cols, dx, dy, radius = rows[inside], cols[inside], dx[inside], dy[inside], radius[inside]
        angle = np.arcsin(radius)  # from the forward axis, on the front half
        around = np.arctan2(dy, dx)
        rho = angle / iris_angle  # 0 at the pupil's centre, 1 at the iris's rim
        greying = np.clip((angle - 1.2 * iris_angle) / (np.pi / 2 - 1.2 * iris_angle), 0.0, 1.0)[:, None]
        colour = sclera + greying * (back - sclera)
        fibres = 1.0 + 0.18 * np.sin(around * 37.0 + 3.0 * rho) * np.sin(around * 11.0 - 2.0 * rho)
        collarette = 1.0 + 0.3 * np.exp(-(((rho - 0.55) / 0.1) ** 2))
        limbus = 1.0 - 0.55 * np.clip((rho - 0.8) / 0.2, 0.0, 1.0)
        iris_colour = iris * (fibres * collarette * limbus)[:, None]
        colour += np.clip((1.04 - rho) / 0.06, 0.0, 1.0)[:, None] * (iris_colour - colour)
        colour += np.clip((PUPIL_SHARE + 0.03 - rho) / 0.06, 0.0, 1.0)[:, None] * (pupil - colour)
        image[rows, cols] = colour
    return image.astype(np.float32)


def iris_angles(centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(2,) radians from each eyeball's forward axis to its iris rim: the iris radius is
    IRIS_SHARE_OF_EYE_DISTANCE of the distance between the eyeball centres."""
    iris_radius = IRIS_SHARE_OF_EYE_DISTANCE * float(np.linalg.norm(centres[1] - centres[0]))
    return np.arcsin(np.clip(iris_radius / np.asarray(radii, dtype=np.float64), 0.05, 0.95))


def paint_mouth_part(points: np.ndarray, srgb: tuple[int, int, int], mouth_front: float, mouth_depth: float) -> np.ndarray:
    """(N, 3) linear RGB: `srgb` at the front of the mouth (z = `mouth_front`), fading to a third of
    it `mouth_depth` metres further back."""
    depth = np.clip((mouth_front - np.asarray(points)[:, 2]) / max(mouth_depth, 1e-6), 0.0, 1.0)
    base = np.asarray(srgb_to_linear(np.array(srgb, np.uint8)), np.float64)
    return base[None, :] * (1.0 - 0.67 * depth)[:, None]


def paint_teeth(points: np.ndarray, upper: np.ndarray, upper_vertices: np.ndarray, lower_vertices: np.ndarray) -> np.ndarray:
    """(N, 3) linear RGB of teeth texels at rest positions `points` (`upper`: (N,) bool, on the upper set).

    MakeHuman's teeth sets carry their gums: the crown is the CROWN_SHARE of each set's height at its
    biting edge (the bottom of the upper set, the top of the lower), the rest is gum. Teeth are parted
    by thin dark gaps at the usual crown widths along the arch (arc length around an arch centre
    ARCH_RADIUS behind the front teeth), and darken toward the back of the mouth."""
    points = np.asarray(points, dtype=np.float64)
    front = max(np.asarray(upper_vertices)[:, 2].max(), np.asarray(lower_vertices)[:, 2].max())
    colour = np.empty((len(points), 3))
    for chosen, vertices, biting_bottom in ((upper, upper_vertices, True), (~upper, lower_vertices, False)):
        if not chosen.any():
            continue
        low, high = float(np.min(vertices[:, 1])), float(np.max(vertices[:, 1]))
        edge = low if biting_bottom else high
        from_edge = np.abs(points[chosen, 1] - edge) / max(high - low, 1e-9)
        arc = ARCH_RADIUS * np.abs(np.arctan2(points[chosen, 0], points[chosen, 2] - (front - ARCH_RADIUS)))
        gap = np.min(np.abs(arc[:, None] - TOOTH_BOUNDARIES_M[None, :]), axis=1)
        crown = TEETH_LINEAR * (1.0 - 0.3 * np.exp(-((gap / 0.0006) ** 2)))[:, None]
        gum_mix = np.clip((from_edge - CROWN_SHARE + 0.04 * np.cos(arc / 0.004)) / 0.05, 0.0, 1.0)[:, None]
        colour[chosen] = crown + gum_mix * (GUM_LINEAR - crown)
    depth = np.clip((front - points[:, 2] - 0.015) / 0.03, 0.0, 1.0)  # the front 1.5 cm stays bright
    return colour * (1.0 - 0.5 * depth)[:, None]


def lash_alpha(points: np.ndarray, texel_flap: np.ndarray, texel_root: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """(N,) float32 0..1 lash coverage: a solid lash line at the lid margin, then tapered, slightly
    curled strands (shorter and sparser on the lower lids).

    points: (N, 3) texel rest positions. texel_flap: (N,) flap id of each texel (see `lash_flaps`).
    texel_root: (N,) the texel's distance from the lid skin over its flap's largest (0 root, 1 tip).
    lower: (N,) bool, the texel is on a lower lid's flap."""
    points = np.asarray(points, dtype=np.float64)
    alpha = np.zeros(len(points), np.float32)
    for flap in np.unique(texel_flap):
        chosen = texel_flap == flap
        x = points[chosen, 0]
        low, high = x.min(), x.max()
        outer = 1.0 if (low + high) > 0 else -1.0  # the outer corner is away from the nose
        is_lower = bool(lower[chosen].mean() > 0.5)
        strands = LASH_STRANDS // 3 if is_lower else LASH_STRANDS
        along = (x - low) / max(high - low, 1e-9) * strands
        tip = np.clip(texel_root[chosen], 0.0, 1.0)
        along = along - outer * LASH_CURL * tip**2
        nearest = np.round(along)
        jitter = 0.25 * np.sin(nearest * 12.9898 + flap * 78.233)
        length = (0.3 if is_lower else 0.75) + 0.25 * (0.5 + 0.5 * np.sin(nearest * 4.1414 + flap))
        width = (LASH_ROOT_WIDTH + (LASH_TIP_WIDTH - LASH_ROOT_WIDTH) * tip) * (0.5 if is_lower else 1.0)
        strand = (np.abs(along - nearest - jitter) < width / 2) & (tip < length)
        alpha[chosen] = (strand | (tip < (0.5 if is_lower else 1.0) * LASH_LINE)).astype(np.float32)
    return alpha


def components(faces: np.ndarray, count: int) -> np.ndarray:
    """(count,) int64 connected-piece label of each vertex of a small mesh (`faces` index 0..count-1)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def lash_roots(lash_vertices: np.ndarray, flap: np.ndarray, skin_vertices: np.ndarray) -> np.ndarray:
    """(V,) float32 root-to-tip coordinate of each lash vertex: its distance from the lid skin over
    its flap's largest (the flaps grow out of the lid margin)."""
    distance, _ = cKDTree(np.asarray(skin_vertices, dtype=np.float64)).query(np.asarray(lash_vertices, dtype=np.float64))
    root = np.zeros(len(lash_vertices), np.float32)
    for label in np.unique(flap):
        chosen = flap == label
        near = distance[chosen]
        root[chosen] = (near - near.min()) / max(float(np.ptp(near)), 1e-9)
    return root


def paint_hair(points: np.ndarray, weight: np.ndarray, hair_srgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((N, 3) linear RGB, (N,) alpha 0/1) of hair-cap texels at rest positions `points` with hair
    weight `weight` (0 at the hairline, 1 well inside it; see `hair.hair_weights`).

    Strands are value noise stretched along the meridians (many cells around the head, few up it):
    combed streaks, over slower clumps. The hairline breaks up: a texel is hair where its weight
    beats a threshold that follows the same streaks, so single strands reach further than others,
    and the roots there are darker (skin shows through thin hair)."""
    points = np.asarray(points, dtype=np.float64)
    around = (np.arctan2(points[:, 0], points[:, 2]) / (2 * np.pi) + 0.5)  # 0..1 around the vertical axis
    up = np.arctan2(points[:, 1], np.hypot(points[:, 0], points[:, 2])) / np.pi + 0.5  # 0..1 bottom to top
    streaks = value_noise(around * 360.0, up * 10.0, 360, seed=1)
    fine = value_noise(around * 900.0, up * 25.0, 900, seed=2)
    clumps = value_noise(around * 24.0, up * 8.0, 24, seed=3)
    shade = 0.78 + 0.3 * streaks + 0.12 * fine + 0.16 * (clumps - 0.5)
    weight = np.asarray(weight, dtype=np.float64)
    roots = 0.8 + 0.2 * np.clip(weight / 0.8, 0.0, 1.0)
    colour = srgb_to_linear(np.clip(np.asarray(hair_srgb), 0, 255).astype(np.uint8)).astype(np.float64)
    linear = colour[None, :] * (shade * roots)[:, None]
    threshold = 0.15 + 0.7 * (0.6 * streaks + 0.4 * fine)
    return linear.astype(np.float32), (weight > threshold).astype(np.float32)


def value_noise(x: np.ndarray, y: np.ndarray, period_x: int, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] on a unit lattice (lattice values hashed from the cell and `seed`),
    periodic in x with `period_x` cells (so it wraps around the head).

    The hash is evaluated once per lattice node of the rows the points span (a small table), then
    gathered: the same values as hashing every corner of every point, at a fraction of the sines."""
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    if not np.size(y0):
        return np.zeros(np.shape(x), np.float64)
    first_row = float(np.min(y0))
    rows = np.arange(first_row, float(np.max(y0)) + 2.0)
    columns = np.arange(period_x, dtype=np.float64)
    table = np.modf(np.abs(np.sin(columns[:, None] * 127.1 + rows[None, :] * 311.7 + seed * 74.7)) * 43758.5453)[0]
    i = np.mod(x0, period_x).astype(np.int64)
    i1 = np.mod(i + 1, period_x)
    j = (y0 - first_row).astype(np.int64)
    top = table[i, j] + fx * (table[i1, j] - table[i, j])
    bottom = table[i, j + 1] + fx * (table[i1, j + 1] - table[i, j + 1])
    return top + fy * (bottom - top)
