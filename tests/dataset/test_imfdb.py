"""dataset.imfdb: download from a local HTTP server (Range resume, restarts, checksums, unreachable
host), safe extraction of an archive in IMFDB's layout, and the annotation parser."""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dataset.imfdb import imfdb_annotations_by_path, parse_imfdb, read_imfdb
from dataset.imfdb.__main__ import main as imfdb_main
from dataset.imfdb.annotations import parse_line
from dataset.imfdb.client import ChecksumError, DownloadError, SourceFile, download_file, load_config, safe_extract
from dataset.schema import IMFDB_COLUMNS
from dataset.sources import list_inputs

REPO = Path(__file__).resolve().parents[2]

# Movie1 uses the column positions of the released files (image name 3rd, movie 8th, actor 10th,
# attributes from the 11th); Movie3 uses the short order: image, actor, movie, attributes.
ANNOTATIONS = {
    ("Kajol", "Movie1"): [
        "1\tframe_0001.jpg\tKajol_1.jpg\t12\t20\t110\t140\tMovie1\t1998\tKajol\tFEMALE\tHAPPINESS\tNONE\tHIGH\tYOUNG\tFRONTAL\tPARTIAL",
        "2\tframe_0002.jpg\tKajol_2.jpg\t14\t22\t100\t130\tMovie1\t1998\tKajol\tFEMALE\tSADNESS\tGLASSES\tMEDIUM\tMIDDLE\tLEFT\tOVER",
        "this line is not an annotation",
        "",
        "1\tframe_0001.jpg\tKajol_1.jpg\t12\t20\t110\t140\tMovie1\t1998\tKajol\tFEMALE\tHAPPINESS\tNONE\tHIGH\tYOUNG\tFRONTAL\tPARTIAL",
    ],
    ("Kajol", "Movie2"): [
        "1\tframe_0009.jpg\tKajol_9.jpg\t1\t2\t3\t4\tMovie2\t2001\tKajol\tFEMALE\tSURPRISE\tHAND\tBAD\tCHILD\tUP",
    ],
    ("Mohanlal", "Movie3"): [
        "Mohanlal_1.jpg Mohanlal Movie3 MALE OLD ANGER DOWN HIGH BEARD",
        "Mohanlal_missing.jpg Mohanlal Movie3 MALE YOUNG NEUTRAL RIGHT MEDIUM NONE",
    ],
}
IMAGES = {
    ("Kajol", "Movie1"): ["Kajol_1.jpg", "Kajol_2.jpg"],
    ("Kajol", "Movie2"): ["Kajol_9.jpg"],
    ("Mohanlal", "Movie3"): ["Mohanlal_1.jpg", "Mohanlal_2.jpg"],  # Mohanlal_2 has no annotation line
}


def _jpeg(rgb: np.ndarray, size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).resize((size, size)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def imfdb_zip(tmp_path_factory, package_photos) -> bytes:
    """A small IMFDB_final.zip in IMFDB's layout, plus members that must never be extracted."""
    photos = [package_photos["astronaut"], package_photos["grace_hopper"]]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        count = 0
        for (actor, movie), names in IMAGES.items():
            folder = f"IMFDB_final/{actor}/{movie}"
            bundle.writestr(f"{folder}/{movie}.txt", "\n".join(ANNOTATIONS[(actor, movie)]) + "\n")
            for name in names:
                bundle.writestr(f"{folder}/images/{name}", _jpeg(photos[count % 2], 48 + count))
                count += 1
        bundle.writestr(zipfile.ZipInfo("../evil.txt"), b"escaped")
        bundle.writestr(zipfile.ZipInfo("/tmp/absolute_evil.txt"), b"escaped")
        link = zipfile.ZipInfo("IMFDB_final/link.txt")
        link.create_system, link.external_attr = 3, 0o120777 << 16
        bundle.writestr(link, "/etc/passwd")
    return buffer.getvalue()


# -------------------------------------------------------------------------------------- the server


@dataclass
class ServerState:
    data: bytes = b""
    ignore_range: bool = False
    cut_next: int = 0  # this many responses stop half way and drop the connection
    status: int = 200
    requests: list = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        state: ServerState = self.server.state
        requested = self.headers.get("Range")
        state.requests.append(requested)
        if state.status != 200:
            self.send_error(state.status)
            return
        data, start = state.data, 0
        if requested and not state.ignore_range:
            start = int(requested.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_next > 0:
            state.cut_next -= 1
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture()
def server(imfdb_zip):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState(data=imfdb_zip)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/IMFDB_final.zip"


def _config(tmp_path: Path, url: str, sha256: str | None) -> Path:
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"files": [{"url": url, "filename": "IMFDB_final.zip", "sha256": sha256}]}))
    return path


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------------------ download


def test_cli_download_verifies_extracts_safely_and_parses(tmp_path, server, imfdb_zip, capsys):
    dest = tmp_path / "imfdb"
    config = _config(tmp_path, _url(server), hashlib.sha256(imfdb_zip).hexdigest())
    assert imfdb_main(["download", "--dest", str(dest), "--config", str(config), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert (dest / "downloads" / "IMFDB_final.zip").read_bytes() == imfdb_zip
    assert not (dest / "downloads" / "IMFDB_final.zip.part").exists()
    for refused in ("../evil.txt", "/tmp/absolute_evil.txt", "IMFDB_final/link.txt"):
        assert f"refused {refused!r}" in captured.err
    assert not (tmp_path / "evil.txt").exists() and not (dest / "evil.txt").exists()
    assert not (dest / "IMFDB_final" / "link.txt").exists()
    assert (dest / "IMFDB_final" / "Kajol" / "Movie1" / "images" / "Kajol_1.jpg").is_file()
    assert len(parse_imfdb(dest)) == 6


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server, imfdb_zip):
    server.state.cut_next = 1
    source = SourceFile(url=_url(server), filename="IMFDB_final.zip", sha256=hashlib.sha256(imfdb_zip).hexdigest())
    path = download_file(source, tmp_path, retries=2, backoff=0, progress=False)
    assert path.read_bytes() == imfdb_zip
    first, second = server.state.requests
    assert first is None
    half = len(imfdb_zip) // 2
    assert second == f"bytes={half}-"


def test_part_file_from_an_earlier_run_is_resumed(tmp_path, server, imfdb_zip):
    (tmp_path / "IMFDB_final.zip.part").write_bytes(imfdb_zip[:1000])
    source = SourceFile(url=_url(server), filename="IMFDB_final.zip")
    path = download_file(source, tmp_path, retries=0, progress=True)
    assert path.read_bytes() == imfdb_zip
    assert server.state.requests == ["bytes=1000-"]


def test_server_ignoring_range_restarts_the_file_cleanly(tmp_path, server, imfdb_zip):
    server.state.ignore_range = True
    (tmp_path / "IMFDB_final.zip.part").write_bytes(b"stale bytes from somewhere else")
    source = SourceFile(url=_url(server), filename="IMFDB_final.zip", sha256=hashlib.sha256(imfdb_zip).hexdigest())
    path = download_file(source, tmp_path, retries=0, progress=False)
    assert path.read_bytes() == imfdb_zip
    assert server.state.requests == ["bytes=31-"]


def test_complete_part_answered_with_416_is_finished(tmp_path, server, imfdb_zip):
    (tmp_path / "IMFDB_final.zip.part").write_bytes(imfdb_zip)
    path = download_file(SourceFile(url=_url(server), filename="IMFDB_final.zip"), tmp_path, retries=0, progress=False)
    assert path.read_bytes() == imfdb_zip


def test_checksum_mismatch_is_an_error_and_keeps_nothing(tmp_path, server):
    source = SourceFile(url=_url(server), filename="IMFDB_final.zip", sha256="0" * 64)
    with pytest.raises(ChecksumError, match="does not match"):
        download_file(source, tmp_path, retries=0, progress=False)
    assert not (tmp_path / "IMFDB_final.zip").exists() and not (tmp_path / "IMFDB_final.zip.part").exists()


def test_existing_file_with_a_wrong_checksum_is_fetched_again(tmp_path, server, imfdb_zip):
    (tmp_path / "IMFDB_final.zip").write_bytes(b"corrupt copy")
    source = SourceFile(url=_url(server), filename="IMFDB_final.zip", sha256=hashlib.sha256(imfdb_zip).hexdigest())
    assert download_file(source, tmp_path, retries=0, progress=False).read_bytes() == imfdb_zip


def test_http_error_names_the_host_and_is_not_retried(tmp_path, server):
    server.state.status = 404
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:\d+ answered HTTP 404"):
        download_file(SourceFile(url=_url(server), filename="x.zip"), tmp_path, retries=3, backoff=0, progress=False)
    assert len(server.state.requests) == 1


def test_unreachable_host_is_a_clear_error(tmp_path):
    port = _closed_port()
    source = SourceFile(url=f"http://127.0.0.1:{port}/IMFDB_final.zip", filename="IMFDB_final.zip")
    with pytest.raises(DownloadError) as caught:
        download_file(source, tmp_path, retries=1, backoff=0, timeout=2, progress=False)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "connection refused" in message and "2 attempts" in message


def test_cli_unreachable_host_exits_2_with_one_line(tmp_path):
    config = _config(tmp_path, f"http://127.0.0.1:{_closed_port()}/IMFDB_final.zip", None)
    result = subprocess.run(
        [sys.executable, "-m", "dataset.imfdb", "download", "--dest", str(tmp_path / "d"), "--config", str(config),
         "--retries", "0", "--timeout", "2", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: cannot download from 127.0.0.1:")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_config_validation(tmp_path):
    assert load_config()[0].filename == "IMFDB_final.zip"  # the packaged config parses
    with pytest.raises(ValueError, match="http or https"):
        SourceFile(url="file:///etc/passwd", filename="x")
    with pytest.raises(ValueError, match="plain file name"):
        SourceFile(url="http://h/x", filename="../x")
    with pytest.raises(ValueError, match="sha256"):
        SourceFile(url="http://h/x", filename="x", sha256="abc")
    empty = tmp_path / "empty.json"
    empty.write_text('{"files": []}')
    with pytest.raises(ValueError, match="non-empty"):
        load_config(empty)


# ---------------------------------------------------------------------------------------- extraction


def test_safe_extract_tar_refuses_links_devices_and_escapes(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as bundle:
        good = tarfile.TarInfo("data/good.txt")
        good.size = 2
        bundle.addfile(good, io.BytesIO(b"ok"))
        for name, kind in (("data/sym", tarfile.SYMTYPE), ("data/hard", tarfile.LNKTYPE), ("data/dev", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            bundle.addfile(info)
        escape = tarfile.TarInfo("../../escape.txt")
        escape.size = 1
        bundle.addfile(escape, io.BytesIO(b"x"))
    dest = tmp_path / "out"
    report = safe_extract(archive, dest)
    assert report.extracted == ["data/good.txt"]
    assert sorted(name for name, _ in report.refused) == ["../../escape.txt", "data/dev", "data/hard", "data/sym"]
    assert sorted(p.name for p in (dest / "data").iterdir()) == ["good.txt"]
    assert not (tmp_path.parent / "escape.txt").exists()


def test_safe_extract_refuses_writing_through_an_existing_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sneaky").symlink_to(outside)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("sneaky/planted.txt", b"x")
    report = safe_extract(archive, dest)
    assert [name for name, _ in report.refused] == ["sneaky/planted.txt"]
    assert not (outside / "planted.txt").exists()


def test_safe_extract_reports_damaged_members_and_keeps_the_rest(tmp_path):
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as bundle:
        bundle.writestr("a/good.txt", b"fine")
        bundle.writestr("a/bad.txt", b"original")
    archive.write_bytes(archive.read_bytes().replace(b"original", b"tampered"))
    report = safe_extract(archive, tmp_path / "out")
    assert report.extracted == ["a/good.txt"]
    assert [name for name, _ in report.failed] == ["a/bad.txt"] and "CRC" in report.failed[0][1]
    assert sorted(p.name for p in (tmp_path / "out" / "a").iterdir()) == ["good.txt"]  # no partial file


# -------------------------------------------------------------------------------------------- parser


@pytest.fixture(scope="module")
def imfdb_root(tmp_path_factory, imfdb_zip) -> Path:
    root = tmp_path_factory.mktemp("imfdb")
    archive = root.parent / f"{root.name}.zip"
    archive.write_bytes(imfdb_zip)
    safe_extract(archive, root)
    return root


def test_parser_yields_one_record_per_image_with_the_imfdb_columns(imfdb_root):
    records = parse_imfdb(imfdb_root)
    assert all(list(r) == ["path", *IMFDB_COLUMNS] for r in records)
    by_name = {os.path.basename(r["path"]): r for r in records}
    assert sorted(by_name) == ["Kajol_1.jpg", "Kajol_2.jpg", "Kajol_9.jpg", "Mohanlal_1.jpg", "Mohanlal_2.jpg", "Mohanlal_missing.jpg"]
    assert by_name["Kajol_1.jpg"] == {
        "path": str(imfdb_root / "IMFDB_final" / "Kajol" / "Movie1" / "images" / "Kajol_1.jpg"),
        "actor": "Kajol", "movie": "Movie1", "gender": "female", "age": "young", "expression": "happiness",
        "pose": "frontal", "illumination": "high", "occlusion": "none", "makeup": "partial",
    }
    assert by_name["Kajol_2.jpg"]["occlusion"] == "glasses" and by_name["Kajol_2.jpg"]["makeup"] == "over"
    assert by_name["Kajol_9.jpg"]["makeup"] is None and by_name["Kajol_9.jpg"]["age"] == "child"
    mohanlal = by_name["Mohanlal_1.jpg"]
    assert (mohanlal["actor"], mohanlal["movie"], mohanlal["gender"], mohanlal["age"], mohanlal["expression"]) == (
        "Mohanlal", "Movie3", "male", "old", "anger")
    assert (mohanlal["pose"], mohanlal["illumination"], mohanlal["occlusion"]) == ("down", "high", "beard")
    unannotated = by_name["Mohanlal_2.jpg"]
    assert (unannotated["actor"], unannotated["movie"], unannotated["gender"]) == ("Mohanlal", "Movie3", None)


def test_parser_counts_what_it_skipped(imfdb_root):
    result = read_imfdb(imfdb_root)
    assert result.movies == 3
    assert result.skipped_lines == 1  # the prose line; the blank line is not counted
    assert result.duplicate_lines == 1
    assert result.missing_images == 1  # Mohanlal_missing.jpg
    assert result.unannotated_images == 1  # Mohanlal_2.jpg


def test_annotations_join_onto_the_sources_the_job_lists(imfdb_root):
    by_path = imfdb_annotations_by_path(imfdb_root)
    images = [s for s in list_inputs(imfdb_root) if s.endswith(".jpg")]
    assert set(images) <= set(by_path)
    assert by_path[images[0]]["actor"] == "Kajol"
    assert all(set(value) == set(IMFDB_COLUMNS) for value in by_path.values())


def test_parse_line_is_lenient():
    assert parse_line("") is None
    assert parse_line("no image here MALE HAPPINESS") is None
    name, attributes = parse_line("a.JPG,Actor,Movie,male,Neutral,frontal")
    assert name == "a.JPG" and attributes == {"gender": "male", "expression": "neutral", "pose": "frontal"}
    name, _ = parse_line("1 frame.jpg crop.jpg Movie Actor FEMALE", {"crop.jpg"})
    assert name == "crop.jpg"  # the image that exists wins over the frame name


def test_cli_parse_writes_parquet(tmp_path, imfdb_root, capsys):
    output = tmp_path / "imfdb.parquet"
    assert imfdb_main(["parse", "--root", str(imfdb_root), "--output", str(output)]) == 0
    table = pq.read_table(output)
    assert table.column_names == ["path", *IMFDB_COLUMNS] and table.num_rows == 6
    assert "6 images from 3 movies" in capsys.readouterr().out


def test_cli_parse_of_a_missing_root_exits_2(tmp_path, capsys):
    assert imfdb_main(["parse", "--root", str(tmp_path / "nope"), "--output", str(tmp_path / "o.parquet")]) == 2
    assert "error:" in capsys.readouterr().err


def test_downloaded_imfdb_through_the_preprocess_job(tmp_path, server, imfdb_zip, ray_cluster, monkeypatch):
    """Download → extract → `jobs.preprocess --imfdb` (relative paths): rows carry the annotation columns."""
    from dataset.shards import read_shards
    from jobs import preprocess

    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, _url(server), hashlib.sha256(imfdb_zip).hexdigest())
    assert imfdb_main(["download", "--dest", "imfdb", "--config", str(config), "--quiet"]) == 0
    assert preprocess.main(["--input", "imfdb/IMFDB_final", "--output", "shards_out", "--imfdb",
                            "--num-actors", "1"]) == 0
    rows = read_shards(tmp_path / "shards_out" / "shards").to_pylist()
    images = {Path(row["source"]).name: row for row in rows if row["source"].endswith(".jpg")}
    assert sorted(images) == sorted(name for names in IMAGES.values() for name in names)
    assert all(row["actor"] == name.split("_")[0] and row["movie"] for name, row in images.items())
    assert images["Kajol_1.jpg"]["expression"] and images["Kajol_1.jpg"]["gender"]
    assert images["Mohanlal_2.jpg"]["expression"] is None  # no annotation line: folder columns only
