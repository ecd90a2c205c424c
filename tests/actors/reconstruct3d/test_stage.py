"""The 3D stage: engine choice, files per face, result columns, per-face failures."""
import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest
import trimesh

from actors.reconstruct3d.head import CanonicalHeadEngine
from tests.actors.reconstruct3d.gltf_validator import validate
from actors.reconstruct3d.render import VIEW_YAWS
from actors.reconstruct3d.stage import Reconstruct3DStage
from actors.request import AvatarRequest
from dataset.schema import RESULTS_SCHEMA

COLUMNS_3D = {"head_engine", "glb_path", "obj_path", "texture_path", "views_path", "flame_path", "nme", "ms_3d"}
REQUEST = AvatarRequest(modes=("3d",), texture_size=512)


def test_columns_are_the_results_schema_3d_columns():
    assert COLUMNS_3D <= set(RESULTS_SCHEMA.names)


def test_canonical_batch_writes_every_file(aligned_faces, tmp_path):
    stage = Reconstruct3DStage(REQUEST, view_size=96)
    names = list(aligned_faces)
    rows = stage.run([aligned_faces[n] for n in names], names, [tmp_path / n for n in names])
    assert len(rows) == 2
    for name, row in zip(names, rows):
        assert set(row) == COLUMNS_3D, row
        assert row["head_engine"] == "canonical" and row["flame_path"] is None
        assert 0 <= row["nme"] <= 0.05 and row["ms_3d"] > 0
        folder = tmp_path / name
        for key, file in (("glb_path", "head.glb"), ("obj_path", "head.obj"), ("texture_path", "head_texture.png"),
                          ("views_path", "views.png")):
            assert row[key] == str(folder / file) and (folder / file).stat().st_size > 0
        assert (folder / "head.mtl").is_file()
        assert sorted(p.name for p in folder.glob("view_*.png")) == sorted(f"view_{y}.png" for y in VIEW_YAWS)
        import cv2

        sheet = cv2.imread(row["views_path"])
        assert sheet.shape == (96, 96 * 7, 3)
        texture = cv2.imread(row["texture_path"])
        assert texture.shape == (512, 512, 3)
        loaded = trimesh.load(row["glb_path"])
        assert len(loaded.geometry) == 1


def test_one_bad_face_does_not_lose_the_batch(aligned_faces, tmp_path):
    good = aligned_faces["astronaut"]
    broken = good.landmarks.copy()
    broken[0, 0] = np.nan
    bad = dataclasses.replace(good, landmarks=broken)
    stage = Reconstruct3DStage(REQUEST, render_views=False)
    rows = stage.run([good, bad, aligned_faces["grace_hopper"]], ["a", "b", "c"], [tmp_path / x for x in "abc"])
    assert "error" not in rows[0] and "error" not in rows[2]
    assert "NaN" in rows[1]["error"] and rows[1]["head_engine"] == "canonical"
    assert rows[0]["views_path"] is None and not (tmp_path / "b").exists()


def test_a_failing_write_is_reported_per_face(aligned_faces, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    stage = Reconstruct3DStage(REQUEST, render_views=False)
    rows = stage.run([aligned_faces["astronaut"]] * 2, ["x", "y"], [blocked, tmp_path / "ok"])
    assert "error" in rows[0] and "error" not in rows[1]


class FakeFlame:
    """Stands in for FlameHeadEngine: FLAME-like meshes (no UVs, FLAME parameters) from the canonical fit."""

    instances = []

    def __init__(self, model_path, embedding_path, texture_path=None, device=None, batch_size=64):
        self.args = (model_path, embedding_path, texture_path, device)
        FakeFlame.instances.append(self)

    def reconstruct(self, faces):
        meshes = CanonicalHeadEngine().reconstruct(faces)
        return [dataclasses.replace(m, engine="flame", uvs=None, uv_faces=None,
                                    params={"shape": np.arange(10, dtype=np.float32), "expression": np.zeros(5, np.float32)})
                for m in meshes]


@pytest.fixture
def fake_flame(monkeypatch, tmp_path):
    flame = importlib.import_module("actors.reconstruct3d.flame")
    monkeypatch.setattr(flame, "FlameHeadEngine", FakeFlame, raising=False)
    FakeFlame.instances.clear()
    model, embedding = tmp_path / "generic_model.pkl", tmp_path / "mediapipe_landmark_embedding.npz"
    model.write_bytes(b"model")
    embedding.write_bytes(b"embedding")
    return model, embedding


def test_flame_when_configured(aligned_faces, tmp_path, fake_flame):
    model, embedding = fake_flame
    stage = Reconstruct3DStage(REQUEST, flame_model=model, flame_embedding=embedding, device="cpu", render_views=False)
    (row,) = stage.run([aligned_faces["astronaut"]], ["f"], [tmp_path / "f"])
    assert row["head_engine"] == "flame", row
    assert FakeFlame.instances[0].args == (model, embedding, None, "cpu")
    saved = np.load(row["flame_path"])
    np.testing.assert_array_equal(saved["shape"], np.arange(10))
    loaded = trimesh.load(row["obj_path"])  # laid out by xatlas, textured
    assert loaded.visual.uv is not None and loaded.visual.material.image is not None
    report = validate(Path(row["glb_path"]))  # many UV seams: split vertices, still a valid glTF
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]


def test_engine_choice(fake_flame):
    model, embedding = fake_flame
    assert Reconstruct3DStage(REQUEST).engine_name == "canonical"
    canonical_request = AvatarRequest(modes=("3d",), head_engine="canonical")
    assert Reconstruct3DStage(canonical_request, flame_model=model, flame_embedding=embedding).engine_name == "canonical"
    assert Reconstruct3DStage(REQUEST, flame_model=model, flame_embedding=embedding).engine_name == "flame"
    with pytest.raises(ValueError, match="needs a FLAME model"):
        Reconstruct3DStage(AvatarRequest(modes=("3d",), head_engine="flame"))
    with pytest.raises(ValueError, match="embedding"):
        Reconstruct3DStage(REQUEST, flame_model=model)
    with pytest.raises(ValueError, match="is not a file"):
        Reconstruct3DStage(REQUEST, flame_model=model.with_name("missing.pkl"), flame_embedding=embedding)
    with pytest.raises(ValueError, match="'3d'"):
        Reconstruct3DStage(AvatarRequest(modes=("2d",)))


def test_mismatched_lengths(aligned_faces):
    with pytest.raises(ValueError, match="same length"):
        Reconstruct3DStage(REQUEST).run([aligned_faces["astronaut"]], ["a", "b"], ["x"])
    assert Reconstruct3DStage(REQUEST).run([], [], []) == []
