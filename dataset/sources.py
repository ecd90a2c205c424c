"""Input discovery and reading: a folder, an archive, or a list file → sources → bytes.

A *source* is a string naming one input:

- a file: its absolute path, e.g. ``/data/photos/a.jpg``;
- an archive member: ``ARCHIVE!member/path``, e.g. ``/data/batch.zip!photos/a.jpg``.

`list_inputs` turns what the user passed into sources; `InputReader.read` turns one source into
bytes or raises `InputRejected`. Every listed source is meant to end as one output row, so listing
is generous (every regular file, every archive member, links and special files too) and reading is
strict (links escaping the input folder, unsafe member names, special files and oversized inputs are
refused with a reason).

Listing rules:

- Folders are walked recursively and listed in sorted order of their relative paths. Hidden names
  (starting with ``.``, e.g. ``.DS_Store``, ``.git/``) are skipped, and links to folders are not
  followed. Archives inside a folder are plain files (not opened).
- Archives (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``): one source per
  non-folder member, sorted by member name; hidden members and ``__MACOSX/`` are skipped; a name that
  appears twice is listed once (zipfile reads the last copy). An archive that cannot be opened, or
  is damaged after some members, adds the source ``ARCHIVE!`` (empty member) so the damage shows as
  an ``unreadable`` row instead of silently losing inputs.
- List files (``.txt``, ``.lst``): one entry per line, relative to the list's folder or absolute;
  blank lines and lines starting with ``#`` are ignored; an entry naming a folder or an archive is
  expanded as above; repeated entries are listed once, in first-seen order.
"""
from __future__ import annotations

import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections import OrderedDict

from dataset.reasons import InputRejected, Reason

ARCHIVE_SEPARATOR = "!"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
LIST_SUFFIXES = (".txt", ".lst")
DEFAULT_MAX_BYTES = 64 << 20
_CHUNK = 1 << 20
_ARCHIVE_SOURCE = re.compile(
    r"^(?P<archive>.*?(?:" + "|".join(re.escape(s) for s in ARCHIVE_SUFFIXES) + r"))!(?P<member>.*)$",
    re.IGNORECASE | re.DOTALL,
)


# ---------------------------------------------------------------------------------------------- names


def canonical_path(path: str | os.PathLike) -> str:
    """The form a file path takes in a source: absolute, symlinks kept, no ``..``."""
    return os.path.abspath(os.fspath(path))


def is_archive(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def split_source(source: str) -> tuple[str, str | None]:
    """``(archive, member)`` for an archive member source, ``(path, None)`` for a file."""
    match = _ARCHIVE_SOURCE.match(source)
    if match:
        return match.group("archive"), match.group("member")
    return source, None


def member_source(archive: str | os.PathLike, member: str) -> str:
    return f"{canonical_path(archive)}{ARCHIVE_SEPARATOR}{member}"


def printable_source(source: str) -> str:
    """`source` as valid UTF-8 text: file names that are not UTF-8 get backslash escapes."""
    try:
        source.encode("utf-8")
        return source
    except UnicodeEncodeError:
        return source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def member_name_problem(name: str) -> str | None:
    """Why an archive member name is unsafe to use as a relative path, or None when it is safe."""
    if "\x00" in name:
        return "member name contains a NUL byte"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return f"absolute member path {name!r}"
    if ".." in normalised.split("/"):
        return f"member path {name!r} escapes the archive folder ('..')"
    return None


def _is_hidden_member(name: str) -> bool:
    normalised = name.replace("\\", "/")
    return normalised.startswith("__MACOSX/") or os.path.basename(normalised.rstrip("/")).startswith(".")


# -------------------------------------------------------------------------------------------- listing


def list_inputs(path: str | os.PathLike) -> list[str]:
    """Sources for a folder, an archive, a list file or a single file (see the module docstring)."""
    path = canonical_path(path)
    if os.path.isdir(path):
        return _list_folder(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Input {path!r} does not exist.")
    if is_archive(path):
        return _list_archive(path)
    if path.lower().endswith(LIST_SUFFIXES):
        return _list_file_list(path)
    return [path]


def _list_folder(root: str) -> list[str]:
    relative: list[str] = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                relative.append(os.path.relpath(os.path.join(folder, name), root))
    relative.sort(key=lambda rel: rel.replace(os.sep, "/"))
    return [os.path.join(root, rel) for rel in relative]


def _list_archive(archive: str) -> list[str]:
    handle = _open_archive(archive)
    if isinstance(handle, InputRejected):
        return [member_source(archive, "")]
    try:
        names = sorted({name for name in handle.names() if not _is_hidden_member(name)})
        sources = [member_source(archive, name) for name in names]
        if handle.error is not None:
            sources.append(member_source(archive, ""))
        return sources
    finally:
        handle.close()


def _list_file_list(list_path: str) -> list[str]:
    base = os.path.dirname(list_path)
    seen: dict[str, None] = {}
    with open(list_path, encoding="utf-8", errors="surrogateescape") as lines:
        for line in lines:
            entry = line.strip().lstrip("\ufeff")
            if not entry or entry.startswith("#"):
                continue
            archive, member = split_source(entry)
            if member is not None:
                seen.setdefault(member_source(os.path.join(base, archive), member))
                continue
            target = canonical_path(os.path.join(base, entry))
            if os.path.isdir(target):
                expanded = _list_folder(target)
            elif is_archive(target) and os.path.isfile(target):
                expanded = _list_archive(target)
            else:
                expanded = [target]  # missing files are kept: they become `unreadable` rows
            for source in expanded:
                seen.setdefault(source)
    return list(seen)


# -------------------------------------------------------------------------------------------- reading


class InputReader:
    """Reads sources into bytes, keeping a few archives open (LRU) between calls.

    One reader per thread (zip and tar handles are not thread-safe). `root`, when given, is the input
    folder: file sources whose real path (links resolved) lies outside it are refused as
    `unsafe_path`. `InputReader.for_input(path)` sets it for folder inputs. A reader pickles without
    its open archives, so it can be shipped to Ray workers.
    """

    def __init__(
        self,
        *,
        root: str | os.PathLike | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_open_archives: int = 4,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"`max_bytes` must be positive, got {max_bytes}.")
        if max_open_archives < 1:
            raise ValueError(f"`max_open_archives` must be at least 1, got {max_open_archives}.")
        self.root = os.path.realpath(root) if root is not None else None
        self.max_bytes = max_bytes
        self.max_open_archives = max_open_archives
        self._archives: OrderedDict[str, _Archive] = OrderedDict()

    @classmethod
    def for_input(cls, path: str | os.PathLike, **kwargs) -> "InputReader":
        """A reader for the sources `list_inputs(path)` returns (folder inputs get `root=path`)."""
        root = canonical_path(path) if os.path.isdir(path) else None
        return cls(root=root, **kwargs)

    def read(self, source: str) -> bytes:
        """The bytes of `source`, or `InputRejected` (unreadable, unsafe_path, too_large)."""
        archive, member = split_source(source)
        if member is None:
            return self._read_file(source)
        self._check_inside_root(archive)
        handle = self._archive(archive)
        return handle.read(member, self.max_bytes)

    def close(self) -> None:
        while self._archives:
            _, handle = self._archives.popitem()
            handle.close()

    def __enter__(self) -> "InputReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_archives"] = OrderedDict()
        return state

    def _check_inside_root(self, path: str) -> None:
        if self.root is None:
            return
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.root]) != self.root:
            raise InputRejected(Reason.UNSAFE_PATH, f"{path!r} resolves to {real!r}, outside the input folder")

    def _read_file(self, path: str) -> bytes:
        self._check_inside_root(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            detail = "broken symbolic link" if os.path.islink(path) else "no such file"
            raise InputRejected(Reason.UNREADABLE, f"{detail}: {path!r}") from None
        except IsADirectoryError:
            raise InputRejected(Reason.UNREADABLE, f"{path!r} is a folder, not a file") from None
        except OSError as error:
            raise InputRejected(Reason.UNREADABLE, f"cannot open {path!r}: {error.strerror or error}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            if stat.S_ISDIR(info.st_mode):
                raise InputRejected(Reason.UNREADABLE, f"{path!r} is a folder, not a file")
            raise InputRejected(Reason.UNSAFE_PATH, f"{path!r} is not a regular file (device, FIFO or socket)")
        with os.fdopen(fd, "rb") as stream:
            if info.st_size > self.max_bytes:
                raise InputRejected(Reason.TOO_LARGE, f"{info.st_size:,} bytes (limit {self.max_bytes:,})")
            try:
                return read_limited(stream, self.max_bytes, what=f"file {path!r}")
            except OSError as error:
                raise InputRejected(Reason.UNREADABLE, f"I/O error reading {path!r}: {error}") from None

    def _archive(self, path: str) -> "_Archive":
        try:
            info = os.stat(path)
            signature = (info.st_mtime_ns, info.st_size)
        except OSError:
            signature = None
        handle = self._archives.get(path)
        if handle is not None and handle.signature == signature:
            self._archives.move_to_end(path)
            return handle
        if handle is not None:
            self._archives.pop(path).close()
        opened = _open_archive(path)
        if isinstance(opened, InputRejected):
            raise opened
        opened.signature = signature
        self._archives[path] = opened
        while len(self._archives) > self.max_open_archives:
            _, oldest = self._archives.popitem(last=False)
            oldest.close()
        return opened


def read_bytes(source: str, *, max_bytes: int = DEFAULT_MAX_BYTES, root: str | os.PathLike | None = None) -> bytes:
    """Read one source with a throw-away `InputReader` (workers should keep a reader instead)."""
    with InputReader(root=root, max_bytes=max_bytes, max_open_archives=1) as reader:
        return reader.read(source)


def read_limited(stream, max_bytes: int, *, what: str = "input") -> bytes:
    """Read `stream` to its end, refusing (`too_large`) as soon as it passes `max_bytes`."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise InputRejected(Reason.TOO_LARGE, f"{what} is larger than {max_bytes:,} bytes")
        chunks.append(chunk)


# ------------------------------------------------------------------------------------------- archives


class _Archive:
    """An open archive: member names, and reads that check name, type and size first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.error: str | None = None  # damage found after some members were listed
        self.signature: tuple[int, int] | None = None

    def names(self) -> list[str]:
        raise NotImplementedError

    def read(self, member: str, max_bytes: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _check_name(self, member: str) -> None:
        if member == "":
            raise InputRejected(
                Reason.UNREADABLE, f"archive {self.path!r} is damaged: {self.error or 'no member name given'}"
            )
        problem = member_name_problem(member)
        if problem:
            raise InputRejected(Reason.UNSAFE_PATH, problem)


class _ZipArchive(_Archive):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.zip = zipfile.ZipFile(path)
        self.infos = {info.filename: info for info in self.zip.infolist()}

    def names(self) -> list[str]:
        return [name for name, info in self.infos.items() if not info.is_dir()]

    def read(self, member: str, max_bytes: int) -> bytes:
        self._check_name(member)
        info = self.infos.get(member)
        if info is None:
            raise InputRejected(Reason.UNREADABLE, f"no member {member!r} in {self.path!r}")
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            raise InputRejected(Reason.UNSAFE_PATH, f"member {member!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG):
            raise InputRejected(Reason.UNSAFE_PATH, f"member {member!r} is not a regular file")
        if info.file_size > max_bytes:
            raise InputRejected(
                Reason.TOO_LARGE, f"member {member!r} claims {info.file_size:,} bytes (limit {max_bytes:,})"
            )
        try:
            with self.zip.open(info) as stream:
                return read_limited(stream, max_bytes, what=f"member {member!r}")
        except InputRejected:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
            raise InputRejected(Reason.UNREADABLE, f"member {member!r} of {self.path!r}: {error}") from None

    def close(self) -> None:
        self.zip.close()


class _TarArchive(_Archive):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.tar = tarfile.open(path, "r:*")
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            for info in self.tar:
                self.members[info.name] = info
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            self.error = f"damaged after {len(self.members)} members: {error}"

    def names(self) -> list[str]:
        return [name for name, info in self.members.items() if not info.isdir()]

    def read(self, member: str, max_bytes: int) -> bytes:
        self._check_name(member)
        info = self.members.get(member)
        if info is None:
            raise InputRejected(Reason.UNREADABLE, f"no member {member!r} in {self.path!r}")
        if info.issym() or info.islnk():
            kind = "symbolic" if info.issym() else "hard"
            raise InputRejected(Reason.UNSAFE_PATH, f"member {member!r} is a {kind} link to {info.linkname!r}")
        if not info.isfile():
            raise InputRejected(Reason.UNSAFE_PATH, f"member {member!r} is not a regular file (device or FIFO)")
        if info.size > max_bytes:
            raise InputRejected(Reason.TOO_LARGE, f"member {member!r} claims {info.size:,} bytes (limit {max_bytes:,})")
        try:
            stream = self.tar.extractfile(info)
            if stream is None:
                raise InputRejected(Reason.UNREADABLE, f"member {member!r} has no data")
            with stream:
                return read_limited(stream, max_bytes, what=f"member {member!r}")
        except InputRejected:
            raise
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise InputRejected(Reason.UNREADABLE, f"member {member!r} of {self.path!r}: {error}") from None

    def close(self) -> None:
        self.tar.close()


def _open_archive(path: str) -> _Archive | InputRejected:
    """Open `path` as zip or tar (judged by content, then by name), or the reason it cannot be."""
    try:
        if zipfile.is_zipfile(path):
            return _ZipArchive(path)
        if path.lower().endswith(".zip"):
            return InputRejected(Reason.UNREADABLE, f"{path!r} is not a readable zip archive")
        return _TarArchive(path)
    except FileNotFoundError:
        return InputRejected(Reason.UNREADABLE, f"archive {path!r} does not exist")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as error:
        return InputRejected(Reason.UNREADABLE, f"archive {path!r} cannot be opened: {error}")

