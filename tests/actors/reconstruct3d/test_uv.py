"""xatlas layouts for meshes without UVs."""
import dataclasses

import numpy as np
import pytest
import trimesh

from actors.reconstruct3d.bake import uv_raster
from actors.reconstruct3d.mesh import HeadMesh
from actors.reconstruct3d.uv import UVLayoutCache, ensure_uvs, generate_uvs


@pytest.fixture(scope="module")
def sphere():
    solid = trimesh.creation.icosphere(3, radius=0.1)
    return HeadMesh(
        vertices=solid.vertices.astype(np.float32), faces=solid.faces.astype(np.int32),
        image_points=np.zeros((len(solid.vertices), 3), np.float32), landmark_nme=0.0, engine="flame",
    )


def test_layout_is_per_corner_in_the_unit_square_without_overlap(sphere):
    uvs, uv_faces = generate_uvs(sphere.vertices, sphere.faces)
    assert uv_faces.shape == sphere.faces.shape
    assert (uvs >= 0).all() and (uvs <= 1).all()
    assert len(uvs) > len(sphere.vertices)  # a closed surface needs seams
    uv = uvs[uv_faces].astype(np.float64)
    area = np.abs((uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1]) - (uv[:, 1, 1] - uv[:, 0, 1]) * (uv[:, 2, 0] - uv[:, 0, 0])) / 2
    assert (area > 0).all()
    size = 2048
    covered = uv_raster(uvs, uv_faces, size).covered.sum() / size**2
    assert covered == pytest.approx(area.sum(), rel=0.03)  # overlapping charts would cover less


def test_ensure_uvs_keeps_existing_layouts(sphere):
    laid_out = ensure_uvs(sphere)
    assert laid_out is not sphere and laid_out.uvs is not None
    laid_out.check_inputs()
    assert ensure_uvs(laid_out) is laid_out


def test_cache_shares_one_layout_per_topology(sphere):
    cache = UVLayoutCache()
    first = ensure_uvs(sphere, cache)
    moved = dataclasses.replace(sphere, vertices=sphere.vertices * 1.1)
    second = ensure_uvs(moved, cache)
    assert second.uvs is first.uvs and second.uv_faces is first.uv_faces


def test_bad_input():
    with pytest.raises(ValueError, match="faces"):
        generate_uvs(np.zeros((3, 3)), np.zeros((0, 3), np.int32))
