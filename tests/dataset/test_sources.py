"""dataset.sources: listing folders, archives and list files; reading with every refusal rule."""
from __future__ import annotations

import io
import os
import pickle
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dataset.reasons import InputRejected, Reason
from dataset.sources import (
    InputReader,
    list_inputs,
    member_name_problem,
    printable_source,
    read_bytes,
    read_limited,
    split_source,
)
from tests.memory import traced_peak


def _reject(reader_or_source, source=None, **kwargs) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        if source is None:
            read_bytes(reader_or_source, **kwargs)
        else:
            reader_or_source.read(source)
    return caught.value


@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "photos"
    (root / "b" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "a.jpg").write_bytes(b"A")
    (root / "b" / "c.png").write_bytes(b"C")
    (root / "b" / "deeper" / "d.txt").write_bytes(b"D")  # a non-image is still an input
    (root / "B.jpg").write_bytes(b"B")
    (root / ".DS_Store").write_bytes(b"hidden")
    (root / ".git" / "config").write_bytes(b"hidden")
    (root / "empty.jpg").write_bytes(b"")
    return root


# ----------------------------------------------------------------------------------------- folders


def test_folder_listing_is_recursive_sorted_absolute_and_skips_hidden(folder):
    sources = list_inputs(folder)
    relative = [os.path.relpath(s, folder) for s in sources]
    assert relative == ["B.jpg", "a.jpg", os.path.join("b", "c.png"), os.path.join("b", "deeper", "d.txt"), "empty.jpg"]
    assert all(os.path.isabs(s) for s in sources)
    assert list_inputs(folder) == sources  # stable


def test_relative_and_absolute_input_paths_give_the_same_sources(folder, monkeypatch):
    monkeypatch.chdir(folder.parent)
    assert list_inputs("photos") == list_inputs(folder)


def test_reading_files(folder):
    reader = InputReader.for_input(folder)
    assert reader.read(str(folder / "b" / "c.png")) == b"C"
    assert reader.read(str(folder / "empty.jpg")) == b""  # zero bytes is judged by the decoder


def test_unicode_and_long_names(tmp_path):
    names = ["फोटो_१.jpg", "照片.png", "é" * 60 + ".jpg", "n" * 200 + ".jpg"]
    for index, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([index]))
    sources = list_inputs(tmp_path)
    assert sorted(os.path.basename(s) for s in sources) == sorted(names)
    assert {read_bytes(s) for s in sources} == {bytes([i]) for i in range(len(names))}


def test_missing_input_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_inputs(tmp_path / "nope")


def test_missing_file_is_unreadable(tmp_path):
    error = _reject(str(tmp_path / "gone.jpg"))
    assert error.reason is Reason.UNREADABLE and "no such file" in error.detail


def test_folder_as_source_is_unreadable(tmp_path):
    assert _reject(str(tmp_path)).reason is Reason.UNREADABLE


def test_symlink_escaping_the_input_folder_is_unsafe(tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    root = tmp_path / "photos"
    root.mkdir()
    (root / "inside.jpg").write_bytes(b"inside")
    (root / "escape.jpg").symlink_to(outside)
    (root / "alias.jpg").symlink_to(root / "inside.jpg")
    (root / "linked_dir").symlink_to(tmp_path)  # folder links are not followed
    sources = list_inputs(root)
    assert sorted(os.path.basename(s) for s in sources) == ["alias.jpg", "escape.jpg", "inside.jpg"]
    reader = InputReader.for_input(root)
    error = _reject(reader, str(root / "escape.jpg"))
    assert error.reason is Reason.UNSAFE_PATH and "outside the input folder" in error.detail
    assert reader.read(str(root / "alias.jpg")) == b"inside"  # a link that stays inside is fine


def test_broken_symlink_is_unreadable(tmp_path):
    (tmp_path / "broken.jpg").symlink_to(tmp_path / "missing.jpg")
    reader = InputReader.for_input(tmp_path)
    error = _reject(reader, str(tmp_path / "broken.jpg"))
    assert error.reason is Reason.UNREADABLE and "broken symbolic link" in error.detail


def test_fifo_is_listed_and_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert str(fifo) in list_inputs(tmp_path)
    outcome: dict = {}

    def read():
        try:
            read_bytes(str(fifo))
        except InputRejected as error:
            outcome["error"] = error

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=5)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert outcome["error"].reason is Reason.UNSAFE_PATH


def test_file_larger_than_max_bytes_is_too_large(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 2000)
    error = _reject(str(big), max_bytes=1000)
    assert error.reason is Reason.TOO_LARGE and "2,000" in error.detail
    assert read_bytes(str(big), max_bytes=2000) == b"x" * 2000


def test_read_limited_stops_streams_that_pass_the_limit():
    assert read_limited(io.BytesIO(b"y" * 100), 100) == b"y" * 100
    with pytest.raises(InputRejected) as caught:
        read_limited(io.BytesIO(b"y" * 101), 100)
    assert caught.value.reason is Reason.TOO_LARGE


# ---------------------------------------------------------------------------------------- archives


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name), data)
    return path


def test_zip_members_are_sources(tmp_path):
    archive = _zip(tmp_path / "batch.zip", {"z/2.jpg": b"two", "a/1.jpg": b"one", "__MACOSX/a/._1.jpg": b"x", "a/.hidden": b"h"})
    sources = list_inputs(archive)
    assert sources == [f"{archive}//a/1.jpg", f"{archive}//z/2.jpg"]
    with InputReader() as reader:
        assert [reader.read(s) for s in sources] == [b"one", b"two"]


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_tar_members_are_sources_in_archive_order(tmp_path, suffix, mode):
    archive = tmp_path / f"batch{suffix}"
    with tarfile.open(archive, mode) as bundle:
        for name, data in {"x/b.jpg": b"bee", "x/a.jpg": b"ay"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    sources = list_inputs(archive)
    assert sources == [f"{archive}//x/b.jpg", f"{archive}//x/a.jpg"]  # as stored: read in one pass
    with InputReader() as reader:
        assert [reader.read(s) for s in sources] == [b"bee", b"ay"]
        assert reader.read(sources[0]) == b"bee"  # reading behind the stream position still works


def test_unsafe_zip_member_names_are_refused(tmp_path):
    archive = _zip(tmp_path / "evil.zip", {"../evil.jpg": b"e", "/etc/abs.jpg": b"a", "C:\\win.jpg": b"w", "ok.jpg": b"ok"})
    with InputReader() as reader:
        for member in ("../evil.jpg", "/etc/abs.jpg", "C:\\win.jpg"):
            assert _reject(reader, f"{archive}//{member}").reason is Reason.UNSAFE_PATH
        assert reader.read(f"{archive}//ok.jpg") == b"ok"


def test_zip_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = zipfile.ZipInfo("link.jpg")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        bundle.writestr(info, "/etc/passwd")
    error = _reject(f"{archive}//link.jpg")
    assert error.reason is Reason.UNSAFE_PATH and "symbolic link" in error.detail


def test_tar_links_and_special_files_are_refused(tmp_path):
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as bundle:
        for name, kind in (("sym.jpg", tarfile.SYMTYPE), ("hard.jpg", tarfile.LNKTYPE), ("dev.jpg", tarfile.CHRTYPE), ("fifo.jpg", tarfile.FIFOTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            bundle.addfile(info)
    sources = list_inputs(archive)
    assert len(sources) == 4
    with InputReader() as reader:
        assert {_reject(reader, s).reason for s in sources} == {Reason.UNSAFE_PATH}


def test_zip_member_claiming_1gb_is_refused_from_its_header_without_reading(tmp_path):
    archive = _zip(tmp_path / "claims.zip", {"big.jpg": b"\0" * 1000})
    data = bytearray(archive.read_bytes())
    data[data.index(b"PK\x03\x04") + 22 : data.index(b"PK\x03\x04") + 26] = (1 << 30).to_bytes(4, "little")
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1 << 30).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    error, peak = traced_peak(lambda: _reject(f"{archive}//big.jpg"))
    assert error.reason is Reason.TOO_LARGE and "1,073,741,824" in error.detail
    assert peak < 5 << 20


def test_zip_member_whose_header_understates_its_size_is_never_returned(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("zeros.jpg", b"\0" * 5_000_000)
    with InputReader(max_bytes=1_000_000) as reader:
        info = reader._archive(str(archive)).infos["zeros.jpg"]
        info.file_size = 10  # the header lies low: reading stops at 10 bytes and the CRC check fails
        with pytest.raises(InputRejected) as caught:
            reader.read(f"{archive}//zeros.jpg")
    assert caught.value.reason is Reason.UNREADABLE


def test_tar_member_larger_than_max_bytes_is_too_large(tmp_path):
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as bundle:
        info = tarfile.TarInfo("big.jpg")
        info.size = 5000
        bundle.addfile(info, io.BytesIO(b"\0" * 5000))
    error = _reject(f"{archive}//big.jpg", max_bytes=4000)
    assert error.reason is Reason.TOO_LARGE


def test_broken_zip_member_is_unreadable(tmp_path):
    archive = tmp_path / "crc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        bundle.writestr("photo.jpg", b"original bytes here")
    data = archive.read_bytes().replace(b"original bytes here", b"tampered bytes here")
    archive.write_bytes(data)
    error = _reject(f"{archive}//photo.jpg")
    assert error.reason is Reason.UNREADABLE and "BadZipFile" in error.detail


def test_missing_member_and_missing_archive_are_unreadable(tmp_path):
    archive = _zip(tmp_path / "a.zip", {"x.jpg": b"x"})
    assert _reject(f"{archive}//nope.jpg").reason is Reason.UNREADABLE
    assert _reject(f"{tmp_path}/gone.zip//x.jpg").reason is Reason.UNREADABLE


def test_unopenable_archive_lists_one_unreadable_source(tmp_path):
    archive = tmp_path / "corrupt.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    assert list_inputs(archive) == [f"{archive}//"]
    error = _reject(f"{archive}//")
    assert error.reason is Reason.UNREADABLE


def test_damaged_tar_keeps_its_good_members_and_adds_an_unreadable_marker(tmp_path):
    archive = tmp_path / "cut.tar"
    with tarfile.open(archive, "w") as bundle:
        for index in range(3):
            info = tarfile.TarInfo(f"p{index}.jpg")
            info.size = 3000
            bundle.addfile(info, io.BytesIO(bytes([index]) * 3000))
    data = archive.read_bytes()
    archive.write_bytes(data[: 512 + 3072 + 512 + 1000])  # cut inside the second member's data
    sources = list_inputs(archive)
    assert sources[-1] == f"{archive}//"
    with InputReader() as reader:
        assert reader.read(f"{archive}//p0.jpg") == b"\0" * 3000
        error = _reject(reader, f"{archive}//")
        assert error.reason is Reason.UNREADABLE and "damaged" in error.detail


def test_member_names_with_separator_characters(tmp_path):
    archive = _zip(tmp_path / "odd.zip", {"wow!/x!.jpg": b"bang"})
    (source,) = list_inputs(archive)
    assert split_source(source) == (str(archive), "wow!/x!.jpg")
    assert read_bytes(source) == b"bang"


def test_member_name_problem_rules():
    assert member_name_problem("a/b/c.jpg") is None
    assert member_name_problem("a/..b/c.jpg") is None  # only a whole '..' component escapes
    for name in ("../x", "a/../../x", "/abs", "C:/x", "a\\..\\x", "nul\x00.jpg"):
        assert member_name_problem(name) is not None, name


# ------------------------------------------------------------------------------------------ reader


def test_reader_keeps_a_bounded_lru_of_open_archives(tmp_path):
    first = _zip(tmp_path / "1.zip", {"a.jpg": b"1"})
    second = _zip(tmp_path / "2.zip", {"a.jpg": b"2"})
    with InputReader(max_open_archives=1) as reader:
        for _ in range(3):
            assert reader.read(f"{first}//a.jpg") == b"1"
            assert reader.read(f"{second}//a.jpg") == b"2"
            assert len(reader._archives) == 1


def test_reader_reopens_an_archive_replaced_on_disk(tmp_path):
    archive = _zip(tmp_path / "r.zip", {"a.jpg": b"old"})
    with InputReader() as reader:
        assert reader.read(f"{archive}//a.jpg") == b"old"
        _zip(tmp_path / "r.zip", {"a.jpg": b"newer"})
        assert reader.read(f"{archive}//a.jpg") == b"newer"


def test_reader_pickles_without_open_archives(tmp_path):
    archive = _zip(tmp_path / "p.zip", {"a.jpg": b"x"})
    reader = InputReader(root=tmp_path, max_bytes=123)
    reader.read(f"{archive}//a.jpg")
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.max_bytes == 123 and clone.root == reader.root and not clone._archives
    assert clone.read(f"{archive}//a.jpg") == b"x"
    reader.close()


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"max_open_archives": 0}])
def test_reader_validates_its_settings(kwargs):
    with pytest.raises(ValueError):
        InputReader(**kwargs)


# -------------------------------------------------------------------------------------- list files


def test_list_file_resolves_relative_entries_expands_folders_and_archives(tmp_path, folder):
    archive = _zip(tmp_path / "more.zip", {"m.jpg": b"m"})
    (tmp_path / "single.jpg").write_bytes(b"s")
    listing = tmp_path / "inputs.lst"
    listing.write_text(
        "# photos for the run\n"
        "single.jpg\n"
        "\n"
        "photos\n"
        "more.zip\n"
        f"{archive}//m.jpg\n"  # already listed through the archive: kept once
        "missing.jpg\n"
        "single.jpg\n",
        encoding="utf-8",
    )
    sources = list_inputs(listing)
    assert sources[0] == str(tmp_path / "single.jpg")
    assert sources[1 : 1 + len(list_inputs(folder))] == list_inputs(folder)
    assert f"{archive}//m.jpg" in sources and sources.count(f"{archive}//m.jpg") == 1
    assert sources[-1] == str(tmp_path / "missing.jpg")  # kept: it becomes an unreadable row
    assert len(sources) == len(set(sources))


def test_txt_list_with_bom_and_crlf(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"a")
    listing = tmp_path / "list.txt"
    listing.write_bytes("\ufeffa.jpg\r\n# c\r\n".encode("utf-8"))
    assert list_inputs(listing) == [str(tmp_path / "a.jpg")]


def test_printable_source_escapes_non_utf8_names():
    assert printable_source("/p/फोटो.jpg") == "/p/फोटो.jpg"
    raw = os.fsdecode(b"/p/caf\xe9.jpg")
    assert printable_source(raw) == "/p/caf\\xe9.jpg"
    printable_source(raw).encode("utf-8")


# ------------------------------------------------------------------------- names and addresses


def test_printable_source_is_one_to_one_and_reversible():
    from dataset.sources import source_from_printable

    rng = np.random.default_rng(13)
    alphabet = ["a", "/", "\\", "x", "f", "0", "\n", "\x00", "\x1b", "\x7f", "\x85", "\u202e", "\u200d", "क",
                "\udcff", "\udc80", "\ud800", "!", "é"]
    seen: dict[str, str] = {}
    for _ in range(3000):
        source = "".join(rng.choice(alphabet, size=int(rng.integers(0, 8))))
        text = printable_source(source)
        assert seen.setdefault(text, source) == source, "two sources share a printable form"
        assert source_from_printable(text) == source
        text.encode("utf-8")
        assert "\n" not in text and "\x1b" not in text and "\u202e" not in text
    assert printable_source("/p/फोटो\u200d.jpg") == "/p/फोटो\u200d.jpg"  # Indic text and joiners stay readable


@pytest.mark.parametrize("text", ["a\\", "\\q", "\\x41", "new\nline", "\\u0041"])
def test_source_from_printable_refuses_text_printable_source_cannot_produce(text):
    from dataset.sources import source_from_printable

    with pytest.raises(ValueError):
        source_from_printable(text)


def test_member_address_splits_at_the_first_double_slash():
    assert split_source("/data/a.zip//photos/x.jpg") == ("/data/a.zip", "photos/x.jpg")
    assert split_source("/data/a.zip//dir//x!.jpg") == ("/data/a.zip", "dir//x!.jpg")
    assert split_source("/data/a.zip//") == ("/data/a.zip", "")  # the damage marker
    assert split_source("/data/pack.zip!member.jpg") == ("/data/pack.zip!member.jpg", None)
    assert split_source("//host/a.jpg") == ("//host/a.jpg", None)  # POSIX keeps a leading //
    assert split_source("//host/a.tar//m.jpg") == ("//host/a.tar", "m.jpg")


def test_list_entries_an_existing_path_wins_over_an_address(tmp_path):
    folder = tmp_path / "odd.zip"  # a folder that looks like an archive
    folder.mkdir()
    (folder / "x.jpg").write_bytes(b"file in a folder")
    _zip(tmp_path / "real.zip", {"m.jpg": b"member", "other.jpg": b"not named"})
    listing = tmp_path / "inputs.txt"
    listing.write_text("odd.zip//x.jpg\nreal.zip//m.jpg\nmissing.zip//m.jpg\n")
    sources = list_inputs(listing)
    assert sources == [str(folder / "x.jpg"), f"{tmp_path}/real.zip//m.jpg", f"{tmp_path}/missing.zip//m.jpg"]
    with InputReader() as reader:
        assert [reader.read(s) for s in sources[:2]] == [b"file in a folder", b"member"]
        assert _reject(reader, sources[2]).reason is Reason.UNREADABLE


def test_details_name_neither_paths_nor_contents(tmp_path):
    secret_dir = tmp_path / "SECRETDIR"
    secret_dir.mkdir()
    archive = _zip(secret_dir / "a.zip", {"../evil.jpg": b"x"})
    with InputReader() as reader:
        details = [_reject(reader, s).detail for s in (str(secret_dir / "gone.jpg"), str(secret_dir),
                                                          f"{archive}//../evil.jpg", f"{archive}//nope.jpg")]
    assert all("SECRETDIR" not in d and "evil" not in d for d in details), details


# -------------------------------------------------------------------------------- archives (more)


def test_a_repeated_name_reads_its_first_copy_in_zip_and_tar(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        archive = _zip(tmp_path / "dup.zip", {})
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("a.jpg", b"first")
            bundle.writestr("a.jpg", b"second")
    tar = tmp_path / "dup.tar.gz"
    with tarfile.open(tar, "w:gz") as bundle:
        for data in (b"first", b"second"):
            info = tarfile.TarInfo("a.jpg")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    for path in (archive, tar):
        (source,) = list_inputs(path)
        assert read_bytes(source) == b"first"


def test_tar_reader_keeps_headers_not_data(tmp_path):
    archive = tmp_path / "many.tar"
    with tarfile.open(archive, "w") as bundle:
        for index in range(200):
            info = tarfile.TarInfo(f"p{index:03d}.jpg")
            info.size = 10_000
            bundle.addfile(info, io.BytesIO(bytes([index % 256]) * 10_000))
    sources = list_inputs(archive)
    with InputReader() as reader:
        assert reader.read(sources[150]) == bytes([150]) * 10_000
        handle = reader._archives[str(archive)]
        assert len(handle.headers) == 151 and not handle.tar.members  # stopped at the member; tarfile's list emptied
        assert reader.read(sources[3]) == bytes([3]) * 10_000  # behind the stream: a seek back
        assert [reader.read(s)[0] for s in sources[151:]] == list(range(151, 200))


# ------------------------------------------------------------------------- preprocess outputs


def test_is_preprocess_output_needs_a_readable_manifest_object(tmp_path):
    import json

    from dataset.shards import read_shards
    from dataset.sources import is_preprocess_output

    assert not is_preprocess_output(tmp_path / "nope")
    assert not is_preprocess_output(tmp_path)  # no manifest
    manifest = tmp_path / "manifest.json"
    for text in ('["preprocess"]', '{"job": "Preprocess"}', '"preprocess"', " " * (17 << 20)):
        manifest.write_text(text)
        assert not is_preprocess_output(tmp_path), text[:20]
    manifest.write_text(json.dumps({"job": "preprocess"}))
    assert is_preprocess_output(tmp_path) and is_preprocess_output(str(tmp_path))
    assert not is_preprocess_output(manifest)  # a file is not an output folder
    manifest.unlink()
    os.mkfifo(manifest)
    assert not is_preprocess_output(tmp_path)  # never blocks on a FIFO
    (tmp_path / "shards").mkdir()
    assert read_shards(tmp_path / "shards").num_rows == 0
