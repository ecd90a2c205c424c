"""The shared bad-input corpus: one builder every job's tests run against.

`build_corpus(dest, package_photos)` writes, under `dest`:

    files/      plain files (good photos in every format and mode, malformed files, face edge cases)
    archives/   unsafe.zip (``../``, absolute and empty members), bombs.zip (a member whose header claims
                1 GiB, a real 80 MiB run of zeros), links.tar (symbolic link, hard link, FIFO,
                character device)
    inputs.lst  a list file naming ``files/`` and every archive: `list_inputs(corpus_input(dest))`
                yields exactly the sources of the returned cases (run jobs on this file; run on
                `dest` itself and the archives and the list are plain non-image files)

and returns one `CorpusCase` per source. Stages:

- ``decode``: rejected while reading or decoding; `expected_reasons` holds the one exact reason
  (with the default limits: `max_bytes` 64 MiB, `max_pixels` 40 M, `min_side` 32).
- ``ok``: a face photo that must decode and align (`expected_status` "ok").
- ``face``: decodes; the outcome depends on face detection, so `expected_reasons` lists every
  honest outcome ("" stands for ok) and `expected_status` is None when both ok and rejected are fine.

Everything is deterministic (seeded), so ids (sha256 of the bytes) are stable between runs.
"""
from __future__ import annotations

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
    path: str = ""  # relative to the corpus folder: "files/notes.jpg", "archives/unsafe.zip!../escape.jpg"

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
        path.write_bytes(data)
        cases.append(CorpusCase(name, str(path), stage, status, frozenset(reasons), **extra))

    def decode_fail(name, filename, data, reason, note=""):
        add(name, filename, data, "decode", "rejected", {reason}, note=note)

    def good(name, filename, data, note=""):
        add(name, filename, data, "ok", "ok", {OK}, note=note)

    def face(name, filename, data, reasons, note="", min_faces=0):
        statuses = {"ok" if r == OK else "rejected" for r in reasons}
        status = statuses.pop() if len(statuses) == 1 else None
        add(name, filename, data, "face", status, reasons, note=note, min_faces=min_faces)

    jpeg_astronaut = _encode(astronaut, "JPEG", quality=92)

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
    unsafe = archives / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as bundle:
        bundle.writestr(zipfile.ZipInfo("../escape.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("/absolute/escape.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("good/astronaut.jpg"), jpeg_astronaut)
        bundle.writestr(zipfile.ZipInfo("empty.jpg"), b"")
    member = lambda archive, name: f"{archive}!{name}"  # noqa: E731
    cases += [
        CorpusCase("zip_dotdot_member", member(unsafe, "../escape.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("zip_absolute_member", member(unsafe, "/absolute/escape.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("zip_good_member", member(unsafe, "good/astronaut.jpg"), "ok", "ok", frozenset({OK})),
        CorpusCase("zip_empty_member", member(unsafe, "empty.jpg"), "decode", "rejected", frozenset({"unreadable"})),
    ]
    bombs = archives / "bombs.zip"
    _write_bombs_zip(bombs)
    cases += [
        CorpusCase("zip_member_claims_1gb", member(bombs, "claims_1gb.jpg"), "decode", "rejected", frozenset({"too_large"})),
        CorpusCase("zip_bomb_80mb", member(bombs, "zeros_80mb.jpg"), "decode", "rejected", frozenset({"too_large"})),
    ]
    links = archives / "links.tar"
    hopper_jpeg = _encode(hopper, "JPEG", quality=90)
    _write_links_tar(links, hopper_jpeg)
    cases += [
        CorpusCase("tar_symlink", member(links, "link_to_passwd.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("tar_hardlink", member(links, "hardlink.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("tar_fifo", member(links, "fifo.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("tar_device", member(links, "device.jpg"), "decode", "rejected", frozenset({"unsafe_path"})),
        CorpusCase("tar_good_member", member(links, "good/grace_hopper.jpg"), "ok", "ok", frozenset({OK})),
    ]

    corpus_input(dest).write_text(
        "# The corpus: every file under files/ and every member of each archive.\n"
        "files\n\narchives/unsafe.zip\narchives/bombs.zip\narchives/links.tar\n",
        encoding="utf-8",
    )
    return [replace(case, path=os.path.relpath(case.source, dest)) for case in cases]


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
