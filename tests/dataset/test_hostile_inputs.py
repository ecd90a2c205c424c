"""Issue 13, the input side (items 1-6, 18, 20): one test per kind the adversarial probe found.

These use only the long-standing public API (`decode_image`, `list_inputs`, `InputReader`,
`printable_source`, `read_shards`), so each one also runs against the code before the fix, and
fails there; item 6 needs the new `is_preprocess_output`.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from dataset.decode import decode_image
from dataset.reasons import InputRejected, Reason
from dataset.sources import InputReader, list_inputs, printable_source, read_bytes
from tests.corpus import jpeg_scan_bomb, png_chunk_bomb, tiff_size_tags_twice


def _photo(side: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _rejection(data: bytes, **limits) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        decode_image(data, **limits)
    return caught.value


# ------------------------------------------------------------------------ 1. pixel-limit bypass


@pytest.mark.timeout(60)
def test_1_tiff_with_size_tags_twice_is_judged_by_the_size_the_decoder_allocates():
    """libtiff/OpenCV decode the first ImageWidth/ImageLength copies (2000x2000 here), Pillow reads the last."""
    data = tiff_size_tags_twice((2000, 2000), (100, 100))
    error = _rejection(data, max_pixels=1_000_000)
    assert error.reason is Reason.TOO_LARGE and "2000x2000" in error.detail


# ---------------------------------------------------------------------------- 2. scan bomb


@pytest.mark.timeout(60)
def test_2_progressive_jpeg_scan_bomb_is_refused_quickly(package_photos):
    data = jpeg_scan_bomb(package_photos["astronaut"], repeats=100_000)
    started = time.perf_counter()
    error = _rejection(data)
    assert time.perf_counter() - started < 5.0
    assert error.reason is Reason.DECODE_LIMIT and "scans" in error.detail


# ------------------------------------------------------------ 3. PNG chunk bombs, NUL in a list


@pytest.mark.parametrize("kind, after_idat", [(b"iCCP", False), (b"zTXt", False), (b"iTXt", False), (b"zTXt", True)])
def test_3_png_metadata_that_inflates_to_50_mb_is_too_large(kind, after_idat):
    error = _rejection(png_chunk_bomb(_photo(), kind, after_idat=after_idat))
    assert error.reason is Reason.TOO_LARGE and kind.decode() in error.detail


def test_3_list_entry_with_a_nul_byte_is_one_rejected_row(tmp_path):
    (tmp_path / "a.jpg").write_bytes(_jpeg(_photo()))
    listing = tmp_path / "inputs.lst"
    listing.write_bytes(b"a.jpg\nbad\x00name.jpg\n")
    sources = list_inputs(listing)
    assert len(sources) == 2
    with InputReader.for_input(listing) as reader:
        assert reader.read(sources[0]) == (tmp_path / "a.jpg").read_bytes()
        with pytest.raises(InputRejected) as caught:
            reader.read(sources[1])
    assert caught.value.reason is Reason.UNSAFE_PATH and "NUL" in caught.value.detail
    printable_source(sources[1]).encode("utf-8")


# ------------------------------------------------------------------ 4. exact bytes of names


def test_4_a_name_that_is_not_utf8_and_its_escaped_lookalike_stay_two_rows(tmp_path):
    raw = tmp_path / os.fsdecode(b"x\xff.jpg")
    lookalike = tmp_path / "x\\xff.jpg"
    raw.write_bytes(_jpeg(_photo(seed=1)))
    lookalike.write_bytes(_jpeg(_photo(seed=2)))
    (tmp_path / "y.jpg").write_bytes(_jpeg(_photo(seed=3)))
    sources = list_inputs(tmp_path)
    assert len(sources) == 3
    rows = {printable_source(source) for source in sources}
    assert len(rows) == 3, "two inputs would share one row"
    assert {read_bytes(source) for source in sources} == {p.read_bytes() for p in (raw, lookalike, tmp_path / "y.jpg")}
    assert all(row.encode("utf-8") for row in rows)


# ------------------------------------------------------------------------- 5. "!" in names


def test_5_a_path_that_exists_is_that_file_even_beside_an_archive(tmp_path):
    with zipfile.ZipFile(tmp_path / "pack.zip", "w") as bundle:
        bundle.writestr("member.jpg", _jpeg(_photo(seed=4)))
    text = tmp_path / "pack.zip!member.jpg"
    text.write_bytes(b"just text")
    real = tmp_path / "other.zip!x.jpg"  # no other.zip exists
    real.write_bytes(_jpeg(_photo(seed=5)))
    sources = list_inputs(tmp_path)
    assert str(text) in sources and str(real) in sources
    with InputReader.for_input(tmp_path) as reader:
        assert reader.read(str(text)) == b"just text"
        assert reader.read(str(real)) == real.read_bytes()


def test_5_archive_members_have_an_address_no_file_path_can_take(tmp_path):
    archive = tmp_path / "photos.zip!v2.zip"  # "!" in the archive's own name, and in its member's
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("a!b.zip!c.jpg", b"member bytes")
    (source,) = list_inputs(archive)
    assert source.startswith(str(archive)) and not os.path.exists(source)
    assert read_bytes(source) == b"member bytes"
    listing = tmp_path / "list.txt"
    listing.write_text(source + "\n")
    assert list_inputs(listing) == [source]


# ------------------------------------------------------------- 6. preprocess output by manifest


def test_6_a_preprocess_output_is_recognised_by_its_manifest_not_by_a_shards_folder(tmp_path):
    from dataset.shards import read_shards
    from dataset.sources import is_preprocess_output

    photos = tmp_path / "photos"
    (photos / "shards").mkdir(parents=True)
    (photos / "shards" / "a.jpg").write_bytes(_jpeg(_photo()))
    assert not is_preprocess_output(photos)
    output = tmp_path / "out"
    (output / "shards").mkdir(parents=True)
    (output / "manifest.json").write_text(json.dumps({"job": "preprocess", "counts": {"total": 0}}))
    assert is_preprocess_output(output)
    assert read_shards(output / "shards").num_rows == 0  # an empty preprocess output is an empty table
    (output / "manifest.json").write_text(json.dumps({"job": "generate"}))
    assert not is_preprocess_output(output)
    (output / "manifest.json").write_text("{not json")
    assert not is_preprocess_output(output)


# ------------------------------------------------------------------- 18. no contents echoed


def test_18_rejection_details_never_quote_the_file():
    error = _rejection(b"PATH=/usr/bin\x00SECRET_TOKEN=hunter2\x00HOME=/root\x00")  # like /proc/self/environ
    assert "SECRET" not in error.detail and "hunter2" not in error.detail and "PATH" not in error.detail


def test_18_reading_proc_self_environ_does_not_echo_the_environment():
    if not os.path.exists("/proc/self/environ"):
        pytest.skip("no /proc")
    error = _rejection(read_bytes("/proc/self/environ"))
    assert error.reason is Reason.NOT_AN_IMAGE
    assert "=" not in error.detail and "PATH" not in error.detail


# --------------------------------------------------------------------- 20. tar in one pass


def test_20_a_tar_gz_is_listed_in_archive_order_and_read_in_one_pass(tmp_path, monkeypatch):
    archive = tmp_path / "batch.tar.gz"
    payloads = {f"{name}.jpg": os.urandom(50_000) for name in ("zeta", "alpha", "mid", "beta")}
    with tarfile.open(archive, "w:gz") as bundle:
        for name, data in payloads.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    sources = list_inputs(archive)
    assert [next(n for n in payloads if s.endswith(n)) for s in sources] == list(payloads)  # archive order
    rewinds = []
    original = gzip._GzipReader._rewind
    monkeypatch.setattr(gzip._GzipReader, "_rewind", lambda self: (rewinds.append(1), original(self))[1])
    with InputReader() as reader:
        assert [reader.read(s) for s in sources] == list(payloads.values())
    assert not rewinds, f"the archive was re-inflated from the start {len(rewinds)} times"
