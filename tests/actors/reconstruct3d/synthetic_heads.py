"""Synthetic multi-part heads for the renderer tests and `bench.reconstruct`, in the shape of the MakeHuman head.

`multipart_head()` builds a ~20k-vertex head: an ellipsoid skin with a nose, two eye openings and a
mouth opening, eyeballs sitting behind the openings (larger than them, so the skin hides their rims),
alpha-masked double-sided eyelash strips, teeth and a tongue inside the mouth, and 52 ARKit-named
morph targets (`jawOpen` drops the chin, `eyeBlinkLeft/Right` close the upper lids, the rest are small
smooth bumps). Parts: skin, eyes, eyelashes, teeth, tongue, each with its own material. Flat, known
colours make what is visible where easy to measure.
"""
from __future__ import annotations

import numpy as np

from actors.reconstruct3d.makehuman.expressions import ARKIT_NAMES
from actors.reconstruct3d.mesh import HeadMesh, HeadTextures, Material, MeshPart

RADII = np.array([0.075, 0.1, 0.09])  # skin ellipsoid half-axes, metres (x, y, z)
EYES = ((0.36, 0.12), (-0.36, 0.12))  # (longitude, latitude) of the subject's left (+x) and right eye openings
EYE_OPENING = (0.15, 0.065)  # half-axes of an eye opening in (longitude, latitude) radians
MOUTH, MOUTH_OPENING = (0.0, -0.42), (0.26, 0.05)
NOSE = (0.0, -0.12)  # longitude, latitude of the nose tip
EYEBALL_RADIUS = 0.0125
SKIN_RGB, EYE_WHITE, IRIS_RGB = (130, 92, 67), (235, 235, 228), (40, 90, 170)
LASH_RGB, TEETH_RGB, TONGUE_RGB = (20, 15, 12), (245, 240, 225), (200, 70, 80)


def multipart_head(rows: int = 126, columns: int = 140, texture_size: int = 1024) -> tuple[HeadMesh, HeadTextures]:
    """(HeadMesh, HeadTextures) of a synthetic five-part head; ~20k vertices at the default grid."""
    pieces = [
        ("skin", *_skin(rows, columns)),
        ("eyes", *_join([_sphere(_eye_centre(eye), EYEBALL_RADIUS, 24, 32) for eye in EYES])),
        ("eyelashes", *_join([_lash_strip(eye) for eye in EYES])),
        ("teeth", *_teeth()),
        ("tongue", *_sphere(np.array([0.0, -0.049, 0.038]), 0.014, 12, 20, squash=(1.0, 0.45, 1.0))),
    ]
    vertices, faces, uvs, parts = [], [], [], []
    offset = face_offset = 0
    for name, v, f, uv in pieces:
        vertices.append(v)
        faces.append(f + offset)
        uvs.append(uv)
        parts.append(MeshPart(name, face_offset, face_offset + len(f), name))
        offset += len(v)
        face_offset += len(f)
    vertices = np.concatenate(vertices).astype(np.float32)
    faces = np.concatenate(faces).astype(np.int32)
    uvs = np.concatenate(uvs).astype(np.float32)
    skin_count = len(pieces[0][1])
    mesh = HeadMesh(
        vertices=vertices, faces=faces, image_points=np.zeros_like(vertices), landmark_nme=0.0, engine="synthetic",
        uvs=uvs, uv_faces=faces.copy(), parts=parts, morph_targets=_morph_targets(vertices, skin_count),
    )
    return mesh, _textures(texture_size)


def _textures(size: int) -> HeadTextures:
    skin = np.empty((size, size, 3), np.uint8)
    skin[:] = SKIN_RGB
    rng = np.random.default_rng(0)
    skin = np.clip(skin + rng.normal(0, 3, skin.shape), 0, 255).astype(np.uint8)  # a little pore noise
    eye = np.empty((256, 256, 3), np.uint8)
    eye[:] = EYE_WHITE
    eye[:int(256 * 0.16)] = IRIS_RGB  # the sphere's front pole sits at v ≈ 1 (top rows): iris and pupil
    eye[:int(256 * 0.06)] = (10, 10, 10)
    lash = np.zeros((64, 256, 4), np.uint8)
    lash[..., :3] = LASH_RGB
    lash[:, (np.arange(256) // 4) % 2 == 0, 3] = 255  # strands: opaque 4-texel stripes, transparent between
    return HeadTextures(
        images={"skin": skin, "eyes": eye, "eyelashes": lash},
        materials={
            "skin": Material(texture="skin", roughness=0.8),
            "eyes": Material(texture="eyes", roughness=0.1),
            "eyelashes": Material(texture="eyelashes", alpha_mode="MASK", double_sided=True),
            "teeth": Material(base_color=(0.9, 0.87, 0.78, 1.0), roughness=0.4),
            "tongue": Material(base_color=(0.58, 0.06, 0.08, 1.0), roughness=0.6),
        },
    )


def _surface(longitude: np.ndarray, latitude: np.ndarray) -> np.ndarray:
    """Points on the skin ellipsoid (longitude 0 faces +z, grows toward +x), with the nose bump."""
    point = np.stack([np.cos(latitude) * np.sin(longitude), np.sin(latitude), np.cos(latitude) * np.cos(longitude)], axis=-1)
    point = point * RADII
    bump = np.exp(-(((longitude - NOSE[0]) / 0.11) ** 2 + ((latitude - NOSE[1]) / 0.16) ** 2))
    point[..., 2] += 0.022 * bump
    return point


def _skin(rows: int, columns: int):
    latitude = np.linspace(-np.pi / 2 * 0.97, np.pi / 2 * 0.97, rows)
    longitude = np.linspace(-np.pi, np.pi, columns + 1)
    lon, lat = np.meshgrid(longitude, latitude)
    vertices = _surface(lon, lat).reshape(-1, 3)
    uvs = np.stack([(lon + np.pi) / (2 * np.pi), (lat - latitude[0]) / (latitude[-1] - latitude[0])], axis=-1).reshape(-1, 2)
    faces = _grid_faces(rows, columns + 1)
    centre_lon = lon.reshape(-1)[faces].mean(axis=1)
    centre_lat = lat.reshape(-1)[faces].mean(axis=1)
    hole = np.zeros(len(faces), bool)
    for (c_lon, c_lat), (a, b) in [(eye, EYE_OPENING) for eye in EYES] + [(MOUTH, MOUTH_OPENING)]:
        hole |= ((centre_lon - c_lon) / a) ** 2 + ((centre_lat - c_lat) / b) ** 2 < 1.0
    return vertices, faces[~hole], uvs


def _grid_faces(rows: int, columns: int) -> np.ndarray:
    """Two counter-clockwise (seen from outside) triangles per cell of a rows × columns vertex grid."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(columns - 1), indexing="ij")
    a = (r * columns + c).reshape(-1)
    b, d, e = a + 1, a + columns, a + columns + 1
    return np.concatenate([np.stack([a, b, e], 1), np.stack([a, e, d], 1)])


def _outward(point: np.ndarray) -> np.ndarray:
    normal = point / RADII**2
    return normal / np.linalg.norm(normal)


def _eye_centre(eye) -> np.ndarray:
    """Eyeball centre: behind the opening, so the ball pokes 1.5 mm through it and stays under the skin elsewhere."""
    surface = _surface(np.array(eye[0]), np.array(eye[1]))
    return surface - _outward(surface) * (EYEBALL_RADIUS - 0.0015)


def _sphere(centre, radius, rows, columns, squash=(1.0, 1.0, 1.0)):
    """A UV sphere whose pole v = 1 faces +z (the front): (vertices, faces, uvs)."""
    polar = np.linspace(0, np.pi, rows)  # 0 at the front pole
    around = np.linspace(0, 2 * np.pi, columns + 1)
    p, a = np.meshgrid(polar, around, indexing="ij")
    local = np.stack([np.sin(p) * np.cos(a), np.sin(p) * np.sin(a), np.cos(p)], axis=-1).reshape(-1, 3)
    vertices = centre + radius * local * np.asarray(squash)
    uvs = np.stack([a / (2 * np.pi), 1.0 - p / np.pi], axis=-1).reshape(-1, 2)
    faces = _grid_faces(rows, columns + 1)[:, [0, 2, 1]]  # this grid runs clockwise from outside: flip
    return vertices, faces, uvs


def _lash_strip(eye, count: int = 40):
    """A double-sided strip along the upper rim of an eye opening, leaning out and up."""
    t = np.linspace(-1.0, 1.0, count)
    lon = eye[0] + EYE_OPENING[0] * 1.05 * t
    lat = eye[1] + EYE_OPENING[1] * np.sqrt(np.clip(1 - t**2, 0, 1)) * 1.05
    root = _surface(lon, lat)
    normal = np.stack([_outward(point) for point in root])
    tip = root + normal * 0.005 + np.array([0.0, 0.004, 0.0])
    vertices = np.concatenate([root, tip])
    uvs = np.concatenate([np.stack([(t + 1) / 2, np.zeros(count)], 1), np.stack([(t + 1) / 2, np.ones(count)], 1)])
    i = np.arange(count - 1)
    faces = np.concatenate([np.stack([i, i + 1, count + i + 1], 1), np.stack([i, count + i + 1, count + i], 1)])
    return vertices, faces, uvs


def _teeth(count: int = 48, rows: int = 6):
    """An arc of a vertical cylinder behind the mouth opening, facing out, taller than the opening."""
    angle = np.linspace(-0.9, 0.9, count)
    height = np.linspace(-0.016, 0.004, rows) - 0.038
    a, h = np.meshgrid(angle, height, indexing="ij")
    radius = 0.058
    vertices = np.stack([radius * np.sin(a), h, radius * np.cos(a) + 0.0], axis=-1).reshape(-1, 3)
    uvs = np.stack([(a + 0.9) / 1.8, (h - h.min()) / np.ptp(h)], axis=-1).reshape(-1, 2)
    faces = _grid_faces(count, rows)[:, [0, 2, 1]]
    return vertices, faces, uvs


def _join(pieces):
    vertices, faces, uvs, offset = [], [], [], 0
    for v, f, uv in pieces:
        vertices.append(v)
        faces.append(f + offset)
        uvs.append(uv)
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(uvs)


def _morph_targets(vertices: np.ndarray, skin_count: int) -> dict[str, np.ndarray]:
    """52 ARKit-named (V, 3) offsets on the skin: jaw and blinks as real motions, the rest small bumps."""
    skin = vertices[:skin_count].astype(np.float64)
    lon = np.arctan2(skin[:, 0] / RADII[0], skin[:, 2] / RADII[2])
    lat = np.arcsin(np.clip(skin[:, 1] / RADII[1], -1, 1))
    targets = {}
    rng = np.random.default_rng(52)
    for name in ARKIT_NAMES:
        offsets = np.zeros_like(vertices)
        if name == "jawOpen":  # lower face drops, most at the chin, fading toward the ears
            below = np.clip((MOUTH[1] - lat) / 0.3, 0, 1) * np.exp(-(lon / 0.9) ** 2) * (np.abs(lon) < 1.6)
            below = np.where(lat < MOUTH[1], np.maximum(below, 0.35 * np.exp(-(lon / 0.3) ** 2)), 0.0)
            offsets[:skin_count, 1] = -0.018 * below
        elif name in ("eyeBlinkLeft", "eyeBlinkRight"):  # the upper lid slides down to the lower rim, out over the ball
            eye = EYES[0] if name.endswith("Left") else EYES[1]
            d_lon, d_lat = (lon - eye[0]) / EYE_OPENING[0], (lat - eye[1]) / EYE_OPENING[1]
            rim = np.sqrt(np.clip(1 - (d_lon / 1.2) ** 2, 0, 1))  # the opening's upper rim height (widened: the hole is jagged)
            lid = (d_lat > -0.2) & (rim > 0) & (d_lat < 3)
            fall = np.clip((3 - d_lat) / 2, 0, 1) * rim
            closed = _surface(lon, lat - 2.3 * fall * EYE_OPENING[1])  # past the lower rim: the lid overlaps it
            push = closed / np.linalg.norm(closed, axis=1, keepdims=True) * 0.0026 * fall[:, None]
            offsets[:skin_count][lid] = (closed + push - skin)[lid]
        else:
            centre = rng.uniform([-0.8, -0.6], [0.8, 0.5])
            bump = np.exp(-(((lon - centre[0]) / 0.2) ** 2 + ((lat - centre[1]) / 0.2) ** 2))
            offsets[:skin_count] = (skin / np.linalg.norm(skin, axis=1, keepdims=True)) * 0.002 * bump[:, None]
        targets[name] = offsets.astype(np.float32)
    return targets
