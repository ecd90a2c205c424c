"""Morph targets for glTF, kept sparse: the offsets a target moves, and the normal change it causes.

ARKit expression targets each move a small share of a head's vertices (MakeHuman's: 4-45%, 18% on
average), so everything here works on (target, vertex) pairs instead of (K, V, 3) arrays: on a
20k-vertex test head with 52 targets the whole GLB took ~230 ms with dense arrays, ~40 ms this way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse

from .export_inputs import face_normals_xyz, unit_rows


@dataclass(frozen=True)
class SparseTargets:
    """(V, 3) vectors of `count` targets as pairs sorted by target, then vertex; absent pairs are zero."""

    count: int
    target: np.ndarray  # (P,) int64
    vertex: np.ndarray  # (P,) int64
    values: np.ndarray  # (P, 3) float32

    @classmethod
    def from_dense(cls, arrays: Sequence[np.ndarray]) -> "SparseTargets":
        """The non-zero rows of each (V, 3) array."""
        targets, vertices, values = [], [], []
        for index, array in enumerate(arrays):
            array = np.asarray(array, dtype=np.float32)
            rows = np.flatnonzero((array[:, 0] != 0) | (array[:, 1] != 0) | (array[:, 2] != 0))
            targets.append(np.full(len(rows), index, dtype=np.int64))
            vertices.append(rows.astype(np.int64))
            values.append(array[rows])
        return cls(len(arrays), np.concatenate(targets), np.concatenate(vertices), np.concatenate(values).reshape(-1, 3))

    def starts(self) -> np.ndarray:
        """(count + 1,) offsets: target k's pairs are [starts[k], starts[k + 1])."""
        return np.searchsorted(self.target, np.arange(self.count + 1))

    def distribute(self, part_vertices: Sequence[np.ndarray], num_vertices: int) -> list["SparseTargets"]:
        """The same targets over each part's vertex list (`part_vertices[p]`: the ids here of part p's
        vertices, nondecreasing; a vertex split at a UV seam appears once per copy, and a vertex may
        be in several parts), each part's pairs sorted by target, then local index.

        One pass over the pairs for all parts (O(pairs + vertices), no search): every vertex's
        copies are listed once, each pair is expanded to its vertex's copies, and a stable partition
        by part keeps the order (within a part, local indices grow with vertex ids)."""
        part_of = np.concatenate([np.full(len(v), p, dtype=np.int16) for p, v in enumerate(part_vertices)])
        local_of = np.concatenate([np.arange(len(v)) for v in part_vertices])
        vertex_of = np.concatenate(part_vertices)
        by_vertex = np.argsort(vertex_of, kind="stable")
        part_of, local_of = part_of[by_vertex], local_of[by_vertex]
        copies = np.bincount(vertex_of, minlength=num_vertices)
        first = np.cumsum(copies) - copies  # where each vertex's copies start in the sorted lists
        counts = copies[self.vertex]
        pair = np.repeat(np.arange(len(self.vertex)), counts)
        copy = first[self.vertex][pair] + (np.arange(len(pair)) - np.repeat(np.cumsum(counts) - counts, counts))
        order = np.argsort(part_of[copy], kind="stable")  # radix sort on int16
        pair, copy = pair[order], copy[order]
        bounds = np.searchsorted(part_of[copy], np.arange(len(part_vertices) + 1))
        return [SparseTargets(self.count, self.target[pair[a:b]], local_of[copy[a:b]], self.values[pair[a:b]])
                for a, b in zip(bounds[:-1], bounds[1:])]


def normal_deltas(
    vertices: np.ndarray, faces: np.ndarray, offsets: SparseTargets, sums: np.ndarray, normals: np.ndarray
) -> SparseTargets:
    """Unit smooth normal of each target at full weight minus `normals`, where it changes.

    Only triangles with a moved corner change, so only those are recomputed: a vertex's new normal
    is its old sum of area-weighted face normals (`sums`, from `vertex_normal_sums`) plus the change
    of its moved triangles' normals. vertices (V, 3), faces (F, 3), normals (V, 3) = unit `sums`.
    (target, vertex) pairs are looked up through dense K*V index arrays: O(1) each, no sorting.
    """
    num_vertices, num_faces, count, num_pairs = len(vertices), len(faces), offsets.count, len(offsets.vertex)
    if num_pairs == 0:
        return offsets
    # (triangle, target) pairs with a moved corner: incidence (F x V) times moved (V x K).
    incidence = sparse.csr_matrix(
        (np.ones(3 * num_faces, np.float32), faces.reshape(-1), np.arange(0, 3 * num_faces + 1, 3)), shape=(num_faces, num_vertices))
    moved = sparse.csr_matrix((np.ones(num_pairs, np.float32), (offsets.vertex, offsets.target)), shape=(num_vertices, count))
    touched = (incidence @ moved).tocoo()
    corners = faces[touched.row].T  # (corner, A)
    corner_keys = touched.col.astype(np.int64) * num_vertices + corners  # (corner, A): target * V + vertex

    # Each corner's offset under its target (the zero row where the target does not move it).
    pair_of = np.full(count * num_vertices, num_pairs, dtype=np.int32)
    pair_of[offsets.target * num_vertices + offsets.vertex] = np.arange(num_pairs, dtype=np.int32)
    padded = np.concatenate([offsets.values, np.zeros((1, 3), np.float32)]).T  # (xyz, P + 1)
    before = np.asarray(vertices, dtype=np.float32).T[:, corners]  # (xyz, corner, A)
    change = face_normals_xyz(before + padded[:, pair_of[corner_keys]]) - face_normals_xyz(before)  # (xyz, A)

    # Sum the change per (target, vertex): the touched keys, ascending, numbered through the same array.
    touched_key = np.zeros(count * num_vertices, dtype=bool)
    touched_key[corner_keys] = True
    keys = np.flatnonzero(touched_key)
    slot = pair_of  # reused as scratch: key -> row of `keys`
    slot[keys] = np.arange(len(keys), dtype=np.int32)
    row = slot[corner_keys].reshape(-1)
    summed = np.stack([np.bincount(row, np.tile(change[c], 3), minlength=len(keys)) for c in range(3)], axis=1)
    which, vertex = np.divmod(keys, num_vertices)
    values = (unit_rows(sums[vertex] + summed) - normals[vertex]).astype(np.float32)
    return SparseTargets(count, which, vertex, values)
