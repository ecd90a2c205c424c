"""What a fitted MakeHuman head gets from its photo before baking: eye UVs that can carry an iris, and hair.

- Eye UVs. In MakeHuman's atlas an eyeball is a few dozen texels and its front cap (the iris) a
  handful, too few for an iris at any texture size. Each eyeball's corners are re-mapped to a disc of
  the eye image (`EYE_DISCS`: the head's right eye on the left half, its left eye on the right): a
  planar projection along the eye's forward axis (+z at rest), so the cornea gets most of the disc.
  The back of the ball maps onto the same disc; the lids always hide it.
- Hair (`hair`): a cap over the scalp when the photo shows hair above the forehead.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..mesh import HeadMesh
from .hair import measure_hair, with_hair
from .uv_regions import region_mask, vertex_region

EYES_PART = "eyes"
EYE_DISCS = ((0.25, 0.5), (0.75, 0.5))  # UV centres of the discs: the head's right eye (x < 0), then its left
EYE_DISC_RADIUS = 0.24  # in UV units


def dress(mesh: HeadMesh, face) -> HeadMesh:
    """`mesh` with planar eye UVs and, when the photo shows hair, a hair cap (see the module docstring)."""
    mesh = with_eye_uvs(mesh)
    return with_hair(mesh, vertex_region(mesh, region_mask("ears", 512)), measure_hair(face, mesh))


def eyeballs(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex ids of the eyes part, (2, 3) eyeball centres, (2,) radii), the head's right eye first.
    Centres and radii come from each ball's bounding box (MakeHuman's eyeballs are spheres)."""
    part = next(p for p in mesh.part_list() if p.name == EYES_PART)
    ids = np.unique(mesh.faces[part.faces])
    points = np.asarray(mesh.vertices, dtype=np.float64)[ids]
    centres, radii = [], []
    for side in (points[:, 0] < 0, points[:, 0] >= 0):
        ball = points[side]
        if not len(ball):
            raise ValueError("the eyes part must hold one eyeball on each side of x = 0.")
        centres.append((ball.min(axis=0) + ball.max(axis=0)) / 2)
        radii.append(float(np.ptp(ball, axis=0).mean()) / 2)
    return ids, np.array(centres), np.array(radii)


def with_eye_uvs(mesh: HeadMesh) -> HeadMesh:
    """`mesh` whose eye corners use new UVs: a planar projection of each ball into its disc."""
    part = next(p for p in mesh.part_list() if p.name == EYES_PART)
    _, centres, radii = eyeballs(mesh)
    corners = mesh.faces[part.faces]  # (E, 3) vertex ids
    unique, inverse = np.unique(corners, return_inverse=True)
    side = (np.asarray(mesh.vertices)[unique, 0] >= 0).astype(np.int64)
    offset = (np.asarray(mesh.vertices, dtype=np.float64)[unique] - centres[side])[:, :2] / radii[side, None]
    offset /= np.maximum(np.linalg.norm(offset, axis=1, keepdims=True), 1.0)  # onto the disc, however round the ball
    uvs = np.asarray(EYE_DISCS)[side] + EYE_DISC_RADIUS * offset  # v up, as the vertex's y
    uv_faces = mesh.uv_faces.copy()
    uv_faces[part.faces] = len(mesh.uvs) + inverse.reshape(-1, 3)
    return dataclasses.replace(mesh, uvs=np.concatenate([mesh.uvs, uvs]).astype(np.float32), uv_faces=uv_faces.astype(np.int32))
