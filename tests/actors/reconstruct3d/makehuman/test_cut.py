"""The head cut: head, neck and shoulders' start, with eyes, lashes, teeth and tongue as their own parts."""
import json

import numpy as np
import pytest
import trimesh

from actors.reconstruct3d.makehuman.assets import mpfb_dir, read_base_mesh
from actors.reconstruct3d.makehuman.cut import bust_height, cut_head


@pytest.fixture(scope="module")
def cut():
    return cut_head(read_base_mesh())


@pytest.fixture(scope="module")
def positions(cut):
    return cut.to_cut @ read_base_mesh().vertices


def test_parts_tile_the_faces_with_their_materials(cut):
    names = [part.name for part in cut.parts]
    assert names == ["skin", "eyes", "eyelashes", "teeth", "tongue"]
    assert [part.material for part in cut.parts] == names
    assert cut.parts[0].start == 0 and cut.parts[-1].stop == len(cut.faces)
    assert all(a.stop == b.start for a, b in zip(cut.parts, cut.parts[1:]))
    assert cut.uv_faces.shape == cut.faces.shape and 0 <= cut.uvs.min() and cut.uvs.max() <= 1


def test_no_body_helper_geometry_leaks_in(cut):
    """Joint cubes, clothes, hair and genital helpers (by MakeHuman's own vertex groups) stay out."""
    groups = json.loads((mpfb_dir() / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    ranges = lambda name: np.concatenate([np.arange(a, b + 1) for a, b in groups[name]])  # noqa: E731
    used = np.unique(cut.to_cut.indices)
    for name in ("JointCubes", "helper-tights", "helper-skirt", "helper-hair", "helper-genital"):
        assert not np.isin(used, ranges(name)).any(), name
    for name in ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue"):
        assert np.isin(ranges(name), used).all(), name


def test_the_bottom_is_one_smooth_border_on_the_bust_surface(cut, positions):
    skin = cut.faces[cut.part("skin").faces]
    solid = trimesh.Trimesh(positions, skin, process=False)
    assert solid.is_winding_consistent
    edges = np.sort(solid.edges, axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    open_edges = unique[counts == 1]
    assert (counts <= 2).all()  # manifold
    # The only opening is the cut (no holes at the eyes or mouth), and it is one closed loop.
    assert set(np.unique(open_edges)) == set(cut.border.tolist())
    assert len(open_edges) == len(cut.border)
    assert np.abs(bust_height(positions[cut.border])).max() < 0.02  # dm: on the surface (edge-linear, 2 mm)
    assert len(np.unique(trimesh.graph.connected_component_labels(solid.face_adjacency))) == 1


def test_head_neck_and_shoulders_are_there(cut, positions):
    skin = np.unique(cut.faces[cut.part("skin").faces])
    top, bottom = positions[skin, 1].max(), positions[skin, 1].min()
    assert top > 8.4 and bottom < 4.9  # crown to below the collar bones (dm)
    width_at_shoulders = np.ptp(positions[skin][positions[skin, 1] < 5.4, 0])
    head = positions[skin][positions[skin, 1] > 7.0]
    assert width_at_shoulders > 2.0 and np.ptp(head[:, 0]) > 1.5  # ears included


def test_faces_point_outward(cut, positions):
    skin = cut.faces[cut.part("skin").faces]
    corners = positions[skin]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    nose = np.argmax(corners.mean(axis=1)[:, 2])
    assert normals[nose, 2] > 0
    eyes = cut.faces[cut.part("eyes").faces]
    ball = positions[eyes]
    outward = np.einsum("fd,fd->f", np.cross(ball[:, 1] - ball[:, 0], ball[:, 2] - ball[:, 0]),
                        ball.mean(axis=1) - np.where(ball.mean(axis=1)[:, :1] > 0, 1, -1) * np.array([0.308, 0, 0]) - [0, 7.284, 1.245])
    assert (outward > 0).mean() > 0.95
