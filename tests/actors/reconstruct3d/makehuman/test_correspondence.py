"""The shipped MediaPipe ↔ MakeHuman landmark correspondence."""
import numpy as np
import pytest

from actors.reconstruct3d.canonical import CanonicalMeshLoader
from actors.reconstruct3d.makehuman.assets import read_base_mesh
from actors.reconstruct3d.makehuman.build_correspondence import EYE_CONTOURS, FACE_OVAL, INNER_LIPS, IRIS, build
from actors.reconstruct3d.makehuman.correspondence import default_path, load_correspondence
from actors.reconstruct3d.makehuman.cut import cut_head
from actors.reconstruct3d.makehuman.model import default_human


@pytest.fixture(scope="module")
def points():
    """(478, 3) landmark points on MakeHuman's default human, cm."""
    human = default_human(read_base_mesh()) * 10.0
    return load_correspondence().evaluate(lambda ids: human[ids])


def test_shipped_file_is_small_and_valid():
    assert default_path().stat().st_size < 20_000
    correspondence = load_correspondence()
    correspondence.check_inputs(19158)


def test_landmarks_sit_on_the_right_parts():
    cut = cut_head(read_base_mesh())
    correspondence = load_correspondence()
    part_of_base = np.full(19158, -1)
    part_of_base[cut.base_vertex] = cut.vertex_part
    parts = part_of_base[correspondence.corners]
    irises = [i for ids in IRIS.values() for i in ids]
    assert (parts[irises] == 1).all()  # on the eyeballs
    assert (np.delete(parts, irises, axis=0) == 0).all()  # everything else on the skin


def test_the_canonical_face_fits_the_points_rigidly(points):
    """A second measurement: MediaPipe's own canonical mesh, moved by one similarity onto the 468
    surface points (Umeyama, computed here), is within a few millimetres of them everywhere that matters."""
    canonical = CanonicalMeshLoader().load().vertices.astype(np.float64)
    target = points[:468]
    mean_s, mean_t = canonical.mean(axis=0), target.mean(axis=0)
    u, sigma, vt = np.linalg.svd((target - mean_t).T @ (canonical - mean_s))
    rotation = u @ vt
    scale = sigma.sum() / ((canonical - mean_s) ** 2).sum()
    moved = scale * (canonical - mean_s) @ rotation.T + mean_t
    error = np.linalg.norm(moved - target, axis=1)
    assert 0.9 < scale < 1.2  # both in cm, a human face each
    assert np.median(error) < 0.3 and error.max() < 1.0  # cm
    contours = [i for ids in (*EYE_CONTOURS[-1], *EYE_CONTOURS[1], *INNER_LIPS) for i in ids]
    assert error[contours].mean() < 0.5  # the eye and lip rims: MakeHuman's eyes are narrower, not misplaced


def test_left_is_left_and_features_are_where_faces_have_them(points):
    assert points[473, 0] > 0 > points[468, 0]  # subject's left iris (473) at +x
    assert points[263, 0] > points[362, 0] > 0 > points[133, 0] > points[33, 0]  # eye corners, outer to inner
    assert points[1, 2] == pytest.approx(points[:468, 2].max(), abs=0.4)  # nose tip: the most forward point
    assert points[10, 1] > points[168, 1] > points[1, 1] > points[13, 1] > points[152, 1]  # forehead > nose > mouth > chin
    inter_ocular = np.linalg.norm(points[468] - points[473])
    assert 5.5 < inter_ocular < 7.0  # cm


@pytest.mark.slow
def test_the_build_is_reproducible(tmp_path):
    rebuilt = build()
    shipped = load_correspondence()
    np.testing.assert_array_equal(rebuilt.corners, shipped.corners)
    np.testing.assert_allclose(rebuilt.barycentric, shipped.barycentric, atol=1e-6)
    np.testing.assert_array_equal(rebuilt.weights, shipped.weights)


def test_contour_tables_match_mediapipe():
    """The build's hand-written contours are MediaPipe's own (`face_mesh_connections`)."""
    from mediapipe.python.solutions import face_mesh_connections as mp

    def edges(rims):
        return {frozenset(pair) for rim in rims for pair in zip(rim, rim[1:])}

    assert edges(EYE_CONTOURS[-1]) == {frozenset(e) for e in mp.FACEMESH_RIGHT_EYE}  # MediaPipe's "right": the subject's
    assert edges(EYE_CONTOURS[1]) == {frozenset(e) for e in mp.FACEMESH_LEFT_EYE}
    assert edges(INNER_LIPS) <= {frozenset(e) for e in mp.FACEMESH_LIPS}
    assert {i for e in mp.FACEMESH_FACE_OVAL for i in e} == set(FACE_OVAL)
    assert {i for e in mp.FACEMESH_LEFT_IRIS for i in e} == set(IRIS[1][1:])
