"""View framing: a rigged head-and-shoulders mesh is framed on the head above the neck (the face fills
the view), a plain head keeps the whole-mesh framing."""
import numpy as np
import pytest

from actors.reconstruct3d.mesh import HeadTextures, Material
from actors.reconstruct3d.render import ViewRenderer, head_framing, portrait_framing

SIZE = 128


def flat_textures(mesh) -> HeadTextures:
    return HeadTextures(images={}, materials={part.material: Material(base_color=(0.6, 0.4, 0.3, 1.0)) for part in mesh.part_list()})


def foreground(view: np.ndarray) -> np.ndarray:
    return np.abs(view.astype(int) - 238).sum(axis=2) > 12


@pytest.fixture(scope="module")
def makehuman_head(aligned_faces):
    from actors.reconstruct3d.makehuman import MakeHumanHeadEngine

    engine = MakeHumanHeadEngine()
    try:
        return engine.reconstruct([aligned_faces["astronaut"]])[0]
    finally:
        engine.close()


def test_rigged_head_is_framed_above_the_neck(makehuman_head):
    mesh = makehuman_head
    centre, radius = portrait_framing(mesh)
    whole_centre, whole_radius = head_framing(mesh)
    assert radius < 0.75 * whole_radius  # tighter than the head-and-shoulders bounding sphere
    with ViewRenderer(SIZE) as renderer:
        front, side = (foreground(v) for v in renderer.render_views(mesh, flat_textures(mesh), yaws=(0, 90)))
        loose = foreground(renderer.render_views(mesh, flat_textures(mesh), yaws=(0,), framing=(whole_centre, whole_radius))[0])
    rows = np.flatnonzero(front.any(axis=1))
    assert rows[0] < 0.08 * SIZE and rows[-1] == SIZE - 1  # crown near the top, the neck runs out of the bottom
    assert front[-1].mean() < 0.6  # the bottom row is neck, not shoulders
    assert front.sum() > 1.8 * loose.sum()  # the head fills far more of the view
    columns = np.flatnonzero(side.any(axis=0))
    assert columns[0] > 0 and columns[-1] < SIZE - 1  # in profile, nose and back of the head both in frame


def test_unrigged_heads_keep_the_whole_mesh_framing(makehuman_head):
    plain = type(makehuman_head)(vertices=makehuman_head.vertices, faces=makehuman_head.faces,
                                 image_points=makehuman_head.image_points, landmark_nme=0.0, engine="test")
    centre, radius = portrait_framing(plain)
    expected_centre, expected_radius = head_framing(plain)
    np.testing.assert_allclose(centre, expected_centre)
    assert radius == pytest.approx(expected_radius)
