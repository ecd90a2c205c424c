"""The shared bad-input corpus: one builder every job's tests run against.

`build_corpus(dest, package_photos)` writes, under `dest`:

    files/      plain files (good photos in every format and mode, malformed and hostile files, face edge
                cases, names that are not UTF-8 or look like archive members, a FIFO, a sparse 65 MiB file)
    archives/   unsafe.zip (``../``, absolute and empty members), bombs.zip (a member whose header claims
                1 GiB, a real 80 MiB run of zeros), links.tar (symbolic link, hard link, FIFO,
                character device), odd.zip (member names with ``//``, ``!``, cp437 bytes, a repeated
                name, an encrypted member, a nested zip), ordered.tar.gz (members stored out of name
                order, a repeated name), cut.tar.gz (damaged after its first member), addressed.zip
                (named member by member in the list file)
    inputs.lst  a list file naming ``files/``, the archives, single members (``ARCHIVE//MEMBER``), a
                missing file, a ``!`` name that does not exist, ``/proc/self/environ`` and an entry with a
                NUL byte: `list_inputs(corpus_input(dest))` yields exactly the sources of the returned
                cases (run jobs on this file; run on `dest` itself and the archives and the list are
                plain non-image files)

and returns one `CorpusCase` per source. Stages:

- ``decode``: rejected while reading or decoding; `expected_reasons` holds the one exact reason
  (with the default limits: `max_bytes` 64 MiB, `max_pixels` 40 M, `min_side` 32).
- ``ok``: a face photo that must decode and align (`expected_status` "ok").
- ``face``: decodes; the outcome depends on face detection, so `expected_reasons` lists every
  honest outcome ("" stands for ok) and `expected_status` is None when both ok and rejected are fine.

`secret`, when set, is text from the file's contents that must never appear in a row's detail.
Everything is deterministic (seeded), so ids (sha256 of the bytes) are stable between runs (except
``/proc/self/environ``, whose bytes are the reading process's environment). Hostile files are built
small: a bomb is a few KB to a few MB that *claims* or *demands* far more.
"""
from __future__ import annotations

import functools
import io
import os
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

OK = ""  # the reason of an ok row
UNICODE_NAME = "अंतरिक्ष_यात्री_फ़ोटो.jpg"  # Hindi: "astronaut photo"
NOT_UTF8_NAME = os.fsdecode(b"x\xff.jpg")  # the byte 0xff is not UTF-8
ESCAPE_LOOKALIKE_NAME = "x\\xff.jpg"  # a backslash, then "xff": what a careless escape turns the name above into
SECRET = "SECRET_TOKEN_7f3a9c1e"
LONG_NAME = "long_" + "x" * 195 + ".jpg"  # 204 characters
ASTRONAUT_FACE = (178, 83, 273, 178)  # x0, y0, x1, y1 of the face in skimage's astronaut (MediaPipe box)


@dataclass(frozen=True)
class CorpusCase:
    name: str
    source: str  # exactly as `dataset.sources.list_inputs` yields it
    stage: str  # "decode" | "face" | "ok"
    expected_status: str | None  # "ok" / "rejected"; None when either is an honest outcome
    expected_reasons: frozenset[str]  # acceptable reason codes, "" for ok
    min_faces: int = 0  # when the row is ok: at least this many faces were found
    note: str = ""
    path: str = ""  # relative to the corpus folder: "files/notes.jpg", "archives/unsafe.zip//../escape.jpg"
    secret: str = ""  # text of the file's contents that no detail may echo

    @property
    def expected_reason(self) -> frozenset[str]:
        """The acceptable reason codes (alias of `expected_reasons`)."""
        return self.expected_reasons

    def accepts(self, status: str, reason: str | None, num_faces: int | None = None) -> bool:
        """Whether a row with this status, reason (and face count, when given) is acceptable."""
        reason = reason or OK
        if self.expected_status is not None and status != self.expected_status:
            return False
        if status == "ok" and num_faces is not None and num_faces < max(1, self.min_faces):
            return False
        return (status == "ok") == (reason == OK) and reason in self.expected_reasons


def corpus_input(dest: str | os.PathLike) -> Path:
    """The list file that names every corpus input."""
    return Path(dest) / "inputs.lst"


def build_corpus(dest: str | os.PathLike, package_photos: dict[str, np.ndarray]) -> list[CorpusCase]:
    """Write the corpus under `dest` (see the module docstring) and return its cases."""
    dest = Path(os.path.abspath(dest))
    files = dest / "files"
    archives = dest / "archives"
    files.mkdir(parents=True, exist_ok=True)
    archives.mkdir(parents=True, exist_ok=True)
    astronaut = package_photos["astronaut"]
    hopper = package_photos["grace_hopper"]
    rng = np.random.default_rng(20240601)
    cases: list[CorpusCase] = []

    def add(name, filename, data, stage, status, reasons, **extra):
        path = files / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        cases.append(CorpusCase(name, str(path), stage, status, frozenset(reasons), **extra))

    def decode_fail(name, filename, data, reason, note="", secret=""):
        add(name, filename, data, "decode", "rejected", {reason}, note=note, secret=secret)

    def good(name, filename, data, note=""):
        add(name, filename, data, "ok", "ok", {OK}, note=note)

    def face(name, filename, data, reasons, note="", min_faces=0):
        statuses = {"ok" if r == OK else "rejected" for r in reasons}
        status = statuses.pop() if len(statuses) == 1 else None
        add(name, filename, data, "face", status, reasons, note=note, min_faces=min_faces)

    jpeg_astronaut = _encode(astronaut, "JPEG", quality=92)
    hopper_jpeg = _encode(hopper, "JPEG", quality=90)

    # ---- rejected while reading or decoding (exact reasons)
    decode_fail("zero_bytes", "zero_bytes.jpg", b"", "unreadable")
    decode_fail("truncated_jpeg", "truncated.jpg", jpeg_astronaut[: len(jpeg_astronaut) // 2], "truncated")
    decode_fail("text_named_jpg", "notes.jpg", b"This is a shopping list, not a photo.\nmilk\nrice\n", "not_an_image")
    decode_fail("html_named_png", "page.png", b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n", "not_an_image")
    decode_fail("random_bytes", "random.jpg", b"\x00\x01RND" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not_an_image")
    decode_fail("svg", "vector.svg", _svg(), "unsupported_format")
    decode_fail("gif_animation", "animation.gif", _gif(astronaut), "unsupported_format", note="GIF is refused, not first-framed")
    decode_fail("heic", "photo.heic", _heic_header(), "unsupported_format")
    decode_fail("png_header_100k", "bomb_100k.png", _png_claiming(100_000, 100_000), "too_large")
    decode_fail("jpeg_header_65k", "bomb_65k.jpg", _jpeg_claiming(jpeg_astronaut, 65_500, 65_500), "too_large")
    decode_fail("one_pixel", "one_pixel.png", _encode(astronaut[:1, :1], "PNG"), "too_small")
    decode_fail("corrupt_png_stream", "corrupt_stream.png", _png_with_garbage_data(), "unreadable")

    # ---- hostile files (issue 13): limits walked around, bombs, contents that must not be echoed
    decode_fail("tiff_size_tags_twice", "size_tags_twice.tiff", tiff_size_tags_twice((7000, 7000), (100, 100)), "too_large",
                note="float RGB; width/height tags 7000 first (libtiff, OpenCV) and 100 last (Pillow)")
    decode_fail("jpeg_scan_bomb", "scan_bomb.jpg", jpeg_scan_bomb(astronaut, repeats=100_000), "decode_limit",
                note="progressive JPEG whose last AC scan is repeated 100,000 times")
    decode_fail("jpeg_second_frame_header", "two_frames.jpg", jpeg_second_frame_header(jpeg_astronaut, 65_000, 65_000), "too_large",
                note="a second SOF claiming 65000x65000 after the real one")
    decode_fail("png_iccp_bomb", "iccp_bomb.png", png_chunk_bomb(astronaut, b"iCCP"), "too_large", note="iCCP inflates to 50 MB")
    decode_fail("png_ztxt_bomb", "ztxt_bomb.png", png_chunk_bomb(astronaut, b"zTXt"), "too_large", note="zTXt before IDAT inflates to 50 MB")
    decode_fail("png_itxt_bomb", "itxt_bomb.png", png_chunk_bomb(astronaut, b"iTXt"), "too_large", note="compressed iTXt inflates to 50 MB")
    decode_fail("png_ztxt_bomb_after_idat", "ztxt_after_idat.png", png_chunk_bomb(astronaut, b"zTXt", after_idat=True), "too_large")
    decode_fail("png_chunk_flood", "chunk_flood.png", png_chunk_flood(astronaut, 200_000), "decode_limit",
                note="200,000 empty ancillary chunks (Pillow walks chunks in Python)")
    decode_fail("png_exif_table_bomb", "exif_table.png", png_exif_table_bomb(astronaut, 1_100_000), "decode_limit",
                note="eXIf IFD with a 1,100,000-number table")
    decode_fail("png_bad_crc", "bad_crc.png", png_bad_crc(astronaut), "unreadable")
    decode_fail("webp_canvas_claims_huge", "huge_canvas.webp", webp_claiming(_encode(astronaut, "WEBP", quality=80), 16000, 16000), "too_large")
    decode_fail("bmp_header_claims_huge", "huge.bmp", bmp_claiming(30_000, 30_000), "too_large")
    decode_fail("bmp_rle_bomb", "rle_bomb.bmp", bmp_rle(3000, 3000, rle4=True, ops=(b"\x01\x11\x00\x00" * 3000) + b"\x00\x01"), "decode_limit",
                note="RLE4, 9 MP, one pixel then end-of-line per row (Pillow's RLE decoder is pure Python)")
    decode_fail("tiff_directory_flood", "directory_flood.tiff", tiff_directory_flood(), "unreadable",
                note="BigTIFF directory claiming 2^40 entries")
    decode_fail("tiff_strip_table_bomb", "strip_table.tiff", tiff_strip_table_bomb(1_100_000), "decode_limit",
                note="StripOffsets with 1,100,000 numbers for a 64x64 image")
    decode_fail("secrets_in_a_jpg", "secrets.jpg", f"API_KEY={SECRET}\nPATH=/usr/bin\n".encode(), "not_an_image",
                note="environment-like text: no detail may quote it", secret=SECRET)
    decode_fail("zip_as_a_plain_file", "pack.zip", _zip_bytes({"member.jpg": jpeg_astronaut}), "not_an_image",
                note="archives inside a folder are plain files")
    decode_fail("bang_name_text_beside_zip", "pack.zip!member.jpg", f"text, not the zip's member {SECRET}".encode(),
                "not_an_image", note="a path that exists is that file, even next to pack.zip", secret=SECRET)
    decode_fail("sparse_file_over_limit", "sparse_65mb.jpg", b"", "too_large", note="65 MiB (sparse) > max_bytes")
    os.truncate(files / "sparse_65mb.jpg", 65 << 20)
    fifo = files / "pipe.jpg"
    os.mkfifo(fifo)
    cases.append(CorpusCase("fifo_in_folder", str(fifo), "decode", "rejected", frozenset({"unsafe_path"}),
                            note="a FIFO: refused without blocking"))

    # ---- good photos: every format and pixel mode we convert
    good("astronaut_jpeg", "astronaut.jpg", jpeg_astronaut)
    good("grace_hopper_png", "grace_hopper.png", _encode(hopper, "PNG"))
    good("wrong_extension", "png_bytes.jpg", _encode(hopper, "PNG"), note="PNG bytes named .jpg")
    good("exif_rotated", "exif_rotated.jpg", _exif_rotated(astronaut), note="stored turned 90°, EXIF orientation 6")
    good("greyscale", "greyscale.jpg", _encode(_grey(hopper), "JPEG", quality=92))
    good("cmyk_jpeg", "cmyk.jpg", _encode_pil(astronaut, "CMYK", "JPEG", quality=92))
    good("alpha_png", "alpha.png", _alpha_png(astronaut))
    good("palette_png", "palette.png", _palette_png(hopper))
    good("webp", "photo.webp", _encode(astronaut, "WEBP", quality=90))
    good("bmp", "photo.bmp", _encode(hopper, "BMP"))
    good("scaled_down", "scaled_down.jpg", _encode(_resize(astronaut, 0.5), "JPEG", quality=92))
    good("scaled_up", "scaled_up.jpg", _encode(_resize(hopper, 2.0), "JPEG", quality=92))
    good("tiff_16bit_rgb", "rgb48.tiff", _cv2_encode(".tiff", astronaut.astype(np.uint16) * 257))
    good("tiff_16bit_grey", "grey16.tiff", _cv2_encode(".tiff", _grey(hopper).astype(np.uint16) * 257))
    good("png_16bit_rgb", "rgb48.png", _cv2_encode(".png", hopper.astype(np.uint16) * 257))
    good("tiff_float", "float32.tiff", _cv2_encode(".tiff", _grey(astronaut).astype(np.float32) / 255.0))
    good("exif_garbage", "exif_garbage.jpg", _with_exif(astronaut, b"Exif\x00\x00" + rng.integers(0, 256, 60_000, dtype=np.uint8).tobytes()))
    good("exif_bomb", "exif_bomb.jpg", _with_exif(astronaut, _exif_bomb()), note="IFD claims 65535 entries")
    good("unicode_name", UNICODE_NAME, _encode(hopper, "JPEG", quality=90))
    good("long_name", LONG_NAME, _encode(astronaut, "JPEG", quality=90))
    good("duplicate_a", "duplicate_a.jpg", jpeg_astronaut, note="same bytes as duplicate_b")
    good("duplicate_b", "duplicate_b.jpg", jpeg_astronaut, note="same bytes as duplicate_a")
    good("progressive_jpeg", "progressive.jpg", _encode(astronaut, "JPEG", quality=90, progressive=True))
    good("jpeg_trailing_garbage", "trailing_garbage.jpg", jpeg_astronaut + b"\x00garbage after the end marker" * 20)
    good("mpo_two_frames", "two_frames.mpo", _encode_frames(hopper, "MPO"), note="multi-picture JPEG: first frame")
    good("webp_lossless", "lossless.webp", _encode(hopper, "WEBP", lossless=True))
    good("animated_webp", "animated.webp", _encode_frames(astronaut, "WEBP", quality=85), note="first frame")
    good("apng", "animated.png", _encode_frames(hopper, "PNG"), note="first frame")
    good("png_small_srgb_iccp", "srgb_profile.png", _encode(hopper, "PNG", icc_profile=_srgb_profile()))
    good("tiff_lzw", "lzw.tiff", _encode(astronaut, "TIFF", compression="tiff_lzw"))
    good("tiff_jpeg_compressed", "jpeg_compressed.tiff", _encode(hopper, "TIFF", compression="jpeg"))
    good("tiff_multipage", "multipage.tiff", _encode_frames(astronaut, "TIFF"), note="first page")
    good("bigtiff", "big.tiff", _encode(hopper, "TIFF", big_tiff=True))
    good("bmp_top_down", "top_down.bmp", bmp_top_down(astronaut))
    good("not_utf8_name", NOT_UTF8_NAME, _encode(astronaut, "JPEG", quality=88), note="file name bytes are not UTF-8")
    good("escape_lookalike_name", ESCAPE_LOOKALIKE_NAME, _encode(astronaut, "JPEG", quality=87),
         note="must stay a different source (and row) from the name above")
    good("bang_name_real_jpeg", "other.zip!x.jpg", _encode(hopper, "JPEG", quality=88), note="no other.zip exists")
    good("newline_in_name", "line\nbreak.jpg", _encode(hopper, "JPEG", quality=87))
    good("bidi_override_name", "\u202egpj.exe.jpg", _encode(astronaut, "JPEG", quality=86), note="right-to-left override")
    good("format_string_name", "{source}%s%n.jpg", _encode(hopper, "JPEG", quality=86))
    good("backslash_name", "back\\slash.jpg", _encode(astronaut, "JPEG", quality=85))
    good("photo_in_shards_folder", "shards/in_a_folder_named_shards.jpg", _encode(hopper, "JPEG", quality=85),
         note="a subfolder named shards is just a folder")
    face("bmp_rle8_photo", "rle8.bmp", bmp_rle8_photo(astronaut), {OK, "no_face"}, note="palette RLE8 BMP")

    # ---- decodes; the outcome depends on face detection
    face("noise", "noise.png", _encode(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), "PNG"), {"no_face"})
    face("tiny_face", "tiny_face.jpg", _tiny_face(astronaut), {"no_face", "face_too_small"})
    face("two_faces", "two_faces.jpg", _encode(_side_by_side([astronaut, hopper]), "JPEG", quality=92), {OK}, min_faces=2)
    face("five_faces", "five_faces.jpg", _encode(_five_faces(astronaut, hopper), "JPEG", quality=92), {OK}, min_faces=5)
    face("face_cut_by_frame", "cut_by_frame.jpg", _encode(_cut_by_frame(astronaut), "JPEG", quality=92),
         {OK, "no_face", "landmarks_failed", "face_too_small"})
    face("cartoon", "cartoon.png", _encode(_cartoon(hopper), "PNG"), {OK, "no_face", "landmarks_failed"})
    face("extreme_profile", "half_face.jpg", _encode(_half_face(astronaut), "JPEG", quality=92),
         {OK, "no_face", "landmarks_failed", "face_too_small"}, note="only one side of the face is visible")
    face("sideways", "sideways_no_exif.jpg", _encode(np.rot90(astronaut).copy(), "JPEG", quality=92),
         {OK, "no_face", "landmarks_failed"}, note="turned 90° with no EXIF tag")

    # ---- archives
    member = lambda archive, name: f"{archive}//{name}"  # noqa: E731 - the member address, spelled out
    archive_case = lambda name, source, reason, **extra: CorpusCase(  # noqa: E731
        name, source, "ok" if reason == OK else "decode", "ok" if reason == OK else "rejected", frozenset({reason}), **extra)
    unsafe = archives / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as bundle:
        bundle.writestr(zipfile.ZipInfo("../escape.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("/absolute/escape.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("good/astronaut.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("empty.jpg"), b"")
    cases += [
        archive_case("zip_dotdot_member", member(unsafe, "../escape.jpg"), "unsafe_path"),
        archive_case("zip_absolute_member", member(unsafe, "/absolute/escape.jpg"), "unsafe_path"),
        archive_case("zip_good_member", member(unsafe, "good/astronaut.jpg"), OK),
        archive_case("zip_empty_member", member(unsafe, "empty.jpg"), "unreadable"),
    ]
    bombs = archives / "bombs.zip"
    _write_bombs_zip(bombs)
    cases += [
        archive_case("zip_member_claims_1gb", member(bombs, "claims_1gb.jpg"), "too_large"),
        archive_case("zip_bomb_80mb", member(bombs, "zeros_80mb.jpg"), "too_large"),
    ]
    links = archives / "links.tar"
    _write_links_tar(links, hopper_jpeg)
    cases += [
        archive_case("tar_symlink", member(links, "link_to_passwd.jpg"), "unsafe_path"),
        archive_case("tar_hardlink", member(links, "hardlink.jpg"), "unsafe_path"),
        archive_case("tar_fifo", member(links, "fifo.jpg"), "unsafe_path"),
        archive_case("tar_device", member(links, "device.jpg"), "unsafe_path"),
        archive_case("tar_good_member", member(links, "good/grace_hopper.jpg"), OK),
    ]
    variant = lambda rgb, quality: _encode(rgb, "JPEG", quality=quality)  # noqa: E731 - distinct bytes, distinct ids
    odd = archives / "odd.zip"
    _write_odd_zip(odd, [variant(astronaut, 83), variant(hopper, 82), variant(astronaut, 81), variant(hopper, 80)])
    cases += [
        archive_case("zip_member_name_with_double_slash", member(odd, "dir//double.jpg"), OK,
                     note="the address splits at the first //"),
        archive_case("zip_member_name_with_bang", member(odd, "wow!/x!.jpg"), OK),
        archive_case("zip_member_cp437_name", member(odd, "caf\u00e9.jpg"), OK, note="name stored without the UTF-8 flag"),
        archive_case("zip_repeated_name_reads_first_copy", member(odd, "twice.jpg"), OK, note="second copy is text"),
        archive_case("zip_encrypted_member", member(odd, "encrypted.jpg"), "unreadable"),
        archive_case("zip_nested_zip_member", member(odd, "inner.zip"), "not_an_image"),
    ]
    ordered = archives / "ordered.tar.gz"
    _write_tar(ordered, "w:gz", [("z_first.jpg", variant(hopper, 79)), ("a_second.txt", b"plain text member"),
                                 ("m/twice.jpg", variant(astronaut, 78)), ("m/twice.jpg", b"second copy: text")])
    cases += [
        archive_case("tgz_member_stored_first", member(ordered, "z_first.jpg"), OK, note="listed in archive order"),
        archive_case("tgz_text_member", member(ordered, "a_second.txt"), "not_an_image"),
        archive_case("tgz_repeated_name_reads_first_copy", member(ordered, "m/twice.jpg"), OK),
    ]
    cut = archives / "cut.tar.gz"
    _write_cut_tgz(cut, variant(hopper, 77))
    cases += [
        archive_case("tgz_member_before_damage", member(cut, "before_damage.jpg"), OK),
        archive_case("tgz_member_cut_by_damage", member(cut, "cut.bin"), "unreadable"),
        archive_case("tgz_damage_marker", member(cut, ""), "unreadable", note="the damage is one unreadable row"),
    ]
    addressed = archives / "addressed.zip"
    with zipfile.ZipFile(addressed, "w") as bundle:
        bundle.writestr("good.jpg", _encode(hopper, "JPEG", quality=84))
        bundle.writestr("not_listed.jpg", jpeg_astronaut)
    cases.append(archive_case("list_entry_member_address", member(addressed, "good.jpg"), OK,
                              note="named in the list file as archives/addressed.zip//good.jpg"))

    # ---- list-file entries that name no usable file
    list_entries = {
        "list_entry_missing_file": ("missing_entry.jpg", "unreadable", ""),
        "list_entry_missing_bang_name": ("gone.zip!x.jpg", "unreadable", ""),
        "list_entry_nul_byte": ("nul\x00byte.jpg", "unsafe_path", ""),
        "list_entry_proc_self_environ": ("/proc/self/environ", "not_an_image", "PATH="),
    }
    for name, (entry, reason, secret) in list_entries.items():
        source = os.path.abspath(os.path.join(dest, entry))
        cases.append(CorpusCase(name, source, "decode", "rejected", frozenset({reason}), secret=secret))

    corpus_input(dest).write_text(
        "# The corpus: every file under files/, every member of each archive, and single entries.\n"
        "files\n\narchives/unsafe.zip\narchives/bombs.zip\narchives/links.tar\narchives/odd.zip\n"
        "archives/ordered.tar.gz\narchives/cut.tar.gz\narchives/addressed.zip//good.jpg\n"
        + "".join(entry + "\n" for entry, _, _ in list_entries.values()),
        encoding="utf-8",
    )
    return [replace(case, path=_relative(case.source, dest)) for case in cases]


def _relative(source: str, dest: Path) -> str:
    """`source` relative to the corpus folder, as written (a member address keeps its ``//``)."""
    prefix = str(dest) + os.sep
    return source[len(prefix) :] if source.startswith(prefix) else os.path.relpath(source, dest)


# ------------------------------------------------------------------------------------ hostile files


def tiff_size_tags_twice(first: tuple[int, int], last: tuple[int, int]) -> bytes:
    """A float32 RGB TIFF (Pillow cannot open it) whose ImageWidth/ImageLength tags appear twice.

    Every strip is the same deflated row, so a 7000x7000 image (588 MB of floats) is a 60 KB file.
    """
    width, height = first
    row = zlib.compress(b"\0" * (width * 12), 9)
    blob_at = 8
    offsets_at = blob_at + len(row)
    counts_at = offsets_at + 4 * height
    bits_at = counts_at + 4 * height
    formats_at = bits_at + 6
    ifd_at = formats_at + 6
    body = (row + struct.pack(f"<{height}I", *([blob_at] * height)) + struct.pack(f"<{height}I", *([len(row)] * height))
            + struct.pack("<3H", 32, 32, 32) + struct.pack("<3H", 3, 3, 3))
    entries = [
        (256, 4, 1, struct.pack("<I", width)), (257, 4, 1, struct.pack("<I", height)),
        (258, 3, 3, struct.pack("<I", bits_at)), (259, 3, 1, struct.pack("<HH", 8, 0)),
        (262, 3, 1, struct.pack("<HH", 2, 0)), (273, 4, height, struct.pack("<I", offsets_at)),
        (277, 3, 1, struct.pack("<HH", 3, 0)), (278, 4, 1, struct.pack("<I", 1)),
        (279, 4, height, struct.pack("<I", counts_at)), (284, 3, 1, struct.pack("<HH", 1, 0)),
        (339, 3, 3, struct.pack("<I", formats_at)),
        (256, 4, 1, struct.pack("<I", last[0])), (257, 4, 1, struct.pack("<I", last[1])),  # the second copies
    ]
    return b"II*\x00" + struct.pack("<I", ifd_at) + body + _ifd(entries)


def _ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    return (struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *entry[:3]) + entry[3] for entry in entries)
            + struct.pack("<I", 0))


def _jpeg_segments(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment after SOI; a scan's end includes its entropy-coded data."""
    segments, pos = [], 2
    while pos < len(jpeg) and jpeg[pos + 1] != 0xD9:
        marker = jpeg[pos + 1]
        end = pos + 2 + struct.unpack_from(">H", jpeg, pos + 2)[0]
        if marker == 0xDA:
            while True:
                end = jpeg.index(b"\xff", end)
                if jpeg[end + 1] == 0 or 0xD0 <= jpeg[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        segments.append((marker, pos, end))
        pos = end
    return segments


def jpeg_scan_bomb(rgb: np.ndarray, repeats: int, side: int = 1024) -> bytes:
    """A progressive JPEG whose last AC scan is repeated `repeats` times (each one a pass over the image).

    The picture is flat, so a scan is a few bytes: 100,000 scans fit in about 1.5 MB.
    """
    flat = np.full((side, side, 3), rgb.mean(axis=(0, 1)).astype(np.uint8), np.uint8)
    jpeg = _encode(flat, "JPEG", quality=90, progressive=True)
    _, start, end = [segment for segment in _jpeg_segments(jpeg) if segment[0] == 0xDA][-1]
    return jpeg[:end] + jpeg[start:end] * repeats + jpeg[end:]


def jpeg_second_frame_header(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with a second frame header (SOF0) claiming `width`×`height` right after the real one."""
    _, start, end = next(segment for segment in _jpeg_segments(jpeg) if segment[0] == 0xC0)
    frame = bytearray(jpeg[start:end])
    struct.pack_into(">HH", frame, 5, height, width)
    return jpeg[:end] + bytes(frame) + jpeg[end:]


def _png_insert(png: bytes, chunks: bytes, *, after_idat: bool = False) -> bytes:
    at = png.index(b"IEND") - 4 if after_idat else png.index(b"IDAT") - 4
    return png[:at] + chunks + png[at:]


@functools.lru_cache(maxsize=4)
def _deflated_zeros(size: int) -> bytes:
    return zlib.compress(b"\0" * size, 9)


def png_chunk_bomb(rgb: np.ndarray, kind: bytes, size: int = 50_000_000, *, after_idat: bool = False) -> bytes:
    """A PNG with an iCCP, zTXt or (compressed) iTXt chunk inflating to `size` bytes (about 50 KB on disk)."""
    stream = _deflated_zeros(size)
    payload = {b"iCCP": b"icc\x00\x00", b"zTXt": b"Comment\x00\x00", b"iTXt": b"Comment\x00\x01\x00\x00\x00"}[kind]
    return _png_insert(_encode(rgb, "PNG"), _png_chunk(kind, payload + stream), after_idat=after_idat)


def png_chunk_flood(rgb: np.ndarray, count: int) -> bytes:
    """A PNG with `count` empty private ancillary chunks before its image data (12 bytes each)."""
    return _png_insert(_encode(rgb, "PNG"), _png_chunk(b"flOd", b"") * count)


def png_exif_table_bomb(rgb: np.ndarray, count: int) -> bytes:
    """A PNG whose eXIf chunk holds an IFD entry with `count` SHORT numbers (really present)."""
    table = b"\x01\x00" * count
    exif = b"II*\x00" + struct.pack("<I", 8) + _ifd([(0x0111, 3, count, struct.pack("<I", 26))]) + table
    return _png_insert(_encode(rgb, "PNG"), _png_chunk(b"eXIf", exif))


def png_bad_crc(rgb: np.ndarray) -> bytes:
    data = bytearray(_encode(rgb, "PNG"))
    data[29:33] = bytes(b ^ 0xFF for b in data[29:33])  # IHDR's CRC
    return bytes(data)


def webp_claiming(webp: bytes, width: int, height: int) -> bytes:
    """A lossy WebP whose VP8 frame header is patched to claim `width`×`height` (each below 16384)."""
    data = bytearray(webp)
    at = data.index(b"VP8 ") + 8
    assert data[at + 3 : at + 6] == b"\x9d\x01\x2a"
    struct.pack_into("<HH", data, at + 6, width & 0x3FFF, height & 0x3FFF)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming `width`×`height`, followed by a few bytes of pixels."""
    header = b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54)
    return header + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0) + b"\x80" * 64


def bmp_rle(width: int, height: int, *, rle4: bool, ops: bytes, palette: bytes | None = None) -> bytes:
    """A BMP compressed with RLE4 or RLE8 (`ops` is the run-length data; grey palette by default)."""
    colours = 16 if rle4 else 256
    palette = palette or b"".join(struct.pack("<BBBB", i * 255 // (colours - 1), i * 255 // (colours - 1), i * 255 // (colours - 1), 0) for i in range(colours))
    offset = 14 + 40 + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(ops), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 4 if rle4 else 8, 2 if rle4 else 1, len(ops), 2835, 2835,
                       len(palette) // 4, 0)
    return header + info + palette + ops


def bmp_rle8_photo(rgb: np.ndarray) -> bytes:
    """`rgb` quantised to 256 colours and stored as an RLE8 BMP (runs of equal pixels, bottom row first)."""
    from PIL import Image

    quantised = Image.fromarray(rgb).quantize(colors=256)
    indices = np.asarray(quantised)
    palette = quantised.getpalette()[: 256 * 3] + [0] * max(0, 256 * 3 - len(quantised.getpalette()))
    bgra = b"".join(bytes((palette[3 * i + 2], palette[3 * i + 1], palette[3 * i], 0)) for i in range(256))
    rows = []
    for row in indices[::-1]:
        starts = np.flatnonzero(np.diff(row.astype(np.int16), prepend=-1) != 0)  # where each run of equal pixels begins
        lengths = np.diff(np.append(starts, len(row)))
        pieces = -(-lengths // 255)  # a run longer than 255 becomes several
        counts = np.full(pieces.sum(), 255, np.int64)
        counts[np.cumsum(pieces) - 1] = lengths - 255 * (pieces - 1)
        pairs = np.stack([counts, np.repeat(row[starts], pieces)], axis=1).astype(np.uint8)
        rows.append(pairs.tobytes() + b"\x00\x00")
    ops = b"".join(rows) + b"\x00\x01"
    return bmp_rle(indices.shape[1], indices.shape[0], rle4=False, ops=ops, palette=bgra)


def bmp_top_down(rgb: np.ndarray) -> bytes:
    """A 24-bit BMP stored top row first (negative height)."""
    data = bytearray(_encode(rgb, "BMP"))
    offset, height = struct.unpack_from("<I", data, 10)[0], struct.unpack_from("<i", data, 22)[0]
    stride = (rgb.shape[1] * 3 + 3) // 4 * 4
    rows = [data[offset + i * stride : offset + (i + 1) * stride] for i in range(height)]
    struct.pack_into("<i", data, 22, -height)
    data[offset : offset + stride * height] = b"".join(reversed(rows))
    return bytes(data)


def tiff_directory_flood() -> bytes:
    """A BigTIFF whose first directory claims 2^40 entries (Pillow would walk them in Python)."""
    entry = struct.pack("<HHQ8s", 256, 3, 1, struct.pack("<H", 64) + b"\0" * 6)
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 1 << 40) + entry * 64


def tiff_strip_table_bomb(count: int) -> bytes:
    """A 64x64 grey TIFF whose StripOffsets/StripByteCounts hold `count` SHORT numbers each (really present)."""
    pixels = b"\x80" * 64 * 64
    offsets_at = 8 + len(pixels)
    counts_at = offsets_at + 2 * count
    ifd_at = counts_at + 2 * count
    body = pixels + struct.pack("<H", 8) * count + struct.pack("<H", 64) * count
    entries = [
        (256, 3, 1, struct.pack("<HH", 64, 0)), (257, 3, 1, struct.pack("<HH", 64, 0)),
        (258, 3, 1, struct.pack("<HH", 8, 0)), (259, 3, 1, struct.pack("<HH", 1, 0)),
        (262, 3, 1, struct.pack("<HH", 1, 0)), (273, 3, count, struct.pack("<I", offsets_at)),
        (277, 3, 1, struct.pack("<HH", 1, 0)), (278, 3, 1, struct.pack("<HH", 1, 0)),
        (279, 3, count, struct.pack("<I", counts_at)),
    ]
    return b"II*\x00" + struct.pack("<I", ifd_at) + body + _ifd(entries)


def _encode_frames(rgb: np.ndarray, fmt: str, **options) -> bytes:
    """Two frames (the photo, then it mirrored) in a multi-frame format: decoders must give the first."""
    from PIL import Image

    first = Image.fromarray(np.ascontiguousarray(rgb))
    buffer = io.BytesIO()
    first.save(buffer, fmt, save_all=True, append_images=[first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], **options)
    return buffer.getvalue()


def _srgb_profile() -> bytes:
    """LittleCMS's sRGB profile with its creation date and profile id zeroed (stable bytes)."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = bytes(12)  # creation date
    profile[84:100] = bytes(16)  # profile id (MD5; zero means "not computed")
    return bytes(profile)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=(2024, 6, 1, 0, 0, 0)), data)  # fixed time: stable bytes
    return buffer.getvalue()


def _write_odd_zip(path: Path, jpegs: list[bytes]) -> None:
    """Member names that test the address format and the zip reader's rules (four distinct photos)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the repeated name, on purpose
        with zipfile.ZipFile(path, "w") as bundle:
            bundle.writestr("dir//double.jpg", jpegs[0])
            bundle.writestr("wow!/x!.jpg", jpegs[1])
            bundle.writestr("caf_.jpg", jpegs[2])  # renamed below to cp437 bytes (no UTF-8 flag)
            bundle.writestr("twice.jpg", jpegs[3])
            bundle.writestr("twice.jpg", b"second copy: text, not a photo")
            bundle.writestr("encrypted.jpg", jpegs[0])  # flagged encrypted below
            bundle.writestr("inner.zip", _zip_bytes({"photo.jpg": jpegs[0]}))
    data = bytearray(path.read_bytes())
    # (signature, offset of the flags, of the name length, of the name) in local and central headers
    for signature, flags_at, length_at, name_at in ((b"PK\x03\x04", 6, 26, 30), (b"PK\x01\x02", 8, 28, 46)):
        at = data.find(signature)
        while at >= 0:
            name_length = struct.unpack_from("<H", data, at + length_at)[0]
            name = bytes(data[at + name_at : at + name_at + name_length])
            if name == b"caf_.jpg":
                data[at + name_at : at + name_at + name_length] = b"caf\x82.jpg"  # é in cp437
            if name == b"encrypted.jpg":
                struct.pack_into("<H", data, at + flags_at, struct.unpack_from("<H", data, at + flags_at)[0] | 1)
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def _write_tar(path: Path, mode: str, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, mode) as bundle:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))


def _write_cut_tgz(path: Path, jpeg: bytes) -> None:
    """A .tar.gz cut short inside its second member's data: the first member stays readable."""
    noise = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()  # does not compress
    _write_tar(path, "w:gz", [("before_damage.jpg", jpeg), ("cut.bin", noise), ("never_reached.jpg", jpeg)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 200_000])


# ------------------------------------------------------------------------------------------- encoders


def _encode(rgb: np.ndarray, fmt: str, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, fmt, **options)
    return buffer.getvalue()


def _encode_pil(rgb: np.ndarray, mode: str, fmt: str, **options) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def _cv2_encode(ext: str, array: np.ndarray) -> bytes:
    import cv2

    if array.ndim == 3:
        array = array[..., ::-1]
    ok, encoded = cv2.imencode(ext, np.ascontiguousarray(array))
    assert ok, f"OpenCV could not write {ext}"
    return encoded.tobytes()


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.rint(rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _exif_rotated(rgb: np.ndarray) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # display turned 90° clockwise
    buffer = io.BytesIO()
    Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def _with_exif(rgb: np.ndarray, exif: bytes) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def _exif_bomb() -> bytes:
    """A TIFF header whose first IFD claims 65535 entries but holds ten."""
    entry = struct.pack("<HHII", 0x010F, 2, 0xFFFFFFF0, 0x7FFFFFF0)  # Make: ~4 GB string at a far offset
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + entry * 10


def _alpha_png(rgb: np.ndarray) -> bytes:
    height, width = rgb.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    alpha = np.full((height, width), 255, np.uint8)
    alpha[(xx < width // 8) | (yy > height * 7 // 8)] = 64  # a translucent border, the face stays opaque
    return _encode(np.dstack([rgb, alpha]), "PNG")


def _palette_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(rgb).quantize(colors=255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)  # palette entry 0 is transparent
    return buffer.getvalue()


def _svg() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256">'
        b'<circle cx="128" cy="128" r="100" fill="#a07e56"/></svg>\n'
    )


def _gif(rgb: np.ndarray) -> bytes:
    from PIL import Image

    small = Image.fromarray(rgb).resize((128, 128))
    frames = [small, small.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return buffer.getvalue()


def _heic_header() -> bytes:
    """The opening boxes of a HEIC file (ftyp heic, then a meta box) — no decoder is installed."""
    ftyp = struct.pack(">I", 24) + b"ftypheic" + struct.pack(">I", 0) + b"mif1heic"
    meta = struct.pack(">I", 33) + b"meta" + b"\x00" * 4 + struct.pack(">I", 21) + b"hdlr" + b"\x00" * 8 + b"pict\x00"
    return ftyp + meta + b"\x00" * 200


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def _png_with_garbage_data() -> bytes:
    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"garbage" * 40) + _png_chunk(b"IEND", b"")


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header (SOF0) patched to claim `width`×`height`."""
    at = jpeg.index(b"\xff\xc0")
    return jpeg[: at + 5] + struct.pack(">HH", height, width) + jpeg[at + 9 :]


# ---------------------------------------------------------------------------------------- face cases


def _tiny_face(rgb: np.ndarray) -> bytes:
    import cv2

    x0, y0, x1, y1 = ASTRONAUT_FACE
    head = rgb[max(0, y0 - 30) : y1 + 30, max(0, x0 - 30) : x1 + 30]
    small = cv2.resize(head, (22, 22), interpolation=cv2.INTER_AREA)
    canvas = np.full((1200, 1600, 3), 128, np.uint8)
    canvas[20:42, 1560:1582] = small
    return _encode(canvas, "JPEG", quality=95)


def _side_by_side(photos: list[np.ndarray]) -> np.ndarray:
    height = min(p.shape[0] for p in photos)
    resized = [_resize(p, height / p.shape[0]) for p in photos]
    resized = [p[:height] for p in resized]
    return np.concatenate(resized, axis=1)


def _five_faces(astronaut: np.ndarray, hopper: np.ndarray) -> np.ndarray:
    import cv2

    heads = [astronaut[0:300, 75:375], hopper[64:424, 88:448]]  # square crops around each face
    heads = [cv2.resize(np.ascontiguousarray(h), (256, 256), interpolation=cv2.INTER_AREA) for h in heads]
    tiles = [heads[0], heads[1], heads[0][:, ::-1], heads[1][:, ::-1], heads[0]]
    row_a = np.concatenate(tiles[:3], axis=1)
    row_b = np.concatenate(tiles[3:] + [np.full_like(tiles[0], 200)], axis=1)
    return np.concatenate([row_a, row_b], axis=0)


def _cut_by_frame(rgb: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = ASTRONAUT_FACE
    return rgb[:, (x0 + x1) // 2 :].copy()  # the frame's left edge runs down the middle of the face


def _half_face(rgb: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = ASTRONAUT_FACE
    out = rgb.copy()
    out[:, : (x0 + x1) // 2 + 10] = 40  # one side of the face and what is left of it painted out
    return out


def _cartoon(rgb: np.ndarray) -> np.ndarray:
    import cv2

    smooth = rgb
    for _ in range(3):
        smooth = cv2.bilateralFilter(smooth, 9, 60, 7)
    posterised = (smooth // 48) * 48 + 24
    edges = cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 80, 160)
    edges = cv2.dilate(edges, np.ones((2, 2), np.uint8)) > 0
    posterised[edges] = 20
    return posterised.astype(np.uint8)


# ------------------------------------------------------------------------------------------- archives


def _write_bombs_zip(path: Path) -> None:
    """claims_1gb.jpg: a small member whose headers are patched to claim 1 GiB; zeros_80mb.jpg: 80 MiB of zeros."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("claims_1gb.jpg", b"\x00" * 4096)
        info = zipfile.ZipInfo("zeros_80mb.jpg")
        info.compress_type = zipfile.ZIP_DEFLATED
        with bundle.open(info, "w", force_zip64=True) as stream:
            block = b"\x00" * (1 << 20)
            for _ in range(80):
                stream.write(block)
    data = bytearray(path.read_bytes())
    name = b"claims_1gb.jpg"
    local = data.index(b"PK\x03\x04")  # the first local header is this member's
    assert data[local + 30 : local + 30 + len(name)] == name
    struct.pack_into("<I", data, local + 22, 1 << 30)
    central = data.index(b"PK\x01\x02")
    assert data[central + 46 : central + 46 + len(name)] == name
    struct.pack_into("<I", data, central + 24, 1 << 30)
    path.write_bytes(bytes(data))


def _write_links_tar(path: Path, jpeg: bytes) -> None:
    with tarfile.open(path, "w") as bundle:
        good = tarfile.TarInfo("good/grace_hopper.jpg")
        good.size = len(jpeg)
        bundle.addfile(good, io.BytesIO(jpeg))
        symlink = tarfile.TarInfo("link_to_passwd.jpg")
        symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc/passwd"
        bundle.addfile(symlink)
        hardlink = tarfile.TarInfo("hardlink.jpg")
        hardlink.type, hardlink.linkname = tarfile.LNKTYPE, "good/grace_hopper.jpg"
        bundle.addfile(hardlink)
        fifo = tarfile.TarInfo("fifo.jpg")
        fifo.type = tarfile.FIFOTYPE
        bundle.addfile(fifo)
        device = tarfile.TarInfo("device.jpg")
        device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3  # /dev/null's numbers
        bundle.addfile(device)
