"""View renderer: the canonical heads through the default backend, and the numba and GL backends checked
against the numpy reference (a different rasteriser) and against scenes whose right answer is known."""
import dataclasses

import cv2
import numpy as np
import pytest

from actors.align.warp import estimate_similarity
from actors.reconstruct3d.bake import TextureBaker
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.mesh import HeadMesh, HeadTextures, Material, MeshPart
from actors.reconstruct3d.render import (BACKGROUND, VIEW_YAWS, ViewRenderer, contact_sheet, head_framing, project,
                                         render_view, render_views, vertex_normals, yaw_label)
from actors.reconstruct3d.view_scene import AMBIENT, DIFFUSE, HALFWAY, LIGHT, specular_terms
from tests.actors.reconstruct3d.synthetic_heads import multipart_head

SIZE = 256
FAST = ["numba", "gl"]


@pytest.fixture(scope="module")
def renderers():
    """One renderer per backend for the whole module (the GL one keeps its context across tests)."""
    made = {name: ViewRenderer(SIZE, backend=name) for name in ("numba", "gl", "numpy")}
    yield made
    for renderer in made.values():
        renderer.close()


@pytest.fixture
def fast(request, renderers):
    renderer = renderers[request.param]
    if request.param == "gl":
        from actors.reconstruct3d.gl_render import GLUnavailableError

        try:
            renderer._started()
        except GLUnavailableError as exc:  # CI installs EGL (make system-deps); a bare machine may not have it
            pytest.skip(str(exc))
    return renderer


def backends(names=FAST):
    return pytest.mark.parametrize("fast", names, indirect=True)


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


# -- scenes with known answers ---------------------------------------------------------------------


def quad(z=0.0, half=0.05, facing=1):
    """Two triangles of a square at depth z, facing +z (facing=1) or -z; UV (0, 0) bottom-left, v up."""
    vertices = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    if facing < 0:
        faces = faces[:, ::-1].copy()
    return vertices, faces, np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)


def scene(pieces, materials, images=None, **extra):
    """A HeadMesh of (name, (vertices, faces, uvs)) pieces, one part (and material of the same name) each."""
    vertices, faces, uvs, parts, offset = [], [], [], [], 0
    for name, (v, f, uv) in pieces:
        parts.append(MeshPart(name, sum(len(x) for x in faces), sum(len(x) for x in faces) + len(f), name))
        vertices.append(v)
        faces.append(f + offset)
        uvs.append(uv)
        offset += len(v)
    vertices, faces, uvs = np.concatenate(vertices), np.concatenate(faces).astype(np.int32), np.concatenate(uvs)
    mesh = HeadMesh(vertices=vertices, faces=faces, image_points=np.zeros_like(vertices), landmark_nme=0.0,
                    engine="test", uvs=uvs, uv_faces=faces.copy(), parts=parts, **extra)
    return mesh, HeadTextures(images=images or {}, materials=materials)


def lit(rgb, material=Material()):
    """The shading model's colour (0–255) of a surface facing the camera (normal +z) with albedo `rgb`."""
    weight, exponent = specular_terms(material)
    highlight = 255.0 * weight * HALFWAY[2] ** exponent
    return np.clip(np.asarray(rgb, float) * (AMBIENT + DIFFUSE * LIGHT[2]) + highlight, 0, 255)


def flat(rgb, **fields):
    """An untextured material whose sRGB colour is `rgb` (0–255): its linear base colour."""
    srgb = np.asarray(rgb, float) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return Material(base_color=(*linear, fields.pop("alpha", 1.0)), **fields)


def centre_pixel(view):
    return view[SIZE // 2, SIZE // 2].astype(float)


# -- backends against the reference and against known answers --------------------------------------


@backends()
def test_fast_backends_agree_with_the_numpy_reference_on_canonical_heads(fast, renderers, heads):
    """Two rasterisers that share no code: geometry, framing, texture orientation and shading must match."""
    for mesh, texture, _ in heads.values():
        reference = renderers["numpy"].render_views(mesh, texture)
        for yaw, mine, theirs in zip(VIEW_YAWS, fast.render_views(mesh, texture), reference):
            difference = np.abs(mine.astype(int) - theirs.astype(int))
            assert difference.mean() < 1.5, (yaw, difference.mean())
            assert np.percentile(difference.max(axis=2), 99) < 40, yaw  # only silhouette pixels may differ much


@backends()
def test_fast_backends_agree_with_the_numpy_reference_on_a_multipart_head(fast, renderers):
    mesh, textures = multipart_head(rows=80, columns=90, texture_size=256)
    mesh.morph_weights = {"jawOpen": 0.6, "eyeBlinkRight": 1.0}
    reference = renderers["numpy"].render_views(mesh, textures, yaws=(-60, 0, 30))
    for mine, theirs in zip(fast.render_views(mesh, textures, yaws=(-60, 0, 30)), reference):
        assert np.abs(mine.astype(int) - theirs.astype(int)).mean() < 2.0


@backends()
def test_texture_appears_where_its_uvs_say_not_flipped(fast):
    """A red marker in the texture's top-left quarter (UV u < 0.5, v > 0.5) lands on the quad's top-left."""
    image = np.full((64, 64, 3), 200, np.uint8)
    image[:32, :32] = (220, 20, 20)
    mesh, textures = scene([("board", quad())], {"board": Material(texture="board")}, {"board": image})
    view = fast.render_views(mesh, textures, yaws=[0])[0].astype(int)
    corners = project(mesh.vertices, 0, SIZE, head_framing(mesh))[0]
    left, right = corners[:, 0].min(), corners[:, 0].max()
    top, bottom = corners[:, 1].min(), corners[:, 1].max()
    quarter = lambda fx, fy: view[int(top + fy * (bottom - top)), int(left + fx * (right - left))]  # noqa: E731
    red = lambda p: p[0] > 150 and p[1] < 60  # noqa: E731
    assert red(quarter(0.25, 0.25))
    assert not red(quarter(0.75, 0.25)) and not red(quarter(0.25, 0.75)) and not red(quarter(0.75, 0.75))


@backends()
def test_the_nearer_part_hides_the_farther_whatever_the_draw_order(fast):
    red, green = (200, 30, 30), (30, 200, 30)
    for near_first in (True, False):
        pieces = [("near", quad(z=0.01)), ("far", quad(z=-0.01))]
        mesh, textures = scene(pieces if near_first else pieces[::-1], {"near": flat(red), "far": flat(green)})
        pixel = centre_pixel(fast.render_views(mesh, textures, yaws=[0])[0])
        np.testing.assert_allclose(pixel, lit(red), atol=3)


@backends()
def test_eyes_show_through_the_openings_not_through_the_eyelids(fast):
    """Synthetic head with flat colours: eyeballs (blue) are bigger than the openings, so skin (green)
    covers their rims; a closed lid (eyeBlink) covers the ball; the tongue (red) is hidden by the teeth."""
    from tests.actors.reconstruct3d import synthetic_heads as heads_module

    mesh, textures = multipart_head(rows=90, columns=100, texture_size=64)
    colours = {"skin": (40, 160, 40), "eyes": (40, 40, 200), "teeth": (230, 230, 230), "tongue": (200, 30, 30)}
    materials = {name: flat(rgb) for name, rgb in colours.items()}
    materials["eyelashes"] = textures.materials["eyelashes"]
    textures = HeadTextures(images=textures.images, materials=materials)
    eyes = mesh.parts[1]
    eye = mesh.vertices[np.unique(mesh.faces[eyes.start:eyes.stop])]
    left_eye = eye[eye[:, 0] > 0]
    centre = (left_eye.min(axis=0) + left_eye.max(axis=0)) / 2
    radius = heads_module.EYEBALL_RADIUS
    framing = head_framing(mesh)

    def colour_at(view, point):
        x, y = project(np.array([point]), 0, SIZE, framing)[0][0]
        return view[int(y), int(x)].astype(int)

    def kind(pixel):
        return min(colours, key=lambda name: np.abs(lit(colours[name]) - pixel).sum())

    open_view = fast.render_views(mesh, textures, yaws=[0])[0]
    front = centre + np.array([0.0, 0.0, radius])
    assert kind(colour_at(open_view, front)) == "eyes"  # through the opening
    for offset in ([0.0, 0.85 * radius, 0.5 * radius], [0.0, -0.85 * radius, 0.5 * radius]):  # above and below it
        assert kind(colour_at(open_view, centre + np.array(offset))) == "skin"
    mouth = open_view[SIZE // 2:, SIZE // 3: 2 * SIZE // 3].reshape(-1, 3).astype(int)
    assert not any(kind(p) == "tongue" for p in mouth if p[0] > 150 and p[1] < 80)
    mesh.morph_weights = {"eyeBlinkLeft": 1.0}
    closed_view = fast.render_views(mesh, textures, yaws=[0], framing=framing)[0]
    blue = lambda view: ((view[..., 2].astype(int) - view[..., 1]) > 60).sum()  # noqa: E731
    right_half = lambda view: view[:, SIZE // 2:]  # noqa: E731  (the subject's left eye is on image right)
    assert blue(right_half(closed_view)) < 0.1 * blue(right_half(open_view))
    assert blue(closed_view[:, :SIZE // 2]) > 0.8 * blue(open_view[:, :SIZE // 2])  # the other eye stays open


@pytest.mark.parametrize("fast", ["numba", "gl"], indirect=True)
def test_silhouettes_are_anti_aliased(fast, renderers):
    """A flat square turned 30° in the image plane: its edge pixels take values between object and background."""
    vertices, faces, uvs = quad()
    angle = np.deg2rad(30)
    vertices = vertices @ np.array([[np.cos(angle), np.sin(angle), 0], [-np.sin(angle), np.cos(angle), 0], [0, 0, 1]], np.float32)
    mesh, textures = scene([("board", (vertices, faces, uvs))], {"board": flat((20, 20, 20))})
    view = fast.render_views(mesh, textures, yaws=[0])[0][..., 0].astype(int)
    inside, outside = int(lit((20, 20, 20))[0]), BACKGROUND[0]
    between = ((view > inside + 15) & (view < outside - 15)).sum()
    edge_length = 4 * 0.1 / (2 * head_framing(mesh)[1]) * SIZE * 0.94
    assert between > 0.5 * edge_length  # most edge pixels are blended
    if fast.backend_name == "gl":
        from actors.reconstruct3d.gl_render import GLViewRenderer

        aliased = GLViewRenderer(SIZE, samples=1)
        try:
            from actors.reconstruct3d.view_scene import as_textures, build_scene

            hard = aliased.render(build_scene(mesh, as_textures(textures)), [0])[0][..., 0].astype(int)
        finally:
            aliased.close()
        assert ((hard > inside + 15) & (hard < outside - 15)).sum() < 0.05 * edge_length  # the test can tell


@backends()
def test_alpha_mask_cuts_strands_out_of_a_part(fast):
    """Eyelash-style MASK material: transparent texels show the part behind, opaque ones the lash colour."""
    strands = np.zeros((16, 64, 4), np.uint8)
    strands[..., :3] = (10, 10, 10)
    strands[:, (np.arange(64) // 8) % 2 == 0, 3] = 255  # 8 bands, opaque on even ones
    backdrop = flat((230, 60, 60))
    for mode, expect_backdrop in (("MASK", True), ("OPAQUE", False)):
        mesh, textures = scene([("lashes", quad(z=0.01)), ("backdrop", quad(z=-0.01, half=0.06))],
                               {"lashes": Material(texture="lashes", alpha_mode=mode, double_sided=True),
                                "backdrop": backdrop}, {"lashes": strands})
        view = fast.render_views(mesh, textures, yaws=[0])[0].astype(int)
        corners = project(mesh.vertices[:4], 0, SIZE, head_framing(mesh))[0]
        left, right = corners[:, 0].min(), corners[:, 0].max()
        row = int(corners[:, 1].mean())
        band = lambda k: view[row, int(left + (k + 0.5) / 8 * (right - left))]  # noqa: E731
        for k in range(8):
            pixel = band(k)
            shows_backdrop = pixel[0] > 150 and pixel[1] < 100
            assert shows_backdrop == (expect_backdrop and k % 2 == 1), (mode, k, pixel)


@backends()
def test_blended_parts_composite_back_to_front(fast):
    white, red, blue = (240, 240, 240), (220, 20, 20), (20, 20, 220)
    expected = None
    for order in ((0, 1, 2), (2, 1, 0), (1, 0, 2)):
        pieces = [("wall", quad(z=-0.02, half=0.06)), ("blue", quad(z=0.0)), ("red", quad(z=0.01))]
        materials = {"wall": flat(white), "blue": flat(blue, alpha=0.5, alpha_mode="BLEND"),
                     "red": flat(red, alpha=0.5, alpha_mode="BLEND")}
        mesh, textures = scene([pieces[i] for i in order], materials)
        pixel = centre_pixel(fast.render_views(mesh, textures, yaws=[0])[0])
        under = 0.5 * lit(blue, materials["blue"]) + 0.5 * lit(white, materials["wall"])
        expected = 0.5 * lit(red, materials["red"]) + 0.5 * under
        np.testing.assert_allclose(pixel, expected, atol=3, err_msg=str(order))


@backends()
def test_an_untextured_mask_part_below_the_cutoff_is_cut_away(fast):
    for opacity, visible in ((0.3, False), (0.8, True)):
        mesh, textures = scene([("veil", quad(z=0.01)), ("wall", quad(z=-0.01, half=0.06))],
                               {"veil": flat((30, 30, 200), alpha=opacity, alpha_mode="MASK"), "wall": flat((230, 60, 60))})
        pixel = centre_pixel(fast.render_views(mesh, textures, yaws=[0])[0])
        np.testing.assert_allclose(pixel, lit((30, 30, 200) if visible else (230, 60, 60)), atol=3)


def test_without_numba_the_default_falls_back_to_numpy_with_one_warning(monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` now raises ImportError
    mesh, textures = scene([("board", quad())], {"board": flat((120, 180, 60))})
    renderer = ViewRenderer(64)
    with caplog.at_level("WARNING", logger="actors.reconstruct3d.render"):
        renderer.render_views(mesh, textures, yaws=[0])
        renderer.render_views(mesh, textures, yaws=[0])
    assert renderer.backend_name == "numpy"
    assert len([r for r in caplog.records if "numba is unavailable" in r.message]) == 1
    with pytest.raises(ImportError):
        ViewRenderer(64, backend="numba").render_views(mesh, textures, yaws=[0])


@backends()
def test_double_sided_parts_show_their_back_faces(fast):
    for double_sided in (False, True):
        mesh, textures = scene([("sheet", quad(facing=-1))], {"sheet": flat((200, 120, 40), double_sided=double_sided)})
        pixel = centre_pixel(fast.render_views(mesh, textures, yaws=[0])[0])
        if double_sided:
            np.testing.assert_allclose(pixel, lit((200, 120, 40), textures.materials["sheet"]), atol=3)
        else:
            np.testing.assert_allclose(pixel, BACKGROUND, atol=1)


@backends()
def test_morph_weights_are_applied_before_drawing(fast):
    mesh, textures = multipart_head(rows=80, columns=90, texture_size=256)
    framing = head_framing(mesh)
    neutral = fast.render_views(mesh, textures, yaws=[0, 60])
    mesh.morph_weights = {"jawOpen": 1.0}
    opened = fast.render_views(mesh, textures, yaws=[0, 60], framing=framing)
    baked = dataclasses.replace(mesh, vertices=mesh.vertices + mesh.morph_targets["jawOpen"], morph_weights={})
    expected = fast.render_views(baked, textures, yaws=[0, 60], framing=framing)
    for n, o, e in zip(neutral, opened, expected):
        assert (np.abs(o.astype(int) - n.astype(int)).max(axis=2) > 30).sum() > 200  # the chin moved
        assert np.abs(o.astype(int) - e.astype(int)).max() <= 2  # exactly the morphed shape, normals recomputed
    chin_rows = lambda view: np.flatnonzero(foreground(view).any(axis=1))[-1]  # noqa: E731
    assert chin_rows(opened[1]) > chin_rows(neutral[1])  # the jaw dropped: the profile reaches lower


@backends()
def test_yaw_turns_the_nose_to_image_right(fast, heads):
    mesh, texture, _ = heads["astronaut"]
    views = fast.render_views(mesh, texture, yaws=(-90, 90))
    framing = head_framing(mesh)
    for yaw, view in zip((-90, 90), views):
        nose = project(mesh.vertices[[4]], yaw, SIZE, framing)[0][0]
        columns = np.flatnonzero(foreground(view).any(axis=0))
        assert (nose[0] - (columns[0] + columns[-1]) / 2) * np.sign(yaw) > 0.25 * (columns[-1] - columns[0])


@backends()
def test_every_view_shares_one_framing(fast):
    """A sphere off the origin, turned about the framing centre's axis: the same disc in every view."""
    rows, columns = 40, 60
    polar, around = np.meshgrid(np.linspace(0, np.pi, rows), np.linspace(0, 2 * np.pi, columns + 1), indexing="ij")
    vertices = np.stack([np.sin(polar) * np.cos(around), np.cos(polar), np.sin(polar) * np.sin(around)], -1).reshape(-1, 3)
    vertices = (0.1 * vertices + np.array([0.3, -0.2, 0.1])).astype(np.float32)
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(columns), indexing="ij")
    a = (r * (columns + 1) + c).ravel()
    faces = np.concatenate([np.stack([a, a + columns + 2, a + 1], 1), np.stack([a, a + columns + 1, a + columns + 2], 1)])
    corners = vertices[faces]
    outward = (np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
               * (corners.mean(axis=1) - [0.3, -0.2, 0.1])).sum(axis=1)
    faces[outward < 0] = faces[outward < 0][:, ::-1]  # counter-clockwise seen from outside
    mesh, textures = scene([("ball", (vertices, faces.astype(np.int32), np.zeros((len(vertices), 2), np.float32)))],
                           {"ball": flat((90, 90, 160))})
    boxes = []
    for view in fast.render_views(mesh, textures):
        ys, xs = np.nonzero(foreground(view))
        boxes.append((xs.min(), xs.max(), ys.min(), ys.max()))
    assert np.ptp(np.array(boxes), axis=0).max() <= 1, boxes
    assert abs((boxes[0][0] + boxes[0][1]) / 2 - SIZE / 2) <= 1 and abs((boxes[0][2] + boxes[0][3]) / 2 - SIZE / 2) <= 1


# -- the GL backend's process rules ----------------------------------------------------------------


def _render_in_forked_child(renderer, mesh, textures):
    """What `renderer` draws (or the error it raises) in a child forked from this process."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)

    def child():
        try:
            writer.send(renderer.render_views(mesh, textures, yaws=[0])[0])
        except Exception as exc:  # sent back to the parent as the result
            writer.send(exc)

    process = context.Process(target=child)
    process.start()
    try:
        assert reader.poll(120), "the forked child neither rendered nor failed within 120 s"
        return reader.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()


@backends(["numba"])
def test_numba_renderer_works_after_fork(fast):
    mesh, textures = scene([("board", quad())], {"board": flat((120, 180, 60))})
    parent = fast.render_views(mesh, textures, yaws=[0])[0]
    np.testing.assert_array_equal(_render_in_forked_child(fast, mesh, textures), parent)


@backends(["gl"])
def test_gl_renderer_refuses_a_forked_context_and_restarts_when_pickled(fast):
    """A forked child inherits the parent's GL context, which cannot work there (drawing would hang): it must
    fail at once, saying what to do. A pickled renderer (how a Ray actor receives one) starts its own."""
    import pickle

    from actors.reconstruct3d.gl_render import GLUnavailableError

    mesh, textures = scene([("board", quad())], {"board": flat((120, 180, 60))})
    parent = fast.render_views(mesh, textures, yaws=[0])[0]
    result = _render_in_forked_child(fast, mesh, textures)
    assert isinstance(result, GLUnavailableError) and "spawn" in str(result), result
    clone = pickle.loads(pickle.dumps(fast))
    assert clone._backend._context is None
    np.testing.assert_array_equal(clone.render_views(mesh, textures, yaws=[0])[0], parent)
    clone.close()


def test_gl_without_a_device_fails_with_what_to_install():
    from actors.reconstruct3d.gl_render import GLUnavailableError

    renderer = ViewRenderer(64, backend="gl", device_index=97)
    mesh, textures = scene([("board", quad())], {"board": flat((120, 180, 60))})
    with pytest.raises(GLUnavailableError, match="libegl1 libegl-mesa0 libgl1-mesa-dri"):
        renderer.render_views(mesh, textures, yaws=[0])


# -- canonical heads through the default backend (what the 3D stage writes) -------------------------


def test_seven_views_all_show_a_head(heads):
    for mesh, texture, views in heads.values():
        assert len(views) == len(VIEW_YAWS) == 7
        for view in views:
            assert view.shape == (SIZE, SIZE, 3) and view.dtype == np.uint8
            assert 0.12 < foreground(view).mean() < 0.6  # the side views are not empty


def test_side_views_are_profiles(heads):
    mesh, _, views = heads["astronaut"]
    framing = head_framing(mesh)
    for yaw, view in ((90, views[-1]), (-90, views[0])):
        nose = project(mesh.vertices[[4]], yaw, SIZE, framing)[0][0]
        columns = np.flatnonzero(foreground(view).any(axis=0))
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
    plain = render_view(mesh, np.full_like(texture, 180), 0, size=SIZE)
    inside = foreground(plain)
    assert plain[inside].std() > 5  # Lambert shading varies over the surface
    assert np.abs(plain.astype(int) - views[3].astype(int))[inside].mean() > 10  # the texture shows


def test_vertex_normals_match_a_per_face_loop(heads):
    mesh = heads["astronaut"][0]
    expected = np.zeros((len(mesh.vertices), 3))
    for a, b, c in mesh.faces:
        expected[[a, b, c]] += np.cross(mesh.vertices[b] - mesh.vertices[a], mesh.vertices[c] - mesh.vertices[a])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(vertex_normals(mesh.vertices, mesh.faces), expected, atol=1e-5)


def test_contact_sheet_is_one_row(heads):
    _, _, views = heads["astronaut"]
    sheet = contact_sheet(views, [yaw_label(y) for y in VIEW_YAWS])
    assert sheet.shape == (SIZE, SIZE * 7, 3)
    np.testing.assert_array_equal(sheet[:SIZE // 2, SIZE:2 * SIZE], views[1][:SIZE // 2])  # labels sit at the bottom
    with pytest.raises(ValueError, match="labels"):
        contact_sheet(views, ["a"])
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([])


def test_inputs_are_checked(heads):
    mesh, texture, _ = heads["astronaut"]
    with pytest.raises(ValueError, match="no UVs"):
        render_view(dataclasses.replace(mesh, uvs=None, uv_faces=None), texture, 0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        render_view(mesh, texture[..., 0], 0)
    parted = dataclasses.replace(mesh, parts=[MeshPart("skin", 0, len(mesh.faces), "missing")])
    with pytest.raises(ValueError, match="material 'missing'"):
        render_views(parted, texture)
    with pytest.raises(ValueError, match="texture 'nowhere'"):
        render_views(mesh, HeadTextures(images={}, materials={"skin": Material(texture="nowhere")}))
    with pytest.raises(ValueError, match="backend"):
        ViewRenderer(backend="vulkan")
    with pytest.raises(ValueError, match="samples"):
        ViewRenderer(samples=3)


def test_masked_triangles_skip_the_alpha_test_only_where_every_sample_agrees():
    """`mask_classes` lets solid (or clear) MASK triangles skip the per-sample alpha test: on a finely
    tessellated hair-like cap (a solid crown, a clear rim and a ragged hairline between) the sample
    buffer must be exactly the one that tests every sample, at every mip level the views use."""
    from actors.reconstruct3d import numba_kernels as kernels
    from actors.reconstruct3d.numba_render import _MaterialTable
    from actors.reconstruct3d.view_scene import build_scene

    side = 24
    grid = np.stack(np.meshgrid(np.linspace(-0.06, 0.06, side), np.linspace(-0.06, 0.06, side)), axis=-1).reshape(-1, 2)
    vertices = np.concatenate([grid, 0.02 * np.cos(grid[:, :1] * 20)], axis=1).astype(np.float32)
    cells = np.arange(side * side).reshape(side, side)[:-1, :-1].reshape(-1)
    faces = np.concatenate([np.stack([cells, cells + 1, cells + side + 1], 1),
                            np.stack([cells, cells + side + 1, cells + side], 1)]).astype(np.int32)
    uvs = ((grid + 0.06) / 0.12).astype(np.float32)
    alpha = np.zeros((512, 512), np.uint8)
    rows, columns = np.mgrid[:512, :512]
    ragged = 160 + 48 * np.sin(columns / 12.0) + 24 * np.sign(np.sin(columns * 0.43))
    alpha[rows < ragged] = 255  # image row 0 is v = 1: the top of the cap is solid
    hair = np.zeros((512, 512, 4), np.uint8)
    hair[..., :3], hair[..., 3] = (90, 60, 30), alpha
    mesh, textures = scene([("hair", (vertices, faces, uvs)), ("wall", quad(z=-0.05, half=0.08))],
                           {"hair": Material(texture="hair", alpha_mode="MASK"), "wall": flat((200, 200, 200))},
                           {"hair": hair})
    classes_seen = set()
    for size in (64, 256, 512):  # small views read coarser mip levels
        built = build_scene(mesh, textures, head_framing(mesh))
        table = _MaterialTable(built)
        uv_faces = np.ascontiguousarray(built.uv_faces, np.int32)
        screen, camera = project(built.vertices, 0, size, built.framing)
        screen = np.ascontiguousarray(screen, np.float64)
        depth = np.ascontiguousarray(camera[:, 2], np.float32)
        normals = np.ascontiguousarray(built.normals, np.float32)
        records, areas, lod = kernels.setup(screen, np.ascontiguousarray(built.faces, np.int32), normals,
                                            np.ascontiguousarray(built.uvs, np.float32), uv_faces, table.per_face,
                                            table.texture, table.levels, table.level_count)
        classes = kernels.mask_classes(np.ascontiguousarray(built.uvs, np.float32), uv_faces, table.per_face,
                                       table.modes, table.texture, lod, table.pixels, table.levels)
        classes_seen |= set(np.unique(classes[table.per_face == 0]).tolist())
        arguments = (screen, depth, np.ascontiguousarray(built.faces, np.int32), areas, records, table.per_face,
                     table.modes, table.double_sided, table.texture, lod, table.pixels, table.levels, size)
        fast_ids, fast_depth = kernels.visibility(*arguments, classes)
        every_ids, every_depth = kernels.visibility(*arguments, np.zeros_like(classes))
        np.testing.assert_array_equal(fast_ids, every_ids)
        np.testing.assert_array_equal(fast_depth, every_depth)
        hair_samples = np.isin(fast_ids, np.flatnonzero(table.per_face == 0)).mean()
        wall_samples = np.isin(fast_ids, np.flatnonzero(table.per_face == 1)).mean()
        assert hair_samples > 0.03 and wall_samples > 0.3  # the cap is cut: its crown shows, the wall behind the rest
    assert classes_seen == {0, kernels.MASK_SOLID, kernels.MASK_CLEAR}
