"""dataset.shards: AlignedFace ⇄ row, schema-exact tables, atomic shards, resume helpers, both pandas engines."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset.face import AlignedFace
from dataset.reasons import Reason, Status
from dataset.images import decode_png, encode_png
from dataset.schema import NUM_LANDMARKS, SHARD_SCHEMA
from dataset.shards import (
    done_ids,
    done_sources,
    face_to_row,
    parquet_ready,
    pending_sources,
    read_shards,
    rejection_row,
    row_to_face,
    rows_to_table,
    write_shard,
)


def _face(seed: int = 0, size: int = 64) -> AlignedFace:
    rng = np.random.default_rng(seed)
    return AlignedFace(
        crop=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        mask=rng.integers(0, 256, (size, size), dtype=np.uint8),
        landmarks=rng.uniform(-5, size + 5, (NUM_LANDMARKS, 3)).astype(np.float32),
        skin_mask=rng.random((size, size)) > 0.5,
        source_to_crop=rng.normal(size=(2, 3)),
        bbox=(10.5, 20.25, 110.0, 140.75),
        pose=(12.5, -3.25, 1.0),
        num_faces=2,
        ita=37.5,
        mst=4,
    )


def _assert_same_face(a: AlignedFace, b: AlignedFace) -> None:
    np.testing.assert_array_equal(a.crop, b.crop)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.skin_mask, b.skin_mask)
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    np.testing.assert_array_equal(a.source_to_crop, b.source_to_crop)
    assert a.bbox == pytest.approx(b.bbox) and a.pose == pytest.approx(b.pose)
    assert (a.num_faces, a.mst) == (b.num_faces, b.mst) and a.ita == pytest.approx(b.ita)


def _rows() -> list[dict]:
    return [
        face_to_row("a" * 64, "/p/a.jpg", _face(1), 640, 480, extra={"actor": "Kajol", "ms_align": 12.5}),
        rejection_row("b" * 64, "/p/b.png", Status.REJECTED, Reason.NO_FACE, "no face found", 300, 200),
        rejection_row(None, "/p/c.jpg", "rejected", "unreadable", "no such file"),
    ]


# -------------------------------------------------------------------------------------------- rows


def test_png_helpers_round_trip_rgb_grey_and_bool():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(rgb)), rgb)
    grey = rgb[..., 0]
    np.testing.assert_array_equal(decode_png(encode_png(grey)), grey)
    mask = grey > 100
    np.testing.assert_array_equal(decode_png(encode_png(mask)) > 127, mask)
    assert encode_png(rgb)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("channels", [3, 4])
def test_fast_png_reads_back_exactly_in_another_decoder(channels):
    """The fast path writes its own chunks and ISA-L deflate: Pillow (libpng-independent zlib reader, CRC
    checks on) must read the same pixels, and the file must be smaller than the raw pixels."""
    import io

    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    rng = np.random.default_rng(4)
    image = np.clip(np.linspace(0, 255, 300)[None, :, None] + rng.normal(0, 3, (200, 300, channels)), 0, 255).astype(np.uint8)
    image[50:120, 80:200] = 238  # a flat background patch, as rendered views have
    data = encode_png(image, fast=True)
    with Image.open(io.BytesIO(data)) as decoded:
        decoded.load()
        assert decoded.mode == ("RGB" if channels == 3 else "RGBA")
        np.testing.assert_array_equal(np.asarray(decoded), image)
    np.testing.assert_array_equal(decode_png(data), image)
    assert len(data) < image.size


def test_face_row_round_trips_through_a_shard(tmp_path):
    face = _face(3)
    path = write_shard([face_to_row("f" * 64, "/x/photo.jpg", face, 800, 600)], tmp_path / "s.parquet")
    (row,) = pq.read_table(path).to_pylist()
    assert (row["status"], row["reason"], row["width"], row["height"]) == ("ok", "", 800, 600)
    _assert_same_face(row_to_face(row), face)


def test_real_aligned_face_round_trips(aligned_faces, tmp_path):
    face = aligned_faces["astronaut"]
    path = write_shard([face_to_row("id", "astronaut.jpg", face, 512, 512)], tmp_path / "real.parquet")
    _assert_same_face(row_to_face(read_shards(tmp_path).to_pylist()[0]), face)
    assert path.exists()


def test_rejection_row_validates_status_and_reason():
    with pytest.raises(ValueError, match="status"):
        rejection_row("i", "s", "ok", "no_face", "")
    with pytest.raises(ValueError, match="reason"):
        rejection_row("i", "s", "rejected", "bad_vibes", "")
    with pytest.raises(ValueError, match="non-negative"):
        rejection_row("i", "s", "rejected", "no_face", "", width=-1)
    row = rejection_row("i", "s", Status.FAILED, Reason.INTERNAL_ERROR, "boom", num_faces=1)
    assert (row["status"], row["reason"], row["num_faces"], row["crop"]) == ("failed", "internal_error", 1, None)


def test_extra_columns_are_checked():
    with pytest.raises(ValueError, match="not in SHARD_SCHEMA"):
        rejection_row("i", "s", "rejected", "no_face", "", extra={"colour": "red"})
    with pytest.raises(ValueError, match="set by the row builder"):
        face_to_row("i", "s", _face(), 1, 1, extra={"status": "ok"})


def test_face_to_row_rejects_malformed_faces():
    face = _face()
    face.landmarks = face.landmarks[:10]
    with pytest.raises(ValueError, match="landmarks"):
        face_to_row("i", "s", face, 10, 10)


def test_row_to_face_refuses_rejected_rows():
    with pytest.raises(ValueError, match="only 'ok' rows"):
        row_to_face(rejection_row("i", "s", "rejected", "no_face", ""))


# ------------------------------------------------------------------------------------------- table


def test_rows_to_table_is_schema_exact_with_nulls_where_unknown():
    table = rows_to_table(_rows())
    assert table.schema.equals(SHARD_SCHEMA)
    assert table.column("landmarks").null_count == 2
    assert table.column("actor").to_pylist() == ["Kajol", None, None]
    assert table.column("ms_align").to_pylist() == [12.5, None, None]
    assert table.column("id").to_pylist()[2] is None


def test_rows_to_table_rejects_unknown_keys_and_wrong_list_sizes():
    with pytest.raises(ValueError, match="not in SHARD_SCHEMA"):
        rows_to_table([{"id": "x", "nonsense": 1}])
    with pytest.raises(ValueError, match="landmarks"):
        rows_to_table([{"id": "x", "landmarks": [0.0] * 10}])


def test_non_utf8_sources_are_stored_escaped():
    raw = os.fsdecode(b"/p/caf\xe9.jpg")
    table = rows_to_table([rejection_row(None, raw, "rejected", "unreadable", f"cannot open {raw}")])
    assert table.column("source").to_pylist() == ["/p/caf\\xe9.jpg"]


# ------------------------------------------------------------------------------------------- files


def test_write_shard_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    shards = tmp_path / "shards"
    write_shard(_rows(), shards / "part-0.parquet")
    assert sorted(p.name for p in shards.iterdir()) == ["part-0.parquet"]

    def crash(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half written")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_shard(_rows(), shards / "part-1.parquet")
    assert sorted(p.name for p in shards.iterdir()) == ["part-0.parquet"]  # no partial shard, no temp file
    assert len(read_shards(shards)) == 3


def test_write_shard_validates_its_path(tmp_path):
    with pytest.raises(ValueError, match=".parquet"):
        write_shard(_rows(), tmp_path / "shard.csv")
    with pytest.raises(ValueError, match="hidden"):
        write_shard(_rows(), tmp_path / ".shard.parquet")


def test_read_shards_concatenates_selects_and_fills_old_shards(tmp_path):
    write_shard(_rows()[:1], tmp_path / "b.parquet")
    write_shard(_rows()[1:], tmp_path / "a.parquet")
    old = rows_to_table([rejection_row("o" * 64, "/p/old.jpg", "rejected", "no_face", "")]).drop_columns(["ms_align"])
    pq.write_table(parquet_ready(old), tmp_path / "c.parquet")  # a shard written before a column was added
    (tmp_path / ".d.parquet.123.tmp").write_bytes(b"partial")  # a writer's leftover is ignored
    table = read_shards(tmp_path)
    assert table.schema.equals(SHARD_SCHEMA) and len(table) == 4
    assert table.column("source").to_pylist() == ["/p/b.png", "/p/c.jpg", "/p/a.jpg", "/p/old.jpg"]
    assert table.column("ms_align").to_pylist()[3] is None
    subset = read_shards(tmp_path, columns=["source", "status"])
    assert subset.column_names == ["source", "status"] and len(subset) == 4


def test_read_shards_of_a_missing_folder_is_empty_and_bad_columns_raise(tmp_path):
    assert len(read_shards(tmp_path / "none")) == 0
    assert read_shards(tmp_path / "none").schema.equals(SHARD_SCHEMA)
    with pytest.raises(ValueError, match="not in SHARD_SCHEMA"):
        read_shards(tmp_path, columns=["colour"])


def test_shard_files_store_plain_lists_that_pyarrow_reads_back(tmp_path):
    path = write_shard(_rows(), tmp_path / "s.parquet")
    stored = pq.read_table(path)  # must not raise on the null landmarks of rejected rows
    assert pa.types.is_list(stored.schema.field("landmarks").type)
    assert stored.column("landmarks").null_count == 2
    assert read_shards(tmp_path).schema.field("landmarks").type == SHARD_SCHEMA.field("landmarks").type


def test_unreadable_shard_is_a_clear_error(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="broken.parquet"):
        read_shards(tmp_path)


def test_resume_helpers(tmp_path):
    write_shard(_rows(), tmp_path / "part-0.parquet")
    assert done_sources(tmp_path) == {"/p/a.jpg", "/p/b.png", "/p/c.jpg"}
    assert done_ids(tmp_path) == {"a" * 64, "b" * 64}
    assert pending_sources(["/p/z.jpg", "/p/a.jpg", "/p/y.jpg", "/p/c.jpg"], tmp_path) == ["/p/z.jpg", "/p/y.jpg"]
    assert done_sources(tmp_path / "missing") == set()


@pytest.mark.parametrize("engine", ["pyarrow", "fastparquet"])
def test_both_pandas_engines_read_a_shard_with_values_intact(tmp_path, engine):
    import pandas as pd

    face = _face(7)
    rows = [face_to_row("a" * 64, "/p/a.jpg", face, 640, 480, extra={"gender": "female"})] + _rows()[1:]
    path = write_shard(rows, tmp_path / "s.parquet")
    frame = pd.read_parquet(path, engine=engine)
    assert list(frame.columns) == SHARD_SCHEMA.names
    assert frame["status"].tolist() == ["ok", "rejected", "rejected"]
    landmarks = np.asarray(frame["landmarks"].iloc[0], dtype=np.float32)
    np.testing.assert_array_equal(landmarks.reshape(NUM_LANDMARKS, 3), face.landmarks)
    np.testing.assert_array_equal(np.asarray(frame["source_to_crop"].iloc[0]).reshape(2, 3), face.source_to_crop)
    assert np.asarray(frame["bbox"].iloc[0], dtype=np.float32).tolist() == list(face.bbox)
    np.testing.assert_array_equal(decode_png(bytes(frame["crop"].iloc[0])), face.crop)
    assert int(frame["mst"].iloc[0]) == face.mst and frame["gender"].iloc[0] == "female"
    assert float(frame["yaw"].iloc[0]) == pytest.approx(face.pose[0])
    assert frame["landmarks"].iloc[1] is None or np.all(pd.isna(frame["landmarks"].iloc[1]))
