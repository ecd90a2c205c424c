"""UV texture baking: projection, mirroring, fill, padding."""
import dataclasses

import numpy as np
import pytest

from actors.reconstruct3d.bake import TextureBaker, bake_texture, push_pull
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.render import sample_texture
from actors.reconstruct3d.uv import ensure_uvs

SIZE = 512
# Frontal points of the face: forehead, nose bridge, nose tip, cheeks, chin, upper lip.
FRONTAL = [10, 151, 9, 168, 6, 197, 4, 50, 280, 199, 0, 18, 205, 425, 101, 330]


@pytest.fixture(scope="module")
def meshes(aligned_faces):
    engine = CanonicalHeadEngine()
    return {name: engine.reconstruct_one(face) for name, face in aligned_faces.items()}


def vertex_uvs(mesh, vertices):
    """A UV of each vertex (its first corner's)."""
    corner = {}
    for face, uv_face in zip(mesh.faces.tolist(), mesh.uv_faces.tolist()):
        for v, t in zip(face, uv_face):
            corner.setdefault(v, t)
    return mesh.uvs[[corner[v] for v in vertices]].astype(np.float64)


def gradient_image():
    ys, xs = np.mgrid[0:512, 0:512]
    return np.stack([xs // 2, ys // 2, np.full_like(xs, 128)], axis=2).astype(np.uint8)


def test_texels_show_the_photo_where_the_vertices_project(meshes):
    mesh = meshes["astronaut"]
    texture = bake_texture(mesh, gradient_image(), size=SIZE)
    colour = sample_texture(texture, vertex_uvs(mesh, FRONTAL))
    expected = mesh.image_points[FRONTAL, :2] / 2  # R = x / 2, G = y / 2
    np.testing.assert_allclose(colour[:, :2], expected, atol=4.0)


def test_hidden_side_is_mirrored(meshes, aligned_faces):
    mesh = meshes["astronaut"]
    mask = np.full((512, 512), 255, np.uint8)
    mask[:, 256:] = 0  # the photo's right half is "not the person": the subject's left cheek is unseen
    texture = bake_texture(mesh, gradient_image(), size=SIZE, mask=mask)
    mirror = mesh.params["mirror"]
    left_cheek = [v for v in (425, 411, 280, 352, 266) if mesh.image_points[v, 0] > 270]
    assert left_cheek
    colour = sample_texture(texture, vertex_uvs(mesh, left_cheek))
    mirrored_x = mesh.image_points[mirror[left_cheek], 0]
    np.testing.assert_allclose(colour[:, 0], mirrored_x / 2, atol=6.0)
    assert (colour[:, 0] < 128).all()  # taken from the image's left half


def test_background_never_reaches_the_texture(meshes, aligned_faces):
    face = aligned_faces["grace_hopper"]
    mesh = meshes["grace_hopper"]
    image = face.crop.copy()
    image[face.mask < 128] = (0, 255, 0)
    texture = bake_texture(mesh, image, size=SIZE, mask=face.mask, skin_mask=face.skin_mask)
    green = (texture[..., 1].astype(int) - np.maximum(texture[..., 0], texture[..., 2]).astype(int)) > 120
    assert green.mean() < 0.001


def test_unseen_head_takes_hair_and_skin_colours_from_the_photo(meshes, aligned_faces):
    face, mesh = aligned_faces["astronaut"], meshes["astronaut"]
    texture = TextureBaker(SIZE).bake(mesh, face.crop, face.mask, face.skin_mask)
    back_of_head = int(np.argmin(mesh.vertices[:, 2]))
    neck_bottom = int(np.argmin(mesh.vertices[:, 1]))
    back, neck = sample_texture(texture, vertex_uvs(mesh, [back_of_head, neck_bottom]))
    skin = np.median(face.crop[face.skin_mask], axis=0)
    assert np.abs(neck - skin).max() < 25
    # Hair: the person above the forehead in the photo.
    top = int(face.landmarks[10, 1])
    band = face.crop[max(top - 40, 0):top - 10, 200:312][face.mask[max(top - 40, 0):top - 10, 200:312] > 128]
    hair = np.median(band, axis=0)
    assert np.abs(back - hair).max() < 40
    assert np.abs(back - skin).max() > 30  # and the back of the head is not just skin


def test_face_region_matches_the_crop(meshes, aligned_faces):
    for name, mesh in meshes.items():
        face = aligned_faces[name]
        texture = TextureBaker(SIZE).bake(mesh, face.crop, face.mask, face.skin_mask)
        vertices = np.arange(468)
        baked = sample_texture(texture, vertex_uvs(mesh, vertices)).mean(axis=1)
        x, y = np.clip(mesh.image_points[vertices, :2].astype(int), 0, 511).T
        photo = face.crop[y, x].astype(np.float64).mean(axis=1)
        assert np.corrcoef(baked, photo)[0, 1] > 0.85


def test_every_texel_is_filled_and_deterministic(meshes, aligned_faces):
    face, mesh = aligned_faces["astronaut"], meshes["astronaut"]
    baker = TextureBaker(SIZE)
    first = baker.bake(mesh, face.crop, face.mask, face.skin_mask)
    again = baker.bake(mesh, face.crop, face.mask, face.skin_mask)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (SIZE, SIZE, 3) and first.dtype == np.uint8
    assert (first.reshape(-1, 3).max(axis=1) > 0).all()  # no black holes left between or beyond charts


def test_generic_mesh_without_hints(meshes):
    """A mesh with no engine hints and an xatlas layout (the FLAME path) bakes too."""
    mesh = meshes["astronaut"]
    bare = ensure_uvs(dataclasses.replace(mesh, uvs=None, uv_faces=None, params={}))
    texture = bake_texture(bare, gradient_image(), size=SIZE)
    colour = sample_texture(texture, vertex_uvs(bare, FRONTAL))
    np.testing.assert_allclose(colour[:, :2], bare.image_points[FRONTAL, :2] / 2, atol=4.0)


def test_push_pull_fills_holes_smoothly():
    values = np.zeros((64, 64, 1), np.float32)
    weights = np.zeros((64, 64), np.float32)
    values[:, :8], weights[:, :8] = 10.0, 1.0
    values[:, -8:], weights[:, -8:] = 30.0, 1.0
    filled = push_pull(values, weights)[..., 0]
    np.testing.assert_allclose(filled[:, :8], 10.0, atol=1e-4)
    middle = filled[32, 8:-8]
    assert (np.diff(middle) >= -1e-3).all() and 10 <= middle.min() and middle.max() <= 30


def test_bad_inputs(meshes, aligned_faces):
    mesh, face = meshes["astronaut"], aligned_faces["astronaut"]
    with pytest.raises(ValueError, match="texture size"):
        TextureBaker(300)
    with pytest.raises(ValueError, match="no UVs"):
        bake_texture(dataclasses.replace(mesh, uvs=None, uv_faces=None), face.crop, size=SIZE)
    with pytest.raises(ValueError, match="uint8 RGB"):
        bake_texture(mesh, face.crop.astype(np.float32), size=SIZE)
    with pytest.raises(ValueError, match="mask"):
        bake_texture(mesh, face.crop, size=SIZE, mask=face.mask[:100])
