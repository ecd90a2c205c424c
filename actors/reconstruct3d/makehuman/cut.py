"""The head cut: head, neck and the start of the shoulders out of MakeHuman's whole-body base mesh.

Skin: the body quads above a curved "bust" surface y = y0 + a·x² (decimetres; low at the neck's
front and back, rising over the shoulders), so the cut crosses the collar bones at the centre and
the shoulders' tops at |x| ≈ 1.3 dm. A quad is kept when its four corners are above the surface;
the kept region's border vertices are then slid along their edges to the outside onto the surface
itself, so the bottom edge is one smooth curve instead of a staircase of quads. That slide is linear
in the base mesh (each border vertex is a fixed blend of itself and its outside neighbours), so the
cut is a sparse matrix `to_cut` (cut vertices × base vertices): shape targets and expression targets
go through the same matrix and the border follows every shape.

Then the helper meshes MakeHuman models inside the head, each its own part and material: eyeballs,
eyelashes, teeth (upper and lower) and tongue. Everything else (joint cubes, clothes and hair
helpers, the genital helper) never enters the cut. Quads are split along their 0-2 diagonal (into
0-1-2 and 0-2-3), the same split for positions and for UVs, keeping MakeHuman's UV layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from ..mesh import MeshPart
from .assets import BaseMesh

# (part name, material, base-mesh groups), in the order their triangles appear in HeadMesh.faces.
PART_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("skin", "skin", ("body",)),
    ("eyes", "eyes", ("helper-l-eye", "helper-r-eye")),
    ("eyelashes", "eyelashes", ("helper-l-eyelashes-1", "helper-l-eyelashes-2", "helper-r-eyelashes-1", "helper-r-eyelashes-2")),
    ("teeth", "teeth", ("helper-upper-teeth", "helper-lower-teeth")),
    ("tongue", "tongue", ("helper-tongue",)),
)
CUT_HEIGHT_DM = 4.85  # y of the bust surface at x = 0 (the clavicle joints sit at y ≈ 5.19)
CUT_CURVE_PER_DM = 0.45  # how fast the surface rises toward the shoulders (dm per dm²)


@dataclass(frozen=True)
class HeadCut:
    """Which base-mesh geometry makes the head, and how it is triangulated."""

    to_cut: scipy.sparse.csr_matrix  # (Vc, Vb): cut vertices = to_cut @ base vertices (rows sum to 1)
    base_vertex: np.ndarray  # (Vc,) int32: the base vertex each cut vertex comes from (before the border slide)
    faces: np.ndarray  # (F, 3) int32 into the cut vertices, counter-clockwise seen from outside
    uvs: np.ndarray  # (T, 2) float32, v up (MakeHuman's layout)
    uv_faces: np.ndarray  # (F, 3) int32 into `uvs`
    parts: tuple[MeshPart, ...]  # tile `faces` in PART_GROUPS order
    vertex_part: np.ndarray  # (Vc,) int8: index into `parts` of the part each vertex belongs to
    border: np.ndarray  # (B,) int32 cut vertices on the bottom edge (all on the bust surface), in order along it

    @property
    def num_vertices(self) -> int:
        return self.to_cut.shape[0]

    def part(self, name: str) -> MeshPart:
        return next(part for part in self.parts if part.name == name)


def bust_height(vertices: np.ndarray) -> np.ndarray:
    """Signed height above the bust surface (> 0: kept), decimetres."""
    return vertices[:, 1] - (CUT_HEIGHT_DM + CUT_CURVE_PER_DM * vertices[:, 0] ** 2)


def cut_head(base: BaseMesh) -> HeadCut:
    """Build the cut from the base mesh (~30 ms)."""
    height = bust_height(base.vertices)
    triangles, uv_triangles = [], []
    for name, _, groups in PART_GROUPS:
        quads = base.group_quads(*groups)
        if len(quads) == 0:
            raise ValueError(f"the base mesh has no quads in {groups}: not MakeHuman's hm08 mesh.")
        faces, uv_faces = _split_quads(base.quads[quads]), _split_quads(base.uv_quads[quads])
        if name == "skin":
            faces, uv_faces = faces[(height[faces] > 0).any(axis=1)], uv_faces[(height[faces] > 0).any(axis=1)]
        triangles.append(faces)
        uv_triangles.append(uv_faces)

    clipper = _Clipper(base, height)
    triangles[0], uv_triangles[0] = clipper.clip(triangles[0], uv_triangles[0])

    # Cut vertices: each part's vertices in first-use order, parts one after another; the clipped
    # border's new vertices (ids ≥ Vb in `triangles`) come among the skin's.
    order = np.concatenate([faces.ravel() for faces in triangles])
    _, first = np.unique(order, return_index=True)
    source = order[np.sort(first)]
    to_local = np.full(clipper.count + len(clipper.blends), -1, dtype=np.int64)
    to_local[source] = np.arange(len(source))

    parts, start = [], 0
    vertex_part = np.zeros(len(source), dtype=np.int8)
    faces_out = []
    for index, ((name, material, _), faces) in enumerate(zip(PART_GROUPS, triangles)):
        faces = to_local[faces]
        faces_out.append(faces)
        vertex_part[np.unique(faces)] = index
        parts.append(MeshPart(name, start, start + len(faces), material))
        start += len(faces)
    used_uvs, uv_faces = np.unique(np.concatenate(uv_triangles), return_inverse=True)

    blends = np.asarray(clipper.blends, dtype=np.float64).reshape(-1, 3)
    is_new = source >= clipper.count
    new_rows = np.flatnonzero(is_new)
    new_blends = blends[source[is_new] - clipper.count]
    old_rows = np.flatnonzero(~is_new)
    rows = np.concatenate([old_rows, new_rows, new_rows])
    cols = np.concatenate([source[~is_new], new_blends[:, 0], new_blends[:, 1]]).astype(np.int64)
    values = np.concatenate([np.ones(len(old_rows)), 1.0 - new_blends[:, 2], new_blends[:, 2]])
    to_cut = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(len(source), len(base.vertices)))
    nearest = source.copy()
    nearest[is_new] = np.where(new_blends[:, 2] < 0.5, new_blends[:, 0], new_blends[:, 1])
    border = to_local[np.asarray(clipper.border_loop(triangles[0]), dtype=np.int64)].astype(np.int32)
    return HeadCut(
        to_cut=to_cut,
        base_vertex=nearest.astype(np.int32),
        faces=np.concatenate(faces_out).astype(np.int32),
        uvs=clipper.uvs[used_uvs].astype(np.float32),
        uv_faces=uv_faces.reshape(-1, 3).astype(np.int32),
        parts=tuple(parts),
        vertex_part=vertex_part,
        border=border,
    )


def _split_quads(quads: np.ndarray) -> np.ndarray:
    """Quads (Q, 4) → triangles (2Q, 3): 0-1-2 then 0-2-3 for each quad, in quad order."""
    return np.stack([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]], axis=1).reshape(-1, 3)


class _Clipper:
    """Clips triangles against the bust surface; new vertices sit where edges cross it.

    A new vertex is a blend (1 − t)·inside + t·outside of its edge's two base vertices; it gets the
    id Vb + k (k in creation order), shared by both triangles of the edge.
    """

    def __init__(self, base: BaseMesh, height: np.ndarray):
        self.count = len(base.vertices)
        self.height = height
        self.edge_vertex: dict[tuple[int, int], int] = {}
        self.blends: list[tuple[int, int, float]] = []  # new vertex k: (inside, outside, t)
        self.uv_list = [base.uvs.astype(np.float64)]
        self.edge_uv: dict[tuple[int, int], int] = {}
        self.num_uvs = len(base.uvs)

    @property
    def uvs(self) -> np.ndarray:
        return np.concatenate([self.uv_list[0], np.asarray(self.uv_list[1:]).reshape(-1, 2)])

    def clip(self, faces: np.ndarray, uv_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        whole = (self.height[faces] > 0).all(axis=1)
        kept_faces, kept_uvs = faces[whole].tolist(), uv_faces[whole].tolist()
        for corners, uv_corners in zip(faces[~whole].tolist(), uv_faces[~whole].tolist()):
            inside = [bool(self.height[v] > 0) for v in corners]
            turn = inside.index(True) if sum(inside) == 1 else inside.index(False) + 1
            a, b, c = corners[turn % 3], corners[(turn + 1) % 3], corners[(turn + 2) % 3]
            ua, ub, uc = uv_corners[turn % 3], uv_corners[(turn + 1) % 3], uv_corners[(turn + 2) % 3]
            if sum(inside) == 1:  # a inside: one smaller triangle
                kept_faces.append([a, self._cross(a, b), self._cross(a, c)])
                kept_uvs.append([ua, self._cross_uv(a, b, ua, ub), self._cross_uv(a, c, ua, uc)])
            else:  # a, b inside, c outside: a quad, two triangles
                bc, ca = self._cross(b, c), self._cross(a, c)
                ubc, uca = self._cross_uv(b, c, ub, uc), self._cross_uv(a, c, ua, uc)
                kept_faces += [[a, b, bc], [a, bc, ca]]
                kept_uvs += [[ua, ub, ubc], [ua, ubc, uca]]
        return np.asarray(kept_faces, dtype=np.int64), np.asarray(kept_uvs, dtype=np.int64)

    def _t(self, inside: int, outside: int) -> float:
        h_in, h_out = self.height[inside], self.height[outside]
        return float(h_in / (h_in - h_out))

    def _cross(self, inside: int, outside: int) -> int:
        key = (inside, outside)
        if key not in self.edge_vertex:
            self.edge_vertex[key] = self.count + len(self.blends)
            self.blends.append((inside, outside, self._t(inside, outside)))
        return self.edge_vertex[key]

    def _cross_uv(self, inside: int, outside: int, uv_inside: int, uv_outside: int) -> int:
        key = (uv_inside, uv_outside)
        if key not in self.edge_uv:
            t = self._t(inside, outside)
            uvs = self.uv_list[0]
            self.uv_list.append((1.0 - t) * uvs[uv_inside] + t * uvs[uv_outside])
            self.edge_uv[key] = self.num_uvs + len(self.uv_list) - 2
        return self.edge_uv[key]

    def border_loop(self, faces: np.ndarray) -> list[int]:
        """The new (border) vertices in order along the cut, following the skin's open edges."""
        edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        edges = edges[(edges >= self.count).all(axis=1)]  # both ends on the cut
        if len(edges) == 0:
            return []
        key = np.sort(edges, axis=1)
        _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        following = dict(edges[counts[inverse.ravel()] == 1].tolist())  # open edges, in face order
        starts = set(following) - set(following.values())
        vertex = min(starts) if starts else min(following)
        loop = [vertex]
        while vertex in following and following[vertex] != loop[0] and len(loop) <= len(following):
            vertex = following[vertex]
            loop.append(vertex)
        return loop
