"""Points on a triangle mesh: closest surface points and barycentric coordinates.

Used once, to build the landmark correspondence (`build_correspondence`); trimesh's own proximity
query needs `rtree`, which the project does not install, so candidates come from a k-d tree of
triangle centroids and trimesh's exact point–triangle routine picks the closest among them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurfacePoints:
    triangle: np.ndarray  # (N,) int: index into the faces queried
    barycentric: np.ndarray  # (N, 3) float64, rows sum to 1
    points: np.ndarray  # (N, 3) float64
    distance: np.ndarray  # (N,) float64


def closest_points(vertices: np.ndarray, faces: np.ndarray, queries: np.ndarray, candidates: int = 24) -> SurfacePoints:
    """The closest point of the surface (`vertices`, `faces`) to each query point."""
    import scipy.spatial
    import trimesh.triangles

    triangles = vertices[faces]
    tree = scipy.spatial.cKDTree(triangles.mean(axis=1))
    count = min(candidates, len(faces))
    _, nearby = tree.query(queries, k=count)
    nearby = nearby.reshape(len(queries), count)
    pairs = trimesh.triangles.closest_point(triangles[nearby.ravel()], np.repeat(queries, count, axis=0))
    distance = np.linalg.norm(pairs - np.repeat(queries, count, axis=0), axis=1).reshape(len(queries), count)
    best = distance.argmin(axis=1)
    triangle = nearby[np.arange(len(queries)), best]
    points = pairs.reshape(len(queries), count, 3)[np.arange(len(queries)), best]
    return SurfacePoints(triangle, barycentric(triangles[triangle], points), points, distance[np.arange(len(queries)), best])


def barycentric(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) barycentric coordinates of points on (N, 3, 3) triangles, clipped to the triangle."""
    import trimesh.triangles

    weights = trimesh.triangles.points_to_barycentric(triangles, points)
    weights = np.clip(weights, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)
