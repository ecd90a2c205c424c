"""Shard rows → training examples: decoding guard, filters, captions, rejected rows skipped."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from actors.train.examples import READ_COLUMNS, decode_crop, examples_from_rows, prepare_batch
from actors.train.selection import RowFilter
from tests.actors.train.shards import png_bytes, shard_rows


@pytest.fixture(scope="module")
def rows(aligned_faces):
    return shard_rows(aligned_faces)


def test_decode_resizes_to_the_training_resolution(aligned_faces):
    crop = aligned_faces["astronaut"].crop
    image = decode_crop(png_bytes(crop), 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    # a downscaled face keeps its colours
    assert abs(float(image.mean()) - float(crop.mean())) < 3.0


def test_decode_refuses_bad_bytes():
    with pytest.raises(ValueError, match="empty"):
        decode_crop(b"", 32)
    with pytest.raises(ValueError, match="not a readable image"):
        decode_crop(b"\x89PNG\r\n\x1a\nbroken", 32)
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(ValueError, match="PNG or JPEG"):
        decode_crop(buffer.getvalue(), 32)


def test_decode_refuses_decompression_bombs(monkeypatch):
    from actors.train import examples

    monkeypatch.setattr(examples, "MAX_CROP_PIXELS", 100)
    with pytest.raises(ValueError, match="exceeds"):
        decode_crop(png_bytes(np.zeros((11, 11, 3), np.uint8)), 32)


def test_prepare_batch_marks_dropped_rows_and_captions_the_rest(rows):
    batch = pd.DataFrame(rows)[list(READ_COLUMNS)]
    prepared = prepare_batch(batch, resolution=32, row_filter=RowFilter(min_face_size=64, max_yaw=30),
                             trigger="indianface")
    assert prepared["dropped"].tolist() == ["", "", "", "face_size", "", "", "", "yaw", "status"]
    examples = examples_from_rows(prepared.to_dict("records"), 32)
    assert [e.id for e in examples] == [rows[i]["id"] for i in (0, 1, 2, 4, 5, 6)]
    assert examples[0].caption == "indianface, photo of a young woman, smiling, light skin"
    assert examples[3].caption == "indianface, photo of an old woman, neutral expression, fair skin"
    assert all(e.image.shape == (32, 32, 3) for e in examples)
    assert [e.mst for e in examples] == [3, 3, 6, 2, 2, 8]


def test_a_corrupt_crop_drops_its_row_only(rows):
    broken = [dict(row) for row in rows[:3]]
    broken[1]["crop"] = b"not a png"
    prepared = prepare_batch(pd.DataFrame(broken)[list(READ_COLUMNS)], resolution=32, row_filter=RowFilter(),
                             trigger="indianface")
    assert prepared["dropped"].tolist() == ["", "bad_crop", ""]
    assert len(examples_from_rows(prepared.to_dict("records"), 32)) == 2
