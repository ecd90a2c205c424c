"""CPU renderer: 7 yaw views and the contact sheet."""
import cv2
import numpy as np
import pytest

from actors.align.warp import estimate_similarity
from actors.reconstruct3d.bake import TextureBaker
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.render import (BACKGROUND, VIEW_YAWS, contact_sheet, head_framing, project, render_view,
                                         render_views)

SIZE = 256


@pytest.fixture(scope="module")
def heads(aligned_faces):
    engine, baker = CanonicalHeadEngine(), TextureBaker(512)
    out = {}
    for name, face in aligned_faces.items():
        mesh = engine.reconstruct_one(face)
        texture = baker.bake(mesh, face.crop, face.mask, face.skin_mask)
        out[name] = (mesh, texture, render_views(mesh, texture, size=SIZE))
    return out


def foreground(view):
    return np.abs(view.astype(int) - np.array(BACKGROUND)).max(axis=2) > 6


def test_seven_views_all_show_a_head(heads):
    for mesh, texture, views in heads.values():
        assert len(views) == len(VIEW_YAWS) == 7
        for view in views:
            assert view.shape == (SIZE, SIZE, 3) and view.dtype == np.uint8
            assert 0.12 < foreground(view).mean() < 0.6  # the side views are not empty


def test_side_views_are_profiles(heads):
    """At +90 the nose points to image right, at -90 to image left; the profile is a head, not a sliver."""
    mesh, _, views = heads["astronaut"]
    framing = head_framing(mesh)
    for yaw, view in ((90, views[-1]), (-90, views[0])):
        nose = project(mesh.vertices[[4]], yaw, SIZE, framing)[0][0]
        columns = np.flatnonzero(foreground(view).any(axis=0))
        centre = (columns[0] + columns[-1]) / 2
        assert (nose[0] - centre) * np.sign(yaw) > 0.25 * (columns[-1] - columns[0])
        assert foreground(view)[int(nose[1]), int(np.clip(nose[0] - 2 * np.sign(yaw), 0, SIZE - 1))]
        assert columns[-1] - columns[0] > 0.5 * SIZE * 0.94 * 0.8  # deep as a head, not flat as a mask


def _front_correlation(mesh, view, face):
    """Correlation of the front view and the aligned crop over the face, the crop warped onto the view."""
    framing = head_framing(mesh)
    projected = project(mesh.vertices[:468], 0, SIZE, framing)[0]
    matrix = estimate_similarity(face.landmarks[:468, :2], projected)
    warped = cv2.warpAffine(face.crop, matrix, (SIZE, SIZE), flags=cv2.INTER_AREA)
    region = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(projected.astype(np.int32)), 1)
    region = cv2.erode(region, np.ones((9, 9), np.uint8)).astype(bool)
    a = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY)[region].astype(float)
    b = cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY)[region].astype(float)
    return np.corrcoef(a, b)[0, 1]


def test_front_view_looks_like_the_person(heads, aligned_faces):
    for name, (mesh, _, views) in heads.items():
        own = _front_correlation(mesh, views[VIEW_YAWS.index(0)], aligned_faces[name])
        other = _front_correlation(mesh, views[VIEW_YAWS.index(0)],
                                   aligned_faces["grace_hopper" if name == "astronaut" else "astronaut"])
        assert own > 0.7, (name, own)
        assert own > other + 0.3, (name, own, other)


def test_shading_and_texture_change_the_image(heads):
    mesh, texture, views = heads["grace_hopper"]
    flat = np.full_like(texture, 180)
    plain = render_view(mesh, flat, 0, size=SIZE)
    inside = foreground(plain)
    assert plain[inside].std() > 5  # Lambert shading varies over the surface
    assert np.abs(plain.astype(int) - views[3].astype(int))[inside].mean() > 10  # the texture shows


def test_contact_sheet_is_one_row(heads):
    _, _, views = heads["astronaut"]
    sheet = contact_sheet(views, [str(y) for y in VIEW_YAWS])
    assert sheet.shape == (SIZE, SIZE * 7, 3)
    np.testing.assert_array_equal(sheet[:SIZE // 2, SIZE:2 * SIZE], views[1][:SIZE // 2])  # labels sit at the bottom
    with pytest.raises(ValueError, match="labels"):
        contact_sheet(views, ["a"])
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])


def test_render_needs_uvs_and_an_rgb_texture(heads):
    import dataclasses

    mesh, texture, _ = heads["astronaut"]
    with pytest.raises(ValueError, match="no UVs"):
        render_view(dataclasses.replace(mesh, uvs=None, uv_faces=None), texture, 0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_view(mesh, texture[..., 0], 0)
