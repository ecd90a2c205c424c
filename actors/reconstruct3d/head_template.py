"""A closed head built once around MediaPipe's canonical face mesh: the template the default engine deforms.

The canonical mesh is a disc (its only boundary is the face oval, 36 vertices). The template adds a
shell — top and back of the skull, the sides with ears, the jaw's underside and the neck — as a tube
of rings from the face oval down to a neck cut, and a flat cap over the cut, so the head is a closed,
consistently oriented 2-manifold (trimesh `is_watertight`).

How the shell is laid out (all in the canonical mesh's centimetres, x to the subject's left, y up,
z toward the camera):
1. The head's outer surface is the smooth union of a skull ellipsoid and an elliptic neck cylinder,
   expressed as a radius per direction from the skull centre (a p-norm of the two radii, so the jaw
   blends into the neck without a crease).
2. Directions from the skull centre are flattened with an azimuthal map centred on the back of the
   head: the face oval becomes a closed outer curve and the neck cut a closed inner curve, both
   star-shaped about the neck's centre direction H. Columns leave H at the angles of the face-oval
   vertices (and of their edge midpoints: the shell has twice the oval's resolution); ring t sits at
   (1 - t) of the way from the oval to the neck curve. Radial interpolation between two star-shaped
   curves cannot fold, so the rings never cross.
3. Each map point goes back to a direction and is lifted onto the surface of step 1. The gap between
   the lifted first rings and the real face oval is closed by moving every column by the oval's
   offset, fading with a Gaussian of the arc length from the face (the same fade carries each photo's
   face-oval displacement into the shell, see `follow_face`).
4. Ears are two flat-topped bumps pushed outward from the sides.

UVs: the face keeps the canonical layout, scaled into the lower middle of the square; the shell's
columns run from the face's UV outline straight out to a circle near the square's edge, so the face
and the shell meet without a UV seam; the neck cap gets its own small disc in the top-left corner.
Everything stays inside [0, 1] and no two triangles overlap in UV.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .canonical import CanonicalMesh

# Head proportions (cm, canonical frame). The canonical face spans x ±7.7, y -9.4 (chin) … 8.3
# (forehead top), z -2.4 (face sides) … 7.6 (nose tip).
SKULL_CENTRE = np.array([0.0, 2.5, -4.8])
SKULL_RADII = np.array([7.9, 11.0, 9.8])  # crown ~13.5 cm above the centre line, back of the head at z ≈ -14.6
NECK_CENTRE_Z = -6.8
NECK_RADII = np.array([5.5, 5.7])  # x, z
NECK_BOTTOM_Y = -19.0
UNION_SHARPNESS = 8.0  # p of the p-norm union of skull and neck radii
SEAM_FADE_CM = 2.8  # how far along the shell the face oval's offset fades
NUM_RINGS = 26
EAR_CENTRE = np.array([7.1, 1.0, -5.6])  # the right ear mirrors it
EAR_HALF_SIZE = np.array([3.1, 1.7])  # y, z
EAR_HEIGHT_CM = 1.5
# Texture layout.
UV_FACE_CENTRE = np.array([0.5, 0.37])
UV_FACE_SCALE = 0.44
UV_SHELL_CENTRE = np.array([0.5, 0.5])
UV_SHELL_RADIUS = 0.485
UV_CAP_CENTRE = np.array([0.075, 0.925])
UV_CAP_RADIUS = 0.065


@dataclass(frozen=True)
class HeadTemplate:
    vertices: np.ndarray  # (V, 3) float64 cm; the first 468 are the canonical face
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    uvs: np.ndarray  # (T, 2) float32, v up
    uv_faces: np.ndarray  # (F, 3) int32
    boundary: np.ndarray  # (K,) face-oval vertex ids, in loop order
    shell_follow: np.ndarray  # (V, K) float32: how much each vertex moves with each face-oval vertex
    mirror: np.ndarray  # (V,) int32: the vertex mirrored across x = 0
    hair: np.ndarray  # (V,) float32 in [0, 1]: prior that the surface there is hair rather than skin
    centre: np.ndarray  # (3,) cm: the skull centre, the origin of `HeadMesh` space
    num_face_vertices: int

    def follow_face(self, face_vertices: np.ndarray) -> np.ndarray:
        """All template vertices for a deformed face (the first `num_face_vertices`, cm, head frame).

        The shell is scaled by the face oval's size relative to the template (half-way toward it:
        a wider face means a wider skull, not proportionally), then each shell vertex moves with the
        face-oval vertices it fades from.
        """
        face_vertices = np.asarray(face_vertices, dtype=np.float64)
        n = self.num_face_vertices
        template_oval = self.vertices[self.boundary]
        new_oval = face_vertices[self.boundary]
        ratio = np.ptp(new_oval, axis=0) / np.ptp(template_oval, axis=0)
        scale = 1.0 + 0.5 * (np.clip(ratio, 0.7, 1.4) - 1.0)
        scaled = self.centre + (self.vertices - self.centre) * scale
        offsets = new_oval - (self.centre + (template_oval - self.centre) * scale)
        out = scaled + self.shell_follow @ offsets
        out[:n] = face_vertices
        return out


def build_head_template(canonical: CanonicalMesh) -> HeadTemplate:
    """Close the canonical face into a head (see the module docstring)."""
    face_vertices = np.asarray(canonical.vertices, dtype=np.float64)
    n_face = len(face_vertices)
    oval = boundary_loop(canonical.faces)
    k = len(oval)
    columns = 2 * k

    # Step 2: map the oval and the neck cut, columns from H.
    oval_map = azimuthal_map(face_vertices[oval] - SKULL_CENTRE)
    column_outer = np.empty((columns, 2))
    column_outer[0::2] = oval_map
    column_outer[1::2] = (oval_map + np.roll(oval_map, -1, axis=0)) / 2
    neck_curve = _neck_ring(720)
    neck_map = azimuthal_map(neck_curve - SKULL_CENTRE)
    hub = azimuthal_map(np.array([[0.0, NECK_BOTTOM_Y, NECK_CENTRE_Z]]) - SKULL_CENTRE)[0]
    angle_out, radius_out = _polar(column_outer - hub)
    if not _is_cyclic_monotone(angle_out):
        raise RuntimeError("the face oval is not star-shaped about the neck direction: head proportions are off.")
    angle_neck, radius_neck = _polar(neck_map - hub)
    order = np.argsort(angle_neck)
    radius_in = np.interp(angle_out, angle_neck[order], radius_neck[order], period=2 * np.pi)
    if np.any(radius_in >= radius_out):
        raise RuntimeError("the neck cut reaches the face oval: head proportions are off.")

    t = np.linspace(0.0, 1.0, NUM_RINGS + 1)[1:]  # rings 1..NUM_RINGS; ring 0 is the face oval
    radius = (1 - t)[:, None] * radius_out[None, :] + t[:, None] * radius_in[None, :]
    ring_map = hub + radius[..., None] * np.stack([np.cos(angle_out), np.sin(angle_out)], axis=-1)

    # Step 3: lift onto the head surface; fade the oval's offset into the shell.
    directions = inverse_azimuthal_map(ring_map.reshape(-1, 2))
    shell = SKULL_CENTRE + surface_radius(directions)[:, None] * directions
    shell = shell.reshape(NUM_RINGS, columns, 3)
    shell[-1, :, 1] = NECK_BOTTOM_Y  # a flat cut
    oval_lifted = SKULL_CENTRE + surface_radius(inverse_azimuthal_map(oval_map))[:, None] * inverse_azimuthal_map(oval_map)
    column_start = np.empty((columns, 3))
    column_start[0::2] = face_vertices[oval]
    column_start[1::2] = (face_vertices[oval] + np.roll(face_vertices[oval], -1, axis=0)) / 2
    steps = np.linalg.norm(np.diff(np.concatenate([column_start[None], shell], axis=0), axis=0), axis=2)
    arc = np.cumsum(steps, axis=0)  # (rings, columns) cm from the face oval
    fade = np.exp(-((arc / SEAM_FADE_CM) ** 2))
    fade[-1] = 0.0  # the neck cut stays flat
    offset_oval = face_vertices[oval] - oval_lifted
    follow = np.zeros((NUM_RINGS, columns, k))
    follow[:, 0::2, :] = np.eye(k)[None] * fade[:, 0::2, None]
    follow[:, 1::2, :] = (np.eye(k) + np.roll(np.eye(k), 1, axis=1))[None] / 2 * fade[:, 1::2, None]
    shell = shell + np.einsum("rck,kd->rcd", follow, offset_oval)
    shell = _add_ears(shell, fade)

    # Topology: face, strip oval -> ring 1, ring strips, neck cap.
    ring_ids = n_face + np.arange(NUM_RINGS * columns).reshape(NUM_RINGS, columns)
    cap_centre_id = n_face + NUM_RINGS * columns
    shell_faces = _shell_faces(np.asarray(oval), ring_ids)
    cap_faces = np.stack([np.full(columns, cap_centre_id), ring_ids[-1, (np.arange(columns) + 1) % columns], ring_ids[-1]], axis=1)
    vertices = np.concatenate([face_vertices, shell.reshape(-1, 3), [[0.0, NECK_BOTTOM_Y, NECK_CENTRE_Z]]])
    faces = np.concatenate([np.asarray(canonical.faces), shell_faces, cap_faces]).astype(np.int32)
    faces = _orient_outward(vertices, faces, len(canonical.faces))

    uvs, uv_faces = _layout_uvs(canonical, oval, faces, ring_ids, cap_centre_id, len(canonical.faces) + len(shell_faces))
    shell_follow = np.zeros((len(vertices), k), dtype=np.float32)
    shell_follow[n_face : n_face + NUM_RINGS * columns] = follow.reshape(-1, k)
    return HeadTemplate(
        vertices=vertices,
        faces=faces,
        uvs=uvs,
        uv_faces=uv_faces,
        boundary=np.asarray(oval, dtype=np.int64),
        shell_follow=shell_follow,
        mirror=mirror_map(vertices),
        hair=hair_prior(vertices, n_face),
        centre=SKULL_CENTRE.copy(),
        num_face_vertices=n_face,
    )


def boundary_loop(faces: np.ndarray) -> list[int]:
    """The single boundary loop of a disc-like mesh, following the faces' orientation."""
    faces = np.asarray(faces)
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edge_set = {tuple(e) for e in directed.tolist()}
    boundary = {a: b for a, b in directed.tolist() if (b, a) not in edge_set}
    if not boundary:
        raise ValueError("the mesh has no boundary.")
    start = min(boundary)
    loop = [start]
    while boundary[loop[-1]] != start:
        loop.append(boundary[loop[-1]])
        if len(loop) > len(boundary):
            raise ValueError("the boundary is not one simple loop.")
    if len(loop) != len(boundary):
        raise ValueError(f"the mesh has several boundary loops ({len(boundary)} boundary edges, loop of {len(loop)}).")
    return loop


def azimuthal_map(offsets: np.ndarray) -> np.ndarray:
    """Directions (any length) → 2D azimuthal equidistant map centred on the back of the head (-z)."""
    d = offsets / np.linalg.norm(offsets, axis=-1, keepdims=True)
    gamma = np.arccos(np.clip(-d[..., 2], -1.0, 1.0))
    beta = np.arctan2(d[..., 1], d[..., 0])
    return gamma[..., None] * np.stack([np.cos(beta), np.sin(beta)], axis=-1)


def inverse_azimuthal_map(points: np.ndarray) -> np.ndarray:
    gamma = np.linalg.norm(points, axis=-1)
    beta = np.arctan2(points[..., 1], points[..., 0])
    return np.stack([np.sin(gamma) * np.cos(beta), np.sin(gamma) * np.sin(beta), -np.cos(gamma)], axis=-1)


def surface_radius(directions: np.ndarray) -> np.ndarray:
    """Distance from the skull centre to the head surface along unit `directions`."""
    d = np.asarray(directions, dtype=np.float64)
    skull = 1.0 / np.sqrt(((d / SKULL_RADII) ** 2).sum(axis=-1))
    # Elliptic neck cylinder around x = 0, z = NECK_CENTRE_Z, below the skull centre only.
    rel_z = SKULL_CENTRE[2] - NECK_CENTRE_Z
    a = (d[..., 0] / NECK_RADII[0]) ** 2 + (d[..., 2] / NECK_RADII[1]) ** 2
    b = 2 * rel_z * d[..., 2] / NECK_RADII[1] ** 2
    c = (rel_z / NECK_RADII[1]) ** 2 - 1.0
    neck = (-b + np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * np.maximum(a, 1e-12))
    neck = np.where(d[..., 1] < 0, neck, 0.0)
    p = UNION_SHARPNESS
    return (skull**p + neck**p) ** (1.0 / p)


def mirror_map(vertices: np.ndarray, tolerance: float = 1e-3) -> np.ndarray:
    """Index of each vertex's mirror image across x = 0 (the template is built symmetric)."""
    reflected = vertices * np.array([-1.0, 1.0, 1.0])
    distance, index = cKDTree(vertices).query(reflected)
    if distance.max() > tolerance:
        raise RuntimeError(f"the head template is not mirror-symmetric (worst {distance.max():.4f} cm).")
    return index.astype(np.int32)


def hair_prior(vertices: np.ndarray, num_face_vertices: int) -> np.ndarray:
    """1 where a head is usually covered by hair: above the temples in front, above the ears at the
    sides, down to the nape at the back. The face itself is 0."""
    y, z = vertices[:, 1], vertices[:, 2]
    # Hairline height as a function of depth: temples and ear tops at ~4.5 cm, nape at ~-4 cm.
    hairline = np.interp(z, [-15.0, -12.5, -8.5, -3.0, 10.0], [-4.0, -3.0, 4.5, 4.5, 4.5])
    hair = np.clip((y - hairline) / 1.6 + 0.5, 0.0, 1.0)
    hair[:num_face_vertices] = 0.0
    return hair.astype(np.float32)


def _neck_ring(count: int) -> np.ndarray:
    angle = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack(
        [NECK_RADII[0] * np.cos(angle), np.full(count, NECK_BOTTOM_Y), NECK_CENTRE_Z + NECK_RADII[1] * np.sin(angle)], axis=1
    )


def _polar(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arctan2(points[:, 1], points[:, 0]), np.linalg.norm(points, axis=1)


def _is_cyclic_monotone(angles: np.ndarray) -> bool:
    steps = np.angle(np.exp(1j * np.diff(np.append(angles, angles[0]))))
    return bool(np.all(steps > 0) or np.all(steps < 0)) and abs(abs(steps.sum()) - 2 * np.pi) < 1e-6


def _add_ears(shell: np.ndarray, fade: np.ndarray) -> np.ndarray:
    """Push flat-topped bumps out of both sides of the head at ear height."""
    out = shell.copy()
    for side in (1.0, -1.0):
        dy = (shell[..., 1] - EAR_CENTRE[1]) / EAR_HALF_SIZE[0]
        dz = (shell[..., 2] - EAR_CENTRE[2]) / EAR_HALF_SIZE[1]
        bump = np.exp(-((dy**2 + dz**2) ** 2)) * (shell[..., 0] * side > 0) * (1 - fade)
        out[..., 0] += side * EAR_HEIGHT_CM * bump
    return out


def _shell_faces(oval: np.ndarray, ring_ids: np.ndarray) -> np.ndarray:
    k = len(oval)
    columns = ring_ids.shape[1]
    first = ring_ids[0]
    tris = []
    for i in range(k):
        b0, b1 = oval[i], oval[(i + 1) % k]
        r0, r1, r2 = first[2 * i], first[2 * i + 1], first[(2 * i + 2) % columns]
        tris += [(b0, r0, r1), (b0, r1, b1), (b1, r1, r2)]
    for ring in range(len(ring_ids) - 1):
        a, b = ring_ids[ring], ring_ids[ring + 1]
        a1, b1 = np.roll(a, -1), np.roll(b, -1)
        tris += list(zip(a, b, b1)) + list(zip(a, b1, a1))
    return np.asarray(tris, dtype=np.int64)


def _orient_outward(vertices: np.ndarray, faces: np.ndarray, num_face_triangles: int) -> np.ndarray:
    """Flip the added triangles when they run against the face's orientation (checked on a shared edge)."""
    face_edges = {tuple(e) for tri in faces[:num_face_triangles] for e in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0]))}
    added = faces[num_face_triangles:]
    tri = added[0]
    same_direction = any(e in face_edges for e in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])))
    if same_direction:  # a shared edge runs the same way in both: orientations disagree
        added = added[:, ::-1]
    return np.concatenate([faces[:num_face_triangles], added]).astype(np.int32)


def _layout_uvs(canonical, oval, faces, ring_ids, cap_centre_id, num_tube_triangles):
    """Per-vertex UVs for face + tube (one chart), per-corner UVs for the cap."""
    n_face = len(canonical.vertices)
    face_uv = UV_FACE_CENTRE + UV_FACE_SCALE * (np.asarray(canonical.uvs, dtype=np.float64) - 0.5)
    oval_uv = face_uv[oval]
    columns = ring_ids.shape[1]
    start = np.empty((columns, 2))
    start[0::2] = oval_uv
    start[1::2] = (oval_uv + np.roll(oval_uv, -1, axis=0)) / 2
    # Where the ray from the face's UV centre through each column start leaves the shell circle.
    direction = start - UV_FACE_CENTRE
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    rel = UV_FACE_CENTRE - UV_SHELL_CENTRE
    b = (direction * rel).sum(axis=1)
    reach = -b + np.sqrt(b * b - (rel @ rel - UV_SHELL_RADIUS**2))
    end = UV_FACE_CENTRE + reach[:, None] * direction
    t = np.linspace(0.0, 1.0, ring_ids.shape[0] + 1)[1:]
    ring_uv = start[None] + t[:, None, None] * (end - start)[None]

    vertex_uv = np.zeros((cap_centre_id + 1, 2))
    vertex_uv[:n_face] = face_uv
    vertex_uv[ring_ids.reshape(-1)] = ring_uv.reshape(-1, 2)
    vertex_uv[cap_centre_id] = UV_CAP_CENTRE
    uv_faces = faces.astype(np.int64).copy()
    # The cap: its own disc, with its rim corners given new UV entries.
    angle = -2 * np.pi * np.arange(columns) / columns  # runs like the tube seen from below
    cap_rim_uv = UV_CAP_CENTRE + UV_CAP_RADIUS * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    rim_index = {vid: len(vertex_uv) + c for c, vid in enumerate(ring_ids[-1])}
    cap = uv_faces[num_tube_triangles:]
    for corner in range(3):
        cap[:, corner] = [rim_index.get(v, v) for v in cap[:, corner]]
    uv_faces[num_tube_triangles:] = cap
    uvs = np.concatenate([vertex_uv, cap_rim_uv]).astype(np.float32)
    return uvs, uv_faces.astype(np.int32)
