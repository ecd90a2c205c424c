"""End to end: the 3D stage with the default (makehuman) engine on the package photos writes a valid,
rigged, textured GLB, the OBJ set, the views, and a fit within 2 % of the inter-ocular distance."""
import cv2
import numpy as np
import pytest

from actors.reconstruct3d.registry import HEAD_ENGINES
from actors.reconstruct3d.stage import Reconstruct3DStage
from actors.request import AvatarRequest
from actors.stage_results import Head3D
from tests.actors.reconstruct3d.gltf_validator import validate

VIEW = 160


@pytest.fixture(scope="module")
def heads(aligned_faces, tmp_path_factory):
    engine = HEAD_ENGINES[HEAD_ENGINES.default]()
    stage = Reconstruct3DStage(AvatarRequest(modes=("3d",)), engine, view_size=VIEW)
    out = tmp_path_factory.mktemp("heads")
    names = sorted(aligned_faces)
    try:
        return dict(zip(names, stage.run([aligned_faces[n] for n in names], names, [out / n for n in names])))
    finally:
        stage.close()
        engine.close()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_default_engine_writes_a_valid_textured_rigged_head(heads, name):
    head = heads[name]
    assert isinstance(head, Head3D), head
    assert head.head_engine == "makehuman" and head.nme <= 0.02
    report = validate(head.glb_path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    folder = head.glb_path.parent
    assert cv2.imread(str(head.texture_path), cv2.IMREAD_UNCHANGED).shape == (1024, 1024, 4)  # the request's default size
    assert (folder / "head_eyes.png").is_file()
    mtl = (folder / "head.mtl").read_text()
    assert "newmtl eyelashes" in mtl and "map_d" in mtl  # the lashes' alpha travels with the OBJ too
    sheet = cv2.imread(str(head.views_path))
    assert sheet.shape == (VIEW // 2, VIEW // 2 * 7, 3)  # the overview sheet: half-size tiles
    front = cv2.imread(str(folder / "view_0.png")).astype(int)
    assert front.shape == (VIEW, VIEW, 3)  # the views themselves stay full size
    assert (np.abs(front - 238).sum(axis=2) > 12).mean() > 0.5  # the head fills the front view
    params = np.load(head.params_path)
    assert "shape_weights" in params and "expression_weights" in params


def test_hair_travels_into_the_files(heads):
    folder = heads["astronaut"].glb_path.parent
    assert (folder / "head_hair.png").is_file() and "newmtl hair" in (folder / "head.mtl").read_text()


def test_dense_morphs_on_request_for_importers_without_sparse_accessors(aligned_faces, heads, tmp_path):
    """`glb_morphs="dense"`: the same 52 ARKit targets with the same default weights, no sparse accessor
    anywhere, still valid; the default (sparse) file is the smaller one."""
    from pygltflib import GLTF2

    engine = HEAD_ENGINES[HEAD_ENGINES.default]()
    stage = Reconstruct3DStage(AvatarRequest(modes=("3d",), glb_morphs="dense"), engine, render_views=False)
    try:
        (head,) = stage.run([aligned_faces["astronaut"]], ["astronaut"], [tmp_path / "astronaut"])
    finally:
        stage.close()
        engine.close()
    assert validate(head.glb_path)["issues"]["numErrors"] == 0
    dense, sparse = GLTF2().load(str(head.glb_path)), GLTF2().load(str(heads["astronaut"].glb_path))
    assert not any(accessor.sparse for accessor in dense.accessors)
    assert any(accessor.sparse for accessor in sparse.accessors)

    def morphs(gltf):
        mesh = max(gltf.meshes, key=lambda m: len(m.primitives[0].targets or []))
        return mesh.extras["targetNames"], mesh.weights

    assert morphs(dense) == morphs(sparse) and len(morphs(dense)[0]) == 52
    assert head.glb_path.stat().st_size > heads["astronaut"].glb_path.stat().st_size
