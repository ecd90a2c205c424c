"""Avatar2DStage: files, result columns, per-item failure isolation."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from actors.request import AvatarRequest
from actors.stylize2d.offline import OfflineStylizer
from actors.stylize2d.protocol import StylizedImage
from actors.stage_results import Avatars2D, Failure
from actors.stylize2d.stage import Avatar2DStage
from dataset.reasons import Reason
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


def test_stage_writes_avatars_and_returns_typed_results(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("cartoon", "realistic"), seed=3)
    faces = [aligned_faces["astronaut"], aligned_faces["grace_hopper"]]
    out_dirs = [tmp_path / "avatars" / item for item in IDS]
    results = Avatar2DStage(request, OfflineStylizer(), identity).run(faces, list(IDS), out_dirs)
    assert len(results) == 2
    for result, out_dir, face in zip(results, out_dirs, faces):
        assert isinstance(result, Avatars2D)
        assert [a.style for a in result.avatars] == ["cartoon", "realistic"]
        assert [a.path for a in result.avatars] == [out_dir / "avatar_cartoon.png", out_dir / "avatar_realistic.png"]
        for avatar in result.avatars:
            with Image.open(avatar.path) as image:
                assert image.size == (512, 512) and image.mode == "RGB"
        columns = result.columns()
        assert set(columns) <= set(RESULTS_SCHEMA.names), set(columns) - set(RESULTS_SCHEMA.names)
        for key, value in columns.items():
            assert key == "ms_2d" or len(value) == 2, key
        assert result.avatars[1].identity > 0.5 and [a.identity_reason for a in result.avatars] == ["", ""]
        assert result.ms > 0


def test_written_png_is_what_the_engine_made_for_that_seed(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("sketch",), seed=9, tone_lock=False)
    face = aligned_faces["astronaut"]
    [result] = Avatar2DStage(request, OfflineStylizer(), identity).run([face], [IDS[0]], [tmp_path])
    expected = OfflineStylizer().stylize([face], "sketch", request, [request.item_seed(IDS[0])])[0].image
    written = np.array(Image.open(result.avatars[0].path))
    assert np.array_equal(written, expected)
    assert result.columns()["tone_correction"] == [0.0]


def test_one_failing_item_loses_nothing_else(aligned_faces, identity, tmp_path):
    poisoned = dataclasses.replace(aligned_faces["grace_hopper"], extras={"poison": True})
    engine = PoisonAwareEngine()
    request = AvatarRequest(styles=("anime", "sketch"))
    results = Avatar2DStage(request, engine, identity).run(
        [aligned_faces["astronaut"], poisoned], list(IDS), [tmp_path / "a", tmp_path / "b"])
    assert [a.style for a in results[0].avatars] == ["anime", "sketch"]
    assert isinstance(results[1], Failure) and results[1].reason is Reason.ENGINE_ERROR
    assert "anime" in results[1].detail and "weights produced NaNs" in results[1].detail
    assert not (tmp_path / "b").exists()
    # Batch of 2 failed, then one by one; the failed item is not tried again for the next style.
    assert engine.calls == [2, 1, 1, 1]


def test_a_wrong_sized_engine_output_is_an_item_failure(aligned_faces, identity, tmp_path):
    request = AvatarRequest(styles=("cartoon",))
    results = Avatar2DStage(request, WrongSizeEngine(), identity).run([aligned_faces["astronaut"]], [IDS[0]], [tmp_path])
    assert isinstance(results[0], Failure) and "expected (512, 512, 3) uint8" in results[0].detail


def test_stage_checks_its_arguments(aligned_faces, identity, tmp_path):
    with pytest.raises(ValueError, match="'2d'"):
        Avatar2DStage(AvatarRequest(modes=("3d",)), OfflineStylizer(), identity)
    stage = Avatar2DStage(AvatarRequest(), OfflineStylizer(), identity)
    with pytest.raises(ValueError, match="same length"):
        stage.run([aligned_faces["astronaut"]], list(IDS), [tmp_path])


def test_merge_fails_loudly_on_a_column_the_schema_does_not_have(tmp_path):
    from actors.stage_results import merge_columns
    from dataset.schema import empty_row

    row = empty_row(RESULTS_SCHEMA)
    merge_columns(row, {"ms_2d": 1.0, "styles": ["anime"]}, tmp_path)
    assert row["ms_2d"] == 1.0
    with pytest.raises(KeyError, match="ita_outt"):
        merge_columns(row, {"ita_outt": [1.0]}, tmp_path)
