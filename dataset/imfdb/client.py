"""IMFDB download: resumable HTTP (standard library only), checksum check, safe extraction.

`download_file` keeps a ``NAME.part`` beside the target and resumes it with an HTTP Range request;
a server that ignores Range (answers 200) restarts the file cleanly. When the config knows a
sha256 the finished file must match it (a mismatch deletes the part and raises); when it does not,
the computed sha256 is reported so it can be pinned. `safe_extract` writes only regular files and
folders inside DEST and reports every member it refused (absolute paths, ``..``, links, devices,
paths that would leave DEST through an existing link).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from dataset.sources import member_name_problem

DEFAULT_CONFIG = Path(__file__).with_name("sources.json")
_CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that could not complete; the message names the host and the cause."""


class ChecksumError(DownloadError):
    """A finished download whose sha256 is not the one the config pins."""


@dataclass(frozen=True)
class SourceFile:
    """One file of the dataset as the config lists it."""

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        scheme = urllib.parse.urlsplit(self.url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"Source URL must be http or https, got {self.url!r}.")
        if not self.filename or "/" in self.filename or "\\" in self.filename or self.filename in (".", ".."):
            raise ValueError(f"Source filename must be a plain file name, got {self.filename!r}.")
        if self.sha256 is not None and (len(self.sha256) != 64 or not all(c in "0123456789abcdef" for c in self.sha256)):
            raise ValueError(f"sha256 must be 64 lower-case hex digits or null, got {self.sha256!r}.")


@dataclass
class ExtractReport:
    extracted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (member, why): unsafe, never written
    failed: list[tuple[str, str]] = field(default_factory=list)  # (member, why): safe but unreadable (damaged)


def load_config(path: str | os.PathLike | None = None) -> list[SourceFile]:
    """The files listed in a sources config (default: the packaged ``sources.json``)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    entries = config.get("files")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"Config {str(path)!r} must have a non-empty 'files' list.")
    files = []
    for entry in entries:
        url = entry.get("url")
        filename = entry.get("filename") or os.path.basename(urllib.parse.urlsplit(url or "").path)
        files.append(SourceFile(url=url, filename=filename, sha256=entry.get("sha256"), size=entry.get("size")))
    return files


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------------- download


def download_file(
    source: SourceFile,
    dest_dir: str | os.PathLike,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
    progress: bool = True,
) -> Path:
    """Download `source` into `dest_dir` (resuming a ``.part``) and return the finished path."""
    if retries < 0:
        raise ValueError(f"`retries` must be >= 0, got {retries}.")
    if timeout <= 0:
        raise ValueError(f"`timeout` must be positive, got {timeout}.")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / source.filename
    part = target.with_name(target.name + ".part")
    if target.exists():
        if source.sha256 is None or sha256_file(target) == source.sha256:
            return target
        target.unlink()  # a stale or corrupt copy: fetch again
    host = urllib.parse.urlsplit(source.url).netloc
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        try:
            if _fetch_into(source.url, part, timeout=timeout, progress=progress):
                break
        except urllib.error.HTTPError as error:
            if error.code < 500 and error.code not in (408, 429):
                raise DownloadError(f"{host} answered HTTP {error.code} {error.reason} for {source.url}") from None
            last_error = error
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            last_error = error
        if attempt < retries:
            time.sleep(backoff * (2**attempt))
    else:
        attempts = f"{retries + 1} attempt{'s' if retries else ''}"
        raise DownloadError(f"cannot download from {host}: {_describe(last_error)} (after {attempts})")
    if source.size is not None and part.stat().st_size != source.size:
        part.unlink()
        raise DownloadError(f"{source.filename} from {host}: got {part.stat().st_size} bytes, expected {source.size}")
    digest = sha256_file(part)
    if source.sha256 is not None and digest != source.sha256:
        part.unlink()
        raise ChecksumError(f"{source.filename} from {host}: sha256 {digest} does not match the pinned {source.sha256}")
    os.replace(part, target)
    return target


def _fetch_into(url: str, part: Path, *, timeout: float, progress: bool) -> bool:
    """One request: append to `part` from its current size; True when the file is complete."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "indian-avatar-ai/imfdb", "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked in SourceFile
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing after `offset`: complete if the server says so
            total = _content_range_total(error.headers.get("Content-Range"))
            if total == offset:
                return True
            part.unlink()  # the part is longer than the file: start again
            return False
        raise
    with response:
        if offset and response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise http.client.HTTPException(f"server resumed at byte {start}, asked for {offset}")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # 200: Range ignored, restart from byte 0
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = offset + expected if expected is not None else None
        received = 0
        with open(part, mode) as out, _progress(part.name, total, offset, progress) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if expected is not None and received < expected:
            raise http.client.IncompleteRead(b"", expected - received)
    return True


def _content_range_start(header: str | None) -> int | None:
    try:
        return int(header.split()[1].split("-")[0])  # "bytes 100-199/200"
    except (AttributeError, IndexError, ValueError):
        return None


def _content_range_total(header: str | None) -> int | None:
    try:
        return int(header.rsplit("/", 1)[1])  # "bytes */200"
    except (AttributeError, IndexError, ValueError):
        return None


def _describe(error: Exception | None) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, Exception) else error
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (host unreachable or nothing listening)"
    if isinstance(error, socket.gaierror):
        return f"name lookup failed ({error.strerror or error})"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, http.client.IncompleteRead):
        return "connection closed before the file was complete"
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"


class _progress:
    """A tqdm bar when asked for, else a no-op with the same interface."""

    def __init__(self, name: str, total: int | None, initial: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name)

    def __enter__(self) -> "_progress":
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------ extraction


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> ExtractReport:
    """Extract a zip or tar into `dest`, refusing every member that could write outside it.

    Damaged members (bad CRC, truncated data) are reported in `failed` and the rest is extracted.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    report = ExtractReport()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
                special = kind not in (0, stat.S_IFREG, stat.S_IFDIR)
                why = _refuse(info.filename, root, link=kind == stat.S_IFLNK, special=special)
                if why:
                    report.refused.append((info.filename, why))
                elif info.is_dir():
                    _make_dir(root, info.filename)
                else:
                    _extract_member(report, root, info.filename, lambda info=info: bundle.open(info))
        return report
    try:
        bundle = tarfile.open(archive, "r:*")
    except tarfile.TarError as error:
        raise ValueError(f"{os.fspath(archive)!r} is neither a zip nor a tar archive: {error}") from None
    with bundle:
        try:
            for info in bundle:
                special = not (info.isfile() or info.isdir() or info.issym() or info.islnk())
                why = _refuse(info.name, root, link=info.issym() or info.islnk(), special=special)
                if why:
                    report.refused.append((info.name, why))
                elif info.isdir():
                    _make_dir(root, info.name)
                else:
                    _extract_member(report, root, info.name, lambda info=info: bundle.extractfile(info))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            report.failed.append(("(rest of the archive)", f"damaged after {len(report.extracted)} files: {error}"))
    return report


def _extract_member(report: ExtractReport, root: str, name: str, open_stream) -> None:
    target = os.path.join(root, name.replace("\\", "/"))
    temporary = f"{target}.extracting"
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open_stream() as stream, open(temporary, "wb") as out:
            shutil.copyfileobj(stream, out, _CHUNK)
        os.replace(temporary, target)
        report.extracted.append(name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, RuntimeError, NotImplementedError) as error:
        if os.path.exists(temporary):
            os.unlink(temporary)
        report.failed.append((name, f"{type(error).__name__}: {error}"))


def _refuse(name: str, root: str, *, link: bool, special: bool) -> str | None:
    problem = member_name_problem(name)
    if problem:
        return problem
    if link:
        return "links are not extracted"
    if special:
        return "not a regular file or folder (device, FIFO)"
    target = os.path.realpath(os.path.join(root, name.replace("\\", "/")))
    if os.path.commonpath([target, root]) != root:
        return f"would be written outside the destination ({target})"
    return None


def _make_dir(root: str, name: str) -> None:
    os.makedirs(os.path.join(root, name.replace("\\", "/")), exist_ok=True)
