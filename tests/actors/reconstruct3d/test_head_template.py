"""The closed head template around the canonical face."""
import numpy as np
import pytest
import trimesh

from actors.reconstruct3d.bake import uv_raster
from actors.reconstruct3d.canonical import CanonicalMeshLoader
from actors.reconstruct3d.head_template import boundary_loop, build_head_template


@pytest.fixture(scope="module")
def template():
    return build_head_template(CanonicalMeshLoader().load())


def test_closed_consistently_oriented_outward(template):
    mesh = trimesh.Trimesh(template.vertices, template.faces, process=False)
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.volume > 0  # outward normals
    assert mesh.euler_number == 2  # a sphere: no handles
    assert len(trimesh.graph.split(mesh, only_watertight=False)) == 1


def test_face_is_kept_and_head_proportions(template):
    canonical = CanonicalMeshLoader().load()
    np.testing.assert_array_equal(template.vertices[:468], canonical.vertices)
    np.testing.assert_array_equal(template.faces[:898], canonical.faces)
    low, high = template.vertices.min(axis=0), template.vertices.max(axis=0)
    width, height, depth = high - low
    assert 15 < width < 22  # cm, ears included
    assert 20 < depth < 26  # nose tip to the back of the skull
    assert high[1] > canonical.vertices[:, 1].max() + 3  # a crown above the forehead
    assert low[1] < canonical.vertices[:, 1].min() - 5  # a neck below the chin


def test_mirror_map_is_an_involution(template):
    mirror = template.mirror
    np.testing.assert_array_equal(mirror[mirror], np.arange(len(mirror)))
    np.testing.assert_allclose(template.vertices[mirror], template.vertices * [-1, 1, 1], atol=1e-6)


def test_uvs_in_unit_square_and_face_keeps_canonical_layout(template):
    assert (template.uvs >= 0).all() and (template.uvs <= 1).all()
    canonical = CanonicalMeshLoader().load()
    face_uv = template.uvs[template.uv_faces[:898]].reshape(-1, 2)
    original = canonical.uvs[canonical.faces].reshape(-1, 2)
    # An affine copy of the canonical layout (scaled and moved), not a new one.
    design = np.concatenate([original, np.ones((len(original), 1))], axis=1)
    solution, residual, *_ = np.linalg.lstsq(design, face_uv, rcond=None)
    np.testing.assert_allclose(design @ solution, face_uv, atol=1e-5)
    assert solution[0, 0] > 0 and solution[1, 1] > 0


def test_uv_triangles_do_not_overlap(template):
    uv = template.uvs[template.uv_faces].astype(np.float64)
    signed = (uv[:, 1, 0] - uv[:, 0, 0]) * (uv[:, 2, 1] - uv[:, 0, 1]) - (uv[:, 1, 1] - uv[:, 0, 1]) * (uv[:, 2, 0] - uv[:, 0, 0])
    assert (signed > 0).all()  # one orientation: no flipped triangles
    size = 2048
    covered = uv_raster(template.uvs, template.uv_faces, size).covered.sum() / size**2
    total = signed.sum() / 2
    assert covered == pytest.approx(total, rel=0.01)  # overlaps would cover less than the summed area


def test_hair_prior_on_top_and_back_not_on_face_or_neck(template):
    hair, v = template.hair, template.vertices
    assert (hair[:468] == 0).all()
    crown = np.argmax(v[:, 1])
    back = np.argmin(v[:, 2])
    neck_bottom = np.argmin(v[:, 1])
    assert hair[crown] == 1 and hair[back] == 1 and hair[neck_bottom] == 0


def test_follow_face_identity_and_seam(template):
    np.testing.assert_allclose(template.follow_face(template.vertices[:468]), template.vertices, atol=1e-9)
    moved = template.vertices[:468].copy()
    moved[template.boundary] += [0.0, 0.0, 1.0]  # push the face oval 1 cm forward
    head = template.follow_face(moved)
    # The shell follows at the seam and the change fades toward the back of the head.
    first_ring = template.faces[898:898 + 3 * len(template.boundary)]
    ring_vertices = np.setdiff1d(np.unique(first_ring), template.boundary)
    assert (head[ring_vertices, 2] - template.vertices[ring_vertices, 2]).mean() > 0.5
    back = np.argmin(template.vertices[:, 2])
    assert abs(head[back, 2] - template.vertices[back, 2]) < 0.05


def test_boundary_loop_rejects_closed_and_split_meshes():
    closed = trimesh.creation.icosphere(1)
    with pytest.raises(ValueError, match="no boundary"):
        boundary_loop(closed.faces)
    two = np.array([[0, 1, 2], [3, 4, 5]])
    with pytest.raises(ValueError, match="several boundary loops"):
        boundary_loop(two)
