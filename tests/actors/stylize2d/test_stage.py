"""Avatar2DStage: files, result columns, per-item failure isolation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stylize2d.stage import RESULT_KEYS, Avatar2DStage
from dataset.schema import RESULTS_SCHEMA

IDS = ("0a1b2c3d4e5f60718293a4b5", "ffeeddccbbaa998877665544")


class PoisonAwareEngine:
    """The offline engine, except that any batch holding a face marked `poison` raises."""

    name = "offline"
    styles = OfflineStylizer.styles

    def __init__(self):
        self.inner = OfflineStylizer()
        self.calls = []

    def stylize(self, faces, style, request, seeds):
        self.calls.append(len(faces))
        if any(face.extras.get("poison") for face in faces):
            raise RuntimeError("weights produced NaNs")
        return self.inner.stylize(faces, style, request, seeds)


class WrongSizeEngine(PoisonAwareEngine):
    def stylize(self, faces, style, request, seeds):
        return [StylizedImage(image=np.zeros((64, 64, 3), np.uint8), landmarks=None) for _ in faces]


@pytest.fixture(scope="module")
def identity():
    from actors.metrics.identity import IdentityModel

    return IdentityModel()


def test_stage_writes_avatars_and_returns_the_2d_columns(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("cartoon", "realistic"), seed=3)
    faces = [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]
    out_dirs = [tmp_path / "avatars" / item for item in IDS]
    results = Avatar2DStage(request, identity=identity).run(faces, list(IDS), out_dirs)
    assert len(results) == 2
    columns = {"styles", "avatar_paths", "ita_raw", "mst_raw", "ita_out", "mst_out", "tone_correction",
               "identity", "identity_reason"}
    assert columns <= set(RESULTS_SCHEMA.names)
    for result, out_dir, face in zip(results, out_dirs, faces):
        assert set(result) == columns | {"ms_2d"} == set(RESULT_KEYS)
        assert result["styles"] == ["cartoon", "realistic"]
        assert result["avatar_paths"] == [str(out_dir / "avatar_cartoon.png"), str(out_dir / "avatar_realistic.png")]
        for path in result["avatar_paths"]:
            with Image.open(path) as image:
                assert image.size == (512, 512) and image.mode == "RGB"
        for key in columns - {"styles", "avatar_paths"}:
            assert len(result[key]) == 2
        assert all(abs(ita - face.ita) <= request.tone_threshold for ita in result["ita_out"])
        assert result["identity"][1] > 0.5 and result["identity_reason"] == ["", ""]
        assert result["ms_2d"] > 0


def test_written_png_is_what_the_engine_made_for_that_seed(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("sketch",), seed=9, tone_lock=False)
    face = aligned_faces["astronaut"]
    [result] = Avatar2DStage(request, identity=identity).run([face], [IDS[0]], [tmp_path])
    expected = OfflineStylizer().stylize([face], "sketch", request, [request.item_seed(IDS[0])])[0].image
    written = np.array(Image.open(result["avatar_paths"][0]))
    assert np.array_equal(written, expected)
    assert result["tone_correction"] == [0.0]


def test_one_failing_item_loses_nothing_else(aligned_faces, identity, tmp_path):
    poisoned = dataclasses.replace(aligned_faces["grace_hopper"], extras={"poison": True})
    engine = PoisonAwareEngine()
    request = AvatarRequest(styles=("anime", "sketch"))
    results = Avatar2DStage(request, engine=engine, identity=identity).run(
        [aligned_faces["astronaut"], poisoned], list(IDS), [tmp_path / "a", tmp_path / "b"])
    assert results[0]["styles"] == ["anime", "sketch"]
    assert set(results[1]) == {"error"}
    assert "anime" in results[1]["error"] and "weights produced NaNs" in results[1]["error"]
    assert not (tmp_path / "b").exists()
    # Batch of 2 failed, then one by one; the failed item is not tried again for the next style.
    assert engine.calls == [2, 1, 1, 1]


def test_a_wrong_sized_engine_output_is_an_item_error(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("cartoon",))
    results = Avatar2DStage(request, engine=WrongSizeEngine(), identity=identity).run(
        [aligned_faces["astronaut"]], [IDS[0]], [tmp_path])
    assert "expected (512, 512, 3) uint8" in results[0]["error"]


def test_stage_checks_its_arguments(aligned_faces, identity, tmp_path):
    with pytest.raises(ValueError, match="'2d'"):
        Avatar2DStage(AvatarRequest(modes=("3d",)), identity=identity)
    stage = Avatar2DStage(AvatarRequest(), identity=identity)
    with pytest.raises(ValueError, match="same length"):
        stage.run([aligned_faces["astronaut"]], list(IDS), [tmp_path])
