"""A small rigged, morphing, multi-part head built in code, for the exporter and client tests.

Parts: "skin" (an ellipsoid head and an open neck tube, UVs with a seam at the back), "eyes" (two
spheres), "eyelashes" (thin strips, RGBA texture, alphaMode MASK, double-sided), "teeth" (upper and
lower arcs, untextured). A 5-joint skeleton (neck_01 → head → jaw, eye_l, eye_r) with skin weights
that blend neck→head and head→jaw, and the 52 ARKit blendshapes as morph targets: a handful move
vertices (jawOpen, smiles, blinks, browInnerUp, cheekPuff), the rest are all zero (`every_morph`
gives every target a small local bump instead, for benchmarks). Units: metres, +y up, +z toward
the camera, +x to the subject's left.

`skinned_positions` is an independent linear-blend-skinning implementation (from the glTF spec's
formulas, not the exporter's code) for checking what clients compute.
"""
from __future__ import annotations

import numpy as np

from actors.reconstruct3d.makehuman.expressions import ARKIT_NAMES
from actors.reconstruct3d.mesh import HeadMesh, HeadTextures, Material, MeshPart, Skin

JOINT_NAMES = ("neck_01", "head", "jaw", "eye_l", "eye_r")
JOINT_PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int32)
JOINT_POSITIONS = np.array([[0, -0.13, -0.01], [0, -0.07, -0.01], [0, -0.02, 0.0], [0.032, 0.02, 0.072], [-0.032, 0.02, 0.072]],
                           dtype=np.float32)
NECK, HEAD, JAW, EYE_L, EYE_R = range(5)
HEAD_CENTRE, HEAD_RADII = np.array([0.0, 0.0, 0.0]), np.array([0.075, 0.1, 0.085])
EYE_RADIUS = 0.0125
MOUTH_Y = -0.045
DEFAULT_WEIGHTS = {"jawOpen": 0.35, "mouthSmileLeft": 0.6, "mouthSmileRight": 0.55, "browInnerUp": 0.2, "eyeBlinkLeft": 0.1}
SKIN_RGB = np.array([160, 112, 78])  # a brown skin tone (between Monk 6 and 7)


def rigged_head(resolution: int = 24, every_morph: bool = False) -> tuple[HeadMesh, HeadTextures]:
    """(mesh, textures). `resolution` sets the head's rings (the sphere has 4/3 as many segments);
    the vertex count grows with its square (24: ~1.3k vertices, 96: ~17k)."""
    pieces = [
        ("skin", _ellipsoid(HEAD_CENTRE, HEAD_RADII, resolution, resolution * 4 // 3, uv_box=(0, 0.3, 1, 1))),
        ("skin", _neck(resolution * 4 // 3, uv_box=(0, 0, 1, 0.3))),
        ("eyes", _eye(+1, max(8, resolution // 2))),
        ("eyes", _eye(-1, max(8, resolution // 2))),
        ("eyelashes", _lashes(+1)),
        ("eyelashes", _lashes(-1)),
        ("teeth", _teeth(upper=True)),
        ("teeth", _teeth(upper=False)),
    ]
    vertices, faces, uvs, uv_faces, labels, parts = [], [], [], [], [], []
    offset = uv_offset = face_count = 0
    for index, (part, (v, f, t, tf)) in enumerate(pieces):
        vertices.append(v)
        faces.append(f + offset)
        uvs.append(t)
        uv_faces.append(tf + uv_offset)
        labels.append(np.full(len(v), index))
        offset, uv_offset = offset + len(v), uv_offset + len(t)
        if parts and parts[-1].name == part:
            parts[-1] = MeshPart(part, parts[-1].start, face_count + len(f), part)
        else:
            parts.append(MeshPart(part, face_count, face_count + len(f), part))
        face_count += len(f)
    vertices = np.concatenate(vertices).astype(np.float32)
    piece = np.concatenate(labels)
    names = [name for name, _ in pieces]
    mesh = HeadMesh(
        vertices=vertices,
        faces=np.concatenate(faces).astype(np.int32),
        image_points=np.zeros_like(vertices),
        landmark_nme=0.0,
        engine="test-rigged",
        uvs=np.concatenate(uvs).astype(np.float32),
        uv_faces=np.concatenate(uv_faces).astype(np.int32),
        parts=parts,
        skin=_skin(vertices, piece, names),
        morph_targets=_morphs(vertices, piece, names, every_morph),
        morph_weights=dict(DEFAULT_WEIGHTS),
    )
    mesh.check_inputs()
    return mesh, _textures()


def skinned_positions(mesh: HeadMesh, morph_weights: dict[str, float], rotations: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(V, 3) vertex positions after morphing and linear blend skinning with local joint `rotations`
    ((3, 3) matrices by joint name, applied after each joint's rest translation)."""
    skin = mesh.skin
    rotations = rotations or {}
    positions = mesh.vertices.astype(np.float64).copy()
    for name, weight in morph_weights.items():
        positions += weight * mesh.morph_targets[name]
    world = np.zeros((len(skin.joint_names), 4, 4))
    for j, name in enumerate(skin.joint_names):
        local = np.eye(4)
        parent = skin.parents[j]
        local[:3, 3] = skin.bind_positions[j] - (skin.bind_positions[parent] if parent >= 0 else 0)
        local[:3, :3] = rotations.get(name, np.eye(3))
        world[j] = (world[parent] if parent >= 0 else np.eye(4)) @ local
    inverse_bind = np.tile(np.eye(4), (len(world), 1, 1))
    inverse_bind[:, :3, 3] = -skin.bind_positions
    joint_matrices = world @ inverse_bind  # (J, 4, 4)
    blended = np.einsum("vk,vkij->vij", skin.weights, joint_matrices[skin.joints])
    homogeneous = np.concatenate([positions, np.ones((len(positions), 1))], axis=1)
    return np.einsum("vij,vj->vi", blended, homogeneous)[:, :3]


def rotation_x(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_y(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


# --- geometry ---------------------------------------------------------------------------------


def _grid(points: np.ndarray, uv_box: tuple[float, float, float, float], wrap: bool, outward: np.ndarray | None):
    """Triangulate a (rows, cols, 3) grid of points. wrap: the last column repeats the first (one
    vertex, two UVs: a seam). Rows whose points all coincide (poles) become one vertex. outward: a
    point inside the surface; triangles are wound counter-clockwise seen from outside."""
    rows, cols = points.shape[:2]
    ids = np.full((rows, cols), -1)
    vertices = []
    for r in range(rows):
        if np.allclose(points[r], points[r, :1]):
            ids[r] = len(vertices)
            vertices.append(points[r, 0])
            continue
        for c in range(cols):
            if wrap and c == cols - 1:
                ids[r, c] = ids[r, 0]
            else:
                ids[r, c] = len(vertices)
                vertices.append(points[r, c])
    u0, v0, u1, v1 = uv_box
    grid_u, grid_v = np.meshgrid(np.linspace(u0, u1, cols), np.linspace(v1, v0, rows))
    uvs = np.stack([grid_u.ravel(), grid_v.ravel()], axis=1)
    uv_ids = np.arange(rows * cols).reshape(rows, cols)
    faces, uv_faces = [], []
    for r in range(rows - 1):
        for c in range(cols - 1):
            quad = [(r, c), (r + 1, c), (r + 1, c + 1), (r, c + 1)]
            for tri in ((quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])):
                corner = [ids[p] for p in tri]
                if len(set(corner)) == 3:
                    faces.append(corner)
                    uv_faces.append([uv_ids[p] for p in tri])
    vertices, faces, uv_faces = np.array(vertices), np.array(faces), np.array(uv_faces)
    if outward is not None:
        corners = vertices[faces]
        normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        if np.sum(normals * (corners.mean(axis=1) - outward)) < 0:
            faces, uv_faces = faces[:, ::-1], uv_faces[:, ::-1]
    return vertices, faces, uvs, uv_faces


def _ellipsoid(centre, radii, rings: int, segments: int, uv_box):
    theta = np.linspace(0, np.pi, rings + 1)[:, None]
    phi = np.linspace(-np.pi, np.pi, segments + 1)[None, :]  # the seam (phi = ±pi) at the back
    unit = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi), np.sin(theta) * np.cos(phi)], axis=2)
    unit[0], unit[-1] = [0, 1, 0], [0, -1, 0]
    return _grid(centre + radii * unit, uv_box, wrap=True, outward=np.asarray(centre))


def _neck(segments: int, uv_box):
    heights = np.linspace(-0.06, -0.19, 6)[:, None]
    phi = np.linspace(-np.pi, np.pi, segments + 1)[None, :]
    radius = 0.05 + 0.004 * np.cos(phi)
    points = np.stack(np.broadcast_arrays(radius * np.sin(phi), heights, -0.012 + radius * np.cos(phi)), axis=2)
    vertices, faces, uvs, uv_faces = _grid(points, uv_box, wrap=True, outward=None)
    inside = np.array([0.0, vertices[:, 1].mean(), -0.012])
    centre_of_faces = vertices[faces].mean(axis=1)
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    radial = centre_of_faces - inside
    radial[:, 1] = 0
    if np.sum(normals * radial) < 0:
        faces, uv_faces = faces[:, ::-1], uv_faces[:, ::-1]
    return vertices, faces, uvs, uv_faces


def _eye(side: int, rings: int):
    centre = JOINT_POSITIONS[EYE_L if side > 0 else EYE_R].astype(np.float64)
    return _ellipsoid(centre, np.full(3, EYE_RADIUS), rings, rings * 4 // 3, uv_box=(0, 0, 1, 1))


def _lashes(side: int):
    eye = JOINT_POSITIONS[EYE_L if side > 0 else EYE_R].astype(np.float64)
    along = np.linspace(-1, 1, 9)[None, :]
    lift = np.linspace(0, 1, 3)[:, None]
    x = eye[0] + 0.014 * along + 0 * lift
    y = eye[1] + 0.009 + 0.004 * lift - 0.003 * along**2
    z = eye[2] + 0.009 + 0.004 * lift - 0.004 * along**2
    return _grid(np.stack([x, y, z], axis=2), (0, 0, 1, 1), wrap=False, outward=None)


def _teeth(upper: bool):
    angle = np.linspace(-0.9, 0.9, 10)[None, :]
    height = (np.array([0.0, 0.008]) if upper else np.array([-0.009, -0.001]))[:, None] + MOUTH_Y
    radius = 0.03
    points = np.stack(np.broadcast_arrays(radius * np.sin(angle), height, 0.04 + radius * np.cos(angle)), axis=2)
    points = points[::-1]  # rows top to bottom
    vertices, faces, uvs, uv_faces = _grid(points, (0, 0, 1, 1), wrap=False, outward=np.array([0.0, MOUTH_Y, 0.04]))
    return vertices, faces, uvs, uv_faces


# --- rig and morphs --------------------------------------------------------------------------


def _skin(vertices: np.ndarray, piece: np.ndarray, names: list[str]) -> Skin:
    joints = np.zeros((len(vertices), 4), dtype=np.uint16)
    weights = np.zeros((len(vertices), 4), dtype=np.float32)
    y, z = vertices[:, 1], vertices[:, 2]
    head_piece, neck_piece, lower_teeth = piece == 0, piece == 1, piece == 7
    # Neck: neck_01 at the bottom, head at the top.
    to_head = np.clip((y + 0.16) / 0.1, 0, 1)
    # Head: the lower front (the chin and lower lip) follows the jaw.
    to_jaw = np.clip((MOUTH_Y + 0.005 - y) / 0.03, 0, 1) * np.clip((z - 0.01) / 0.03, 0, 1)
    joints[:] = [HEAD, 0, 0, 0]
    weights[:] = [1, 0, 0, 0]
    joints[neck_piece] = [NECK, HEAD, 0, 0]
    weights[neck_piece] = np.stack([1 - to_head, to_head, 0 * y, 0 * y], axis=1)[neck_piece]
    joints[head_piece] = [HEAD, JAW, 0, 0]
    weights[head_piece] = np.stack([1 - to_jaw, to_jaw, 0 * y, 0 * y], axis=1)[head_piece]
    joints[lower_teeth] = [JAW, 0, 0, 0]
    for index, name in enumerate(names):
        if name == "eyes":
            side = EYE_L if vertices[piece == index, 0].mean() > 0 else EYE_R
            joints[piece == index] = [side, 0, 0, 0]
    return Skin(JOINT_NAMES, JOINT_PARENTS.copy(), JOINT_POSITIONS.copy(), joints, weights)


def _morphs(vertices: np.ndarray, piece: np.ndarray, names: list[str], every_morph: bool) -> dict[str, np.ndarray]:
    targets = {name: np.zeros_like(vertices) for name in ARKIT_NAMES}
    face_skin = (piece == 0) & (vertices[:, 2] > 0.02)
    front_z = HEAD_RADII[2] * 0.9

    def bump(centre, sigma, mask):
        distance = np.linalg.norm(vertices - np.asarray(centre), axis=1)
        weight = np.exp(-0.5 * (distance / sigma) ** 2) * mask
        weight[weight < 0.02] = 0.0  # local: vertices far away stay exactly still
        return weight[:, None]

    jaw = np.clip((MOUTH_Y + 0.005 - vertices[:, 1]) / 0.03, 0, 1) * face_skin + (piece == 7)
    targets["jawOpen"] = (jaw[:, None] * [0.0, -0.02, -0.004]).astype(np.float32)
    for side, name in ((1, "Left"), (-1, "Right")):
        corner = [side * 0.028, MOUTH_Y, front_z - 0.012]
        targets[f"mouthSmile{name}"] = (bump(corner, 0.012, face_skin) * [side * 0.004, 0.008, 0.0]).astype(np.float32)
        lashes = (piece == (4 if side > 0 else 5))[:, None]
        targets[f"eyeBlink{name}"] = (lashes * [0.0, -0.009, 0.002]).astype(np.float32)
        # The whole eyeball, its UV seam included (split copies must carry the same offset).
        eye = (piece == (2 if side > 0 else 3))[:, None]
        targets[f"eyeLookUp{name}"] = (eye * [0.0, 0.0015, 0.0]).astype(np.float32)
        cheek = [side * 0.05, -0.02, front_z - 0.03]
        targets["cheekPuff"] += (bump(cheek, 0.015, face_skin) * [side * 0.006, 0.0, 0.004]).astype(np.float32)
    targets["browInnerUp"] = (bump([0, 0.045, front_z], 0.015, face_skin) * [0.0, 0.006, 0.0]).astype(np.float32)
    if every_morph:
        rng = np.random.default_rng(7)
        for name in ARKIT_NAMES:
            if not targets[name].any():
                centre = [rng.uniform(-0.05, 0.05), rng.uniform(-0.06, 0.05), front_z]
                targets[name] = (bump(centre, 0.012, face_skin) * rng.uniform(-0.004, 0.004, 3)).astype(np.float32)
    return targets


# --- textures --------------------------------------------------------------------------------


def _textures() -> HeadTextures:
    return HeadTextures(
        images={"skin": _skin_image(256), "eyes": _eye_image(64), "eyelashes": _lash_image()},
        materials={
            "skin": Material(texture="skin", roughness=0.6),
            "eyes": Material(texture="eyes", roughness=0.2),
            "eyelashes": Material(texture="eyelashes", alpha_mode="MASK", double_sided=True),
            "teeth": Material(base_color=(0.85, 0.82, 0.72, 1.0), roughness=0.3),
        },
    )


def _skin_image(size: int) -> np.ndarray:
    """Skin tone with shading-free features painted where the head's UVs put them: dark hair on the
    top and back, brows, lips (so a render shows which way the face looks)."""
    u, v = np.meshgrid((np.arange(size) + 0.5) / size, 1 - (np.arange(size) + 0.5) / size)
    image = np.empty((size, size, 3))
    image[:] = SKIN_RGB
    on_head = v >= 0.3
    theta = (1 - (v - 0.3) / 0.7) * np.pi
    phi = (u - 0.5) * 2 * np.pi
    x = HEAD_RADII[0] * np.sin(theta) * np.sin(phi)
    y = HEAD_RADII[1] * np.cos(theta)
    z = HEAD_RADII[2] * np.sin(theta) * np.cos(phi)
    hair = on_head & ((y > 0.055) | ((z < -0.01) & (y > -0.03)))
    brows = on_head & (z > 0) & (np.abs(np.abs(x) - 0.032) < 0.013) & (np.abs(y - 0.042) < 0.004)
    lips = on_head & (z > 0) & (np.abs(x) < 0.028) & (np.abs(y - MOUTH_Y) < 0.007)
    image[hair] = [35, 28, 24]
    image[brows] = [45, 33, 28]
    image[lips] = [150, 70, 70]
    shade = 1 + 0.04 * np.sin(40 * u) * np.sin(40 * v)  # a faint pattern: texture filtering shows
    return np.clip(image * shade[..., None], 0, 255).astype(np.uint8)


def _eye_image(size: int) -> np.ndarray:
    u, v = np.meshgrid((np.arange(size) + 0.5) / size, 1 - (np.arange(size) + 0.5) / size)
    distance = np.hypot((u - 0.5) * 2, v - 0.5)  # the front of the eyeball is (0.5, 0.5)
    image = np.full((size, size, 3), 235, np.uint8)
    image[distance < 0.16] = [90, 55, 30]
    image[distance < 0.07] = [10, 10, 10]
    return image


def _lash_image() -> np.ndarray:
    image = np.zeros((16, 64, 4), np.uint8)
    image[..., :3] = 20
    image[:, ::3, 3] = 255  # strands, with transparent gaps between them
    return image
