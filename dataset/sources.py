"""Input discovery and reading: a folder, an archive, or a list file → sources → bytes.

A *source* is a string naming one input, holding the exact bytes of its name (names that are not
UTF-8 keep their bytes as ``surrogateescape`` characters, as `os.fsdecode` gives them):

- a file: its absolute path, e.g. ``/data/photos/a.jpg``;
- an archive member: ``ARCHIVE//member/path``, e.g. ``/data/batch.zip//photos/a.jpg``. The
  separator ``//`` never occurs in a file source (a canonical path has no empty component), so a
  source names a member exactly when it contains ``//`` after its first character, and the archive
  is everything before the first one: a file named ``pack.zip!x.jpg`` is that file, and a member
  may be called anything (``a//b!c.jpg`` too).

`printable_source` is the text form stored in results (valid UTF-8, one line, and one-to-one:
`source_from_printable` gives the source back). `list_inputs` turns what the user passed into
sources; `InputReader.read` turns one source into bytes or raises `InputRejected`. Every listed
source is meant to end as one output row, so listing is generous (every regular file, every archive
member, links and special files too) and reading is strict (links escaping the input folder, unsafe
member names, names with a NUL byte, special files and oversized inputs are refused with a reason).
Rejection details name no file contents and no paths (the source column names the input).

Listing rules:

- Folders are walked recursively and listed in sorted order of their relative paths. Hidden names
  (starting with ``.``, e.g. ``.DS_Store``, ``.git/``) are skipped, and links to folders are not
  followed. Archives inside a folder are plain files (not opened).
- Archives (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``, ``.tar.bz2``, ``.tar.xz``): one source per
  non-folder member; zip members sorted by name, tar members in archive order (so that a job reads a
  compressed tar in one pass); hidden members and ``__MACOSX/`` are skipped; a name that appears twice
  is listed once and reads its first copy. An archive that cannot be opened, or is damaged after
  some members, adds the source ``ARCHIVE//`` (empty member) so the damage shows as an
  ``unreadable`` row instead of silently losing inputs.
- List files (``.txt``, ``.lst``): one entry per line, relative to the list's folder or absolute;
  blank lines and lines starting with ``#`` are ignored. An entry that exists as a path is that
  path (a folder or an archive is expanded as above); otherwise an entry with ``//`` names an archive
  member; otherwise it is a file that will be an ``unreadable`` row. Repeated entries are listed
  once, in first-seen order. An entry with a NUL byte is kept and refused (``unsafe_path``) on reading.

Reading tar archives: members are read by streaming forward through the archive, remembering only
headers, so reading the sources of a compressed tar in listing order inflates it once; reading one
behind the stream position seeks back (free for a plain ``.tar``, a re-inflation for a compressed one).
"""
from __future__ import annotations

import json
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections import OrderedDict

from dataset.reasons import InputRejected, Reason

ARCHIVE_SEPARATOR = "//"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
LIST_SUFFIXES = (".txt", ".lst")
DEFAULT_MAX_BYTES = 64 << 20
MANIFEST_NAME = "manifest.json"
_MAX_MANIFEST_BYTES = 16 << 20
_CHUNK = 1 << 20
# Characters `printable_source` escapes besides the backslash: controls (C0, DEL, C1), surrogates, line and
# paragraph separators, and bidirectional overrides (which can make a name display as another).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\\\]")
_ESCAPE = re.compile(r"\\(?:\\|x([0-9a-f]{2})|u([0-9a-f]{4}))|\\")


# ---------------------------------------------------------------------------------------------- names


def canonical_path(path: str | os.PathLike) -> str:
    """The form a file path takes in a source: absolute, symlinks kept, no ``..``, no ``//``."""
    return os.path.abspath(os.fspath(path))


def is_archive(path: str | os.PathLike) -> bool:
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def split_source(source: str) -> tuple[str, str | None]:
    """``(archive, member)`` for an archive member source, ``(path, None)`` for a file."""
    at = source.find(ARCHIVE_SEPARATOR, 1)  # a path may start with exactly two slashes (POSIX)
    if at < 0:
        return source, None
    return source[:at], source[at + len(ARCHIVE_SEPARATOR) :]


def member_source(archive: str | os.PathLike, member: str) -> str:
    return f"{canonical_path(archive)}{ARCHIVE_SEPARATOR}{member}"


def printable_source(source: str) -> str:
    """`source` as one line of valid UTF-8 text, one-to-one: raw name bytes become ``\\xNN`` (80–ff),
    control characters ``\\xNN`` (00–1f, 7f) or ``\\uNNNN``, a backslash ``\\\\``; the rest is kept."""
    return _UNPRINTABLE.sub(_escape_one, source)


def _escape_one(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    if char == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def source_from_printable(text: str) -> str:
    """The source `printable_source` turned into `text` (ValueError for text it cannot have produced)."""

    def unescape(match: re.Match) -> str:
        byte, char = match.group(1), match.group(2)
        if byte is not None:
            code = int(byte, 16)
            return chr(code if code < 0x80 else 0xDC00 + code)
        if char is not None:
            return chr(int(char, 16))
        if match.group() == "\\\\":
            return "\\"
        raise ValueError(f"not a printable source: a lone backslash at {match.start()}")

    source = _ESCAPE.sub(unescape, text)
    if printable_source(source) != text:
        raise ValueError("not a printable source: it escapes characters printable_source keeps, or keeps ones it escapes")
    return source


def member_name_problem(name: str) -> str | None:
    """Why an archive member name is unsafe to use as a relative path, or None when it is safe."""
    if "\x00" in name:
        return "member name contains a NUL byte"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return "absolute member path"
    if ".." in normalised.split("/"):
        return "member path escapes the archive folder ('..')"
    return None


def _is_hidden_member(name: str) -> bool:
    normalised = name.replace("\\", "/")
    return normalised.startswith("__MACOSX/") or os.path.basename(normalised.rstrip("/")).startswith(".")


def is_preprocess_output(path: str | os.PathLike) -> bool:
    """Whether `path` is an output folder of `jobs.preprocess`: its ``manifest.json`` says ``"job": "preprocess"``.

    A folder is never judged by its subfolders (a photo folder may well have one named ``shards``);
    an unreadable, oversized or malformed manifest means "no".
    """
    folder = os.fspath(path)
    manifest = os.path.join(folder, MANIFEST_NAME)
    if not os.path.isdir(folder) or not os.path.isfile(manifest):
        return False
    try:
        with open(manifest, "rb") as stream:
            content = read_limited(stream, _MAX_MANIFEST_BYTES, what="manifest")
        parsed = json.loads(content)
    except (OSError, ValueError, InputRejected):
        return False
    return isinstance(parsed, dict) and parsed.get("job") == "preprocess"


# -------------------------------------------------------------------------------------------- listing


def list_inputs(path: str | os.PathLike) -> list[str]:
    """Sources for a folder, an archive, a list file or a single file (see the module docstring)."""
    path = canonical_path(path)
    if os.path.isdir(path):
        return _list_folder(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Input {printable_source(path)!r} does not exist.")
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
        names = [name for name in dict.fromkeys(handle.names()) if not _is_hidden_member(name)]
        if isinstance(handle, _ZipArchive):
            names.sort()
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
            for source in _list_entry(base, entry):
                seen.setdefault(source)
    return list(seen)


def _list_entry(base: str, entry: str) -> list[str]:
    target = os.path.join(base, entry)
    if not os.path.lexists(target):  # False for a name with a NUL byte
        archive, member = split_source(entry)
        if member is not None:
            return [member_source(os.path.join(base, archive), member)]
    target = canonical_path(target)
    if os.path.isdir(target):
        return _list_folder(target)
    if is_archive(target) and os.path.isfile(target):
        return _list_archive(target)
    return [target]  # missing files are kept: they become `unreadable` rows


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
        if "\x00" in source:
            raise InputRejected(Reason.UNSAFE_PATH, "the name contains a NUL byte, which no file name can hold")
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
            raise InputRejected(Reason.UNSAFE_PATH, "a link that resolves outside the input folder")

    def _read_file(self, path: str) -> bytes:
        self._check_inside_root(path)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            detail = "broken symbolic link" if os.path.islink(path) else _missing_file_detail(path)
            raise InputRejected(Reason.UNREADABLE, detail) from None
        except IsADirectoryError:
            raise InputRejected(Reason.UNREADABLE, "a folder, not a file") from None
        except OSError as error:
            raise InputRejected(Reason.UNREADABLE, f"cannot open: {error.strerror or type(error).__name__}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            if stat.S_ISDIR(info.st_mode):
                raise InputRejected(Reason.UNREADABLE, "a folder, not a file")
            raise InputRejected(Reason.UNSAFE_PATH, "not a regular file (device, FIFO or socket)")
        with os.fdopen(fd, "rb") as stream:
            if info.st_size > self.max_bytes:
                raise InputRejected(Reason.TOO_LARGE, f"{info.st_size:,} bytes (limit {self.max_bytes:,})")
            try:
                return read_limited(stream, self.max_bytes, what="file")
            except OSError as error:
                raise InputRejected(Reason.UNREADABLE, f"I/O error: {error.strerror or type(error).__name__}") from None

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


def _missing_file_detail(path: str) -> str:
    if "!" in os.path.basename(path):
        return f"no such file (archive members are named ARCHIVE{ARCHIVE_SEPARATOR}MEMBER)"
    return "no such file"


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


def _error_name(error: BaseException) -> str:
    """How an archive library's error is described: its type and, for I/O and zlib, the system's words."""
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    if isinstance(error, zlib.error):
        return f"zlib error: {str(error).split(':')[0]}"
    return type(error).__name__


class _Archive:
    """An open archive: member names, and reads that check name, type and size first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.error: str | None = None  # damage found after some members were listed
        self.signature: tuple[int, int] | None = None

    def names(self) -> list[str]:
        """Every non-folder member name, in archive order (repeats included)."""
        raise NotImplementedError

    def read(self, member: str, max_bytes: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _check_name(self, member: str) -> None:
        if member == "":
            raise InputRejected(Reason.UNREADABLE, f"archive is damaged: {self.damage() or 'no member name given'}")
        problem = member_name_problem(member)
        if problem:
            raise InputRejected(Reason.UNSAFE_PATH, problem)

    def damage(self) -> str | None:
        return self.error


class _ZipArchive(_Archive):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.zip = zipfile.ZipFile(path)
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            self.infos.setdefault(info.filename, info)  # a repeated name reads its first copy

    def names(self) -> list[str]:
        return [info.filename for info in self.zip.infolist() if not info.is_dir()]

    def read(self, member: str, max_bytes: int) -> bytes:
        self._check_name(member)
        info = self.infos.get(member)
        if info is None or info.is_dir():
            raise InputRejected(Reason.UNREADABLE, "no such member in the archive")
        kind = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
        if kind == stat.S_IFLNK:
            raise InputRejected(Reason.UNSAFE_PATH, "member is a symbolic link")
        if kind not in (0, stat.S_IFREG):
            raise InputRejected(Reason.UNSAFE_PATH, "member is not a regular file")
        if info.file_size > max_bytes:
            raise InputRejected(Reason.TOO_LARGE, f"member claims {info.file_size:,} bytes (limit {max_bytes:,})")
        try:
            with self.zip.open(info) as stream:
                return read_limited(stream, max_bytes, what="member")
        except InputRejected:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
            raise InputRejected(Reason.UNREADABLE, f"member cannot be read: {_error_name(error)}") from None

    def close(self) -> None:
        self.zip.close()


class _TarArchive(_Archive):
    """A tar read forward: headers are remembered (first copy of each name), data is never cached."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.tar = tarfile.open(path, "r:*")
        self.headers: dict[str, tarfile.TarInfo] = {}
        self.finished = False

    def _next(self) -> tarfile.TarInfo | None:
        if self.finished:
            return None
        try:
            info = self.tar.next()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            self.error = f"damaged after {len(self.headers)} members ({_error_name(error)})"
            info = None
        self.tar.members.clear()  # tarfile keeps every header it read; `headers` holds what we need
        if info is None:
            self.finished = True
        else:
            self.headers.setdefault(info.name, info)
        return info

    def names(self) -> list[str]:
        names = [info.name for info in self.headers.values() if not info.isdir()]
        while (info := self._next()) is not None:
            if not info.isdir():
                names.append(info.name)
        return names

    def damage(self) -> str | None:
        while self._next() is not None:
            pass
        return self.error

    def _find(self, member: str) -> tarfile.TarInfo | None:
        info = self.headers.get(member)
        while info is None and not self.finished:
            self._next()
            info = self.headers.get(member)
        return info

    def read(self, member: str, max_bytes: int) -> bytes:
        self._check_name(member)
        info = self._find(member)
        if info is None or info.isdir():
            detail = "no such member in the archive"
            raise InputRejected(Reason.UNREADABLE, f"{detail}; the archive is {self.error}" if self.error else detail)
        if info.issym() or info.islnk():
            raise InputRejected(Reason.UNSAFE_PATH, f"member is a {'symbolic' if info.issym() else 'hard'} link")
        if not info.isfile():
            raise InputRejected(Reason.UNSAFE_PATH, "member is not a regular file (device or FIFO)")
        if info.size > max_bytes:
            raise InputRejected(Reason.TOO_LARGE, f"member claims {info.size:,} bytes (limit {max_bytes:,})")
        try:
            stream = self.tar.extractfile(info)
            if stream is None:
                raise InputRejected(Reason.UNREADABLE, "member has no data")
            with stream:
                return read_limited(stream, max_bytes, what="member")
        except InputRejected:
            raise
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise InputRejected(Reason.UNREADABLE, f"member cannot be read: {_error_name(error)}") from None

    def close(self) -> None:
        self.tar.close()


def _open_archive(path: str) -> _Archive | InputRejected:
    """Open `path` as zip or tar (judged by content, then by name), or the reason it cannot be."""
    try:
        if zipfile.is_zipfile(path):
            return _ZipArchive(path)
        if path.lower().endswith(".zip"):
            return InputRejected(Reason.UNREADABLE, "not a readable zip archive")
        return _TarArchive(path)
    except FileNotFoundError:
        return InputRejected(Reason.UNREADABLE, "the archive does not exist")
    except IsADirectoryError:
        return InputRejected(Reason.UNREADABLE, "the archive is a folder")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as error:
        return InputRejected(Reason.UNREADABLE, f"the archive cannot be opened: {_error_name(error)}")
