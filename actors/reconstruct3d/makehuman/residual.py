"""A smooth per-vertex correction of the face after the shape-target fit (optional, on by default).

MakeHuman's ~120 face targets cannot follow every face: on the package photos they leave ~2% of the
inter-ocular distance of landmark error, mostly at the brows, the lips and the jaw line. What is
left after the target fit is spread over the face as a smooth displacement field D:

    minimise  Σ_l c_l·|B_l·D − r_l|²  +  μ·|L·D|²     over the face-region skin vertices,

with r_l the landmark's remaining error in the model frame (its camera-depth part scaled by
`depth_keep`: MediaPipe's depth is a learned guess), B_l its barycentric corners, c_l its trust, L
the skin's umbrella Laplacian (a stiff membrane: bumps cost more than smooth shifts) and D = 0
outside the region (skin within `radius` of a landmark), so the field fades out before the ears,
scalp and neck. The system matrix is the same for every face: it is factorised once (sparse LU)
and each face costs one solve with three right-hand sides.

The helper meshes follow the skin: each eyeball, each row of teeth and the tongue move rigidly by
the mean displacement of the skin around them; each eyelash vertex by that of its nearest skin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

RIGID_HELPERS = ("eyes", "teeth", "tongue")


@dataclass(frozen=True)
class ResidualSolver:
    region: np.ndarray  # (N,) mesh vertex ids that the field moves directly
    gather: scipy.sparse.csr_matrix  # (L, N) landmark barycentrics restricted to the region
    trust: np.ndarray  # (L,)
    spread: scipy.sparse.csr_matrix  # (Vc, N): every mesh vertex's displacement from the region's
    factor: object  # scipy.sparse.linalg.SuperLU of the system matrix

    def solve(self, residuals: np.ndarray) -> np.ndarray:
        """(B, L, 3) landmark residuals (metres, model frame) → (B, Vc, 3) vertex displacements."""
        batch = len(residuals)
        right = self.gather.T @ (self.trust[:, None, None] * residuals.transpose(1, 0, 2)).reshape(len(self.trust), -1)
        field = self.factor.solve(np.asarray(right)).reshape(len(self.region), batch, 3)
        moved = self.spread @ field.reshape(len(self.region), -1)
        return np.asarray(moved).reshape(-1, batch, 3).transpose(1, 0, 2)


def build_residual_solver(model, radius: float = 0.02, stiffness: float = 2.0) -> ResidualSolver:
    """Factorise the residual system for `model` (a `HeadModel`); radius in metres."""
    import scipy.spatial

    count = model.num_vertices
    rest = model.template[:count].astype(np.float64)
    part_names = [part.name for part in model.parts]
    part = np.asarray(part_names)[model.vertex_part]
    skin = np.flatnonzero(part == "skin")
    points = model.landmarks(model.template[:count])
    distance, _ = scipy.spatial.cKDTree(points).query(rest[skin])
    region = np.union1d(skin[distance < radius], np.unique(model.landmark_corners))
    index = np.full(count, -1, dtype=np.int64)
    index[region] = np.arange(len(region))

    corners = index[model.landmark_corners]
    rows = np.repeat(np.arange(len(corners)), 3)
    gather = scipy.sparse.csr_matrix((model.landmark_barycentric.ravel().astype(np.float64), (rows, corners.ravel())),
                                     shape=(len(corners), len(region)))

    skin_faces = model.faces[model.parts[part_names.index("skin")].faces]
    edges = np.concatenate([skin_faces[:, [0, 1]], skin_faces[:, [1, 2]], skin_faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    adjacency = scipy.sparse.csr_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
                                        shape=(count, count))
    degree = np.maximum(np.asarray(adjacency.sum(axis=1)).ravel(), 1.0)
    laplacian = (scipy.sparse.identity(count) - scipy.sparse.diags(1.0 / degree) @ adjacency).tocsr()
    laplacian = laplacian[np.flatnonzero(degree > 0)][:, region]  # every skin row; columns: the free vertices
    trust = model.landmark_weights.astype(np.float64)
    system = gather.T @ scipy.sparse.diags(trust) @ gather + stiffness * (laplacian.T @ laplacian)
    factor = scipy.sparse.linalg.splu(system.tocsc())
    return ResidualSolver(region, gather, trust, _spread(model, rest, part, region, index), factor)


def _spread(model, rest: np.ndarray, part: np.ndarray, region: np.ndarray, index: np.ndarray) -> scipy.sparse.csr_matrix:
    """(Vc, N): region vertices copy their own value; helpers follow the skin around them."""
    import scipy.sparse.csgraph
    import scipy.spatial

    count = len(rest)
    rows, cols, values = [region], [np.arange(len(region))], [np.ones(len(region))]
    tree = scipy.spatial.cKDTree(rest[region])
    helper_faces = model.faces[np.isin(model.vertex_part[model.faces[:, 0]], [i for i, p in enumerate(model.parts) if p.name in RIGID_HELPERS])]
    graph = scipy.sparse.csr_matrix((np.ones(3 * len(helper_faces)), (helper_faces.ravel(), np.roll(helper_faces, 1, axis=1).ravel())), shape=(count, count))
    _, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
    for name in RIGID_HELPERS:
        vertices = np.flatnonzero(part == name)
        for label in np.unique(component[vertices]):
            members = vertices[component[vertices] == label]
            near = np.unique(np.concatenate(tree.query_ball_point(rest[members], r=0.012)))
            if len(near) == 0:
                continue
            rows.append(np.repeat(members, len(near)))
            cols.append(np.tile(near, len(members)))
            values.append(np.full(len(members) * len(near), 1.0 / len(near)))
    lashes = np.flatnonzero(part == "eyelashes")
    _, nearest = tree.query(rest[lashes], k=3)
    rows.append(np.repeat(lashes, 3))
    cols.append(nearest.ravel())
    values.append(np.full(nearest.size, 1.0 / 3.0))
    return scipy.sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(count, len(region)))
