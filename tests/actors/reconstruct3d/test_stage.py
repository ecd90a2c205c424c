"""The 3D stage: `Reconstruct3DStage(request, engine, ...)` — files per face, typed results, per-face failures,
and the head registry (makehuman first = default; canonical and FLAME selectable)."""
import dataclasses

import cv2
import numpy as np
import pytest
import trimesh

from actors.engines import AUTO_HEAD, default_catalog
from actors.reconstruct3d.head import CanonicalHeadEngine
from actors.reconstruct3d.registry import HEAD_ENGINES
from actors.reconstruct3d.render import VIEW_YAWS
from actors.reconstruct3d.stage import Reconstruct3DStage
from actors.request import AvatarRequest
from actors.stage_results import Failure, Head3D
from dataset.reasons import Reason
from dataset.schema import RESULTS_SCHEMA

REQUEST = AvatarRequest(modes=("3d",), texture_size=512)


@pytest.fixture(scope="module")
def canonical():
    return CanonicalHeadEngine()


def test_result_columns_are_results_schema_columns():
    head = Head3D("canonical", *(["x"] * 5), nme=0.01, ms=1.0)
    assert set(head.columns()) <= set(RESULTS_SCHEMA.names)


def test_canonical_batch_writes_every_file(aligned_faces, canonical, tmp_path):
    stage = Reconstruct3DStage(REQUEST, canonical, view_size=96)
    names = sorted(aligned_faces)
    heads = stage.run([aligned_faces[n] for n in names], names, [tmp_path / n for n in names])
    assert len(heads) == 2
    for name, head in zip(names, heads):
        assert isinstance(head, Head3D), head
        assert head.head_engine == "canonical" and 0 <= head.nme <= 0.05 and head.ms > 0
        folder = tmp_path / name
        for path, file in ((head.glb_path, "head.glb"), (head.obj_path, "head.obj"), (head.texture_path, "head_texture.png"),
                           (head.views_path, "views.png"), (head.params_path, "head_params.npz")):
            assert path == folder / file and path.stat().st_size > 0
        assert (folder / "head.mtl").is_file()
        assert sorted(p.name for p in folder.glob("view_*.png")) == sorted(f"view_{y}.png" for y in VIEW_YAWS)
        assert cv2.imread(str(head.views_path)).shape == (48, 48 * 7, 3)  # half-size tiles
        assert cv2.imread(str(folder / "view_0.png")).shape == (96, 96, 3)
        assert cv2.imread(str(head.texture_path)).shape == (512, 512, 3)
        assert len(trimesh.load(head.glb_path).geometry) == 1
    stage.close()


def test_one_bad_face_does_not_lose_the_batch(aligned_faces, canonical, tmp_path):
    good = aligned_faces["astronaut"]
    broken = good.landmarks.copy()
    broken[0, 0] = np.nan
    bad = dataclasses.replace(good, landmarks=broken)
    stage = Reconstruct3DStage(REQUEST, canonical, render_views=False)
    heads = stage.run([good, bad, aligned_faces["grace_hopper"]], ["a", "b", "c"], [tmp_path / x for x in "abc"])
    assert isinstance(heads[0], Head3D) and isinstance(heads[2], Head3D)
    assert isinstance(heads[1], Failure) and heads[1].reason == Reason.RECONSTRUCTION_ERROR
    assert "NaN" in heads[1].detail and heads[1].detail.startswith("canonical:")
    assert heads[0].views_path is None and not (tmp_path / "b").exists()


def test_a_failing_write_is_reported_per_face(aligned_faces, canonical, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    stage = Reconstruct3DStage(REQUEST, canonical, render_views=False)
    heads = stage.run([aligned_faces["astronaut"]] * 2, ["x", "y"], [blocked, tmp_path / "ok"])
    assert isinstance(heads[0], Failure) and isinstance(heads[1], Head3D)


def test_inputs_are_checked(aligned_faces, canonical):
    with pytest.raises(ValueError, match="'3d'"):
        Reconstruct3DStage(AvatarRequest(modes=("2d",)), canonical)
    with pytest.raises(ValueError, match="view_size"):
        Reconstruct3DStage(REQUEST, canonical, view_size=8)
    with pytest.raises(ValueError, match="same length"):
        Reconstruct3DStage(REQUEST, canonical).run([aligned_faces["astronaut"]], ["a", "b"], ["x"])
    assert Reconstruct3DStage(REQUEST, canonical).run([], [], []) == []


def test_makehuman_is_the_default_head_engine_and_the_others_stay_selectable(tmp_path):
    assert HEAD_ENGINES.default == "makehuman"
    assert set(HEAD_ENGINES.names) == {"makehuman", "canonical", "flame"}
    catalog = default_catalog()
    assert catalog.resolve_head(AUTO_HEAD, {}) == "makehuman"
    assert catalog.resolve_head("canonical", {}) == "canonical"
    assert catalog.resolve_head("flame", {}) == "flame"
    assert catalog.resolve_head(AUTO_HEAD, {"flame": object()}) == "flame"  # configured FLAME files win under auto
