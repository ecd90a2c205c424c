"""The vectorised scanline rasteriser."""
import numpy as np
import pytest

from actors.reconstruct3d.raster import rasterize

SQUARE = np.array([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0], [0.0, 8.0]])
TWO_TRIANGLES = np.array([[0, 1, 2], [0, 2, 3]])


def test_square_covered_once_and_barycentrics_reproduce_pixel_centres():
    raster = rasterize(SQUARE, TWO_TRIANGLES, 8, 8)
    assert raster.covered.all()
    ys, xs = np.mgrid[0:8, 0:8]
    corners = SQUARE[TWO_TRIANGLES[raster.triangle]]  # (8, 8, 3, 2)
    points = (raster.barycentric[..., None] * corners).sum(axis=2)
    np.testing.assert_allclose(points[..., 0], xs + 0.5, atol=1e-4)
    np.testing.assert_allclose(points[..., 1], ys + 0.5, atol=1e-4)
    np.testing.assert_allclose(raster.barycentric.sum(axis=2), 1.0, atol=1e-5)


def test_partial_coverage_matches_area():
    triangle = np.array([[0.0, 0.0], [64.0, 0.0], [0.0, 64.0]])
    raster = rasterize(triangle, np.array([[0, 1, 2]]), 64, 64)
    assert abs(raster.covered.sum() - 64 * 64 / 2) < 64 + 1  # the diagonal row of pixels is the only doubt
    assert raster.covered[0, 0] and not raster.covered[63, 63]


def test_nearest_triangle_wins_and_depth_is_interpolated():
    points = np.concatenate([SQUARE, SQUARE])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    depth = np.array([5.0] * 4 + [2.0] * 4)
    raster = rasterize(points, faces, 8, 8, depth=depth)
    assert set(np.unique(raster.triangle)) == {2, 3}
    np.testing.assert_allclose(raster.depth, 2.0)
    raster = rasterize(points, faces, 8, 8, depth=depth[::-1].copy())
    assert set(np.unique(raster.triangle)) == {0, 1}


def test_cull_by_winding():
    # On a y-down screen (0,0) -> (8,0) -> (8,8) runs clockwise as displayed.
    clockwise = np.array([[0, 1, 2]])
    assert not rasterize(SQUARE, clockwise, 8, 8, cull="cw").covered.any()
    assert rasterize(SQUARE, clockwise, 8, 8, cull="ccw").covered.any()
    assert rasterize(SQUARE, clockwise[:, ::-1], 8, 8, cull="cw").covered.any()


def test_clipped_at_the_border():
    big = np.array([[-100.0, -100.0], [300.0, -100.0], [-100.0, 300.0]])
    raster = rasterize(big, np.array([[0, 1, 2]]), 16, 16)
    assert raster.covered.all()


@pytest.mark.parametrize("points, faces, message", [
    (np.zeros((3, 3)), np.array([[0, 1, 2]]), "points"),
    (np.zeros((3, 2)), np.array([0, 1, 2]), "faces"),
])
def test_bad_shapes(points, faces, message):
    with pytest.raises(ValueError, match=message):
        rasterize(points, faces, 4, 4)
