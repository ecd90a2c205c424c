"""Decoding bounded in time and memory, for every format: `ImageDecoder` decodes in a child process.

Why a process: a decoder is C code looping and allocating as the file says; no in-process check can
stop a loop it did not foresee, and an allocation failure should cost one file, not the worker. So:

- The child (``python -m dataset.decode_guard``) is started on first use and reused; it decodes with
  `dataset.decode.decode_image` (structural checks included), one image at a time.
- Memory: the child limits its own address space (``RLIMIT_AS``) to what it uses after its imports
  plus `DecodeBudget.memory_bytes`; an allocation past it fails inside the decoder (`decode_limit`).
  OpenCV's own allocation guard (``OPENCV_IO_MAX_IMAGE_PIXELS``) and Pillow's (``MAX_IMAGE_PIXELS``)
  are set to `max_pixels` in the child, where no one else shares them.
- Time: each image gets a budget of CPU time proportional to its declared size (what a real photo
  of that size needs, with a wide margin): `cpu_base_s + cpu_per_megapixel_s × MP`, and a wall-clock
  limit of `wall_factor ×` that plus `wall_slack_s` (stalls, a starved machine). The parent watches
  both; past either the child is killed (`decode_limit`) and a replacement starts at once. CPU time,
  not wall time, is the main measure because a busy node (Ray actors share cores) stretches wall
  time 2-4x: a wall-only budget either kills large real photos there or lets a bomb run long. The
  kernel enforces the CPU budget too (``RLIMIT_CPU``), for a child whose parent died mid-decode.
- It is a subprocess (``exec``), never ``os.fork`` of the caller: Ray actors are multi-threaded.
  Messages go over a ``SOCK_SEQPACKET`` socket pair; the file's bytes through an in-memory file
  (memfd) shared with the child, the pixels back in a fresh memfd per image that the parent maps
  as the result array (no copy on the parent's side).

The child acknowledges each file before decoding it: a child that dies after that costs the file
(`decode_limit` when killed for a budget or by the kernel, `unreadable` when a decoder crashed); one
that dies before it (killed between images) costs nothing, the file goes to its replacement.

One decoder per thread is the intended use (calls are serialised by a lock). A decoder pickles
without its child, so it can be shipped to Ray workers; `close()` (or ``with``) stops the child.
Linux only (memfd, SCM_RIGHTS, /proc).
"""
from __future__ import annotations

import json
import math
import mmap
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dataset.decode import DEFAULT_MAX_PIXELS, DEFAULT_MIN_SIDE, check_limits, decode_image
from dataset.image_checks import inspect_image
from dataset.reasons import InputRejected, Reason

__all__ = ["DecodeBudget", "ImageDecoder"]

_READY = b"DRDY"
_ACK = b"DACK"  # the child has the file: dying after this costs the file, dying before costs nothing
_REQUEST = struct.Struct("<4sQIQ")  # magic, max_pixels, min_side, data length
_REPLY = struct.Struct("<4sQQ")  # kind, height, width; then the detail/error text
_MAX_MESSAGE = 1 << 16
_STARTUP_TIMEOUT_S = 120.0  # imports on a loaded machine; not part of any image's budget
_KEEP_INPUT_BYTES = 16 << 20  # the shared input file is emptied after a larger file
_POLL_S = 0.05  # how often the parent looks at the child's CPU time
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_SETTINGS_ENV = "DECODE_GUARD_SETTINGS"


@dataclass(frozen=True)
class DecodeBudget:
    """CPU time, wall time and memory one image may use in the child (see the module docstring).

    Defaults: a 12 MP photo may use 2.9 s of CPU (it needs about 0.3 s to decode), a 40 MP one 8.5 s;
    a float TIFF, the costliest real case, needs about 0.12 s per megapixel.
    """

    cpu_base_s: float = 0.5
    cpu_per_megapixel_s: float = 0.2
    wall_factor: float = 4.0
    wall_slack_s: float = 2.0
    memory_bytes: int = 1 << 30

    def check_inputs(self) -> None:
        if not self.cpu_base_s > 0:
            raise ValueError(f"`cpu_base_s` must be positive, got {self.cpu_base_s}.")
        if self.cpu_per_megapixel_s < 0:
            raise ValueError(f"`cpu_per_megapixel_s` must be >= 0, got {self.cpu_per_megapixel_s}.")
        if self.wall_factor < 1:
            raise ValueError(f"`wall_factor` must be at least 1, got {self.wall_factor}.")
        if self.wall_slack_s < 0:
            raise ValueError(f"`wall_slack_s` must be >= 0, got {self.wall_slack_s}.")
        if self.memory_bytes < 64 << 20:
            raise ValueError(f"`memory_bytes` must be at least 64 MiB, got {self.memory_bytes}.")

    def cpu_seconds_for(self, pixels: int) -> float:
        return self.cpu_base_s + self.cpu_per_megapixel_s * pixels / 1e6

    def wall_seconds_for(self, pixels: int) -> float:
        return self.wall_factor * self.cpu_seconds_for(pixels) + self.wall_slack_s


class ImageDecoder:
    """`decode(data)` like `decode_image`, in a reusable child process bounded in time and memory."""

    def __init__(
        self,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_side: int = DEFAULT_MIN_SIDE,
        budget: DecodeBudget | None = None,
    ) -> None:
        check_limits(max_pixels, min_side)
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.budget = budget or DecodeBudget()
        self.budget.check_inputs()
        self._starts = 0
        self._child: _Child | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------- public API
    def decode(self, data: bytes, *, max_pixels: int | None = None, min_side: int | None = None) -> np.ndarray:
        """(H, W, 3) uint8 sRGB, or `InputRejected` (`decode_limit` when the budget ran out).

        `max_pixels`/`min_side` default to the decoder's; `max_pixels` may only be lowered (the
        child's library guards are set to the decoder's value).
        """
        max_pixels = self.max_pixels if max_pixels is None else max_pixels
        min_side = self.min_side if min_side is None else min_side
        check_limits(max_pixels, min_side)
        if max_pixels > self.max_pixels:
            raise ValueError(f"`max_pixels` {max_pixels:,} exceeds this decoder's ceiling {self.max_pixels:,}.")
        info = inspect_image(data, max_pixels=max_pixels, min_side=min_side)  # cheap refusals stay here
        pixels = info.pixels or max_pixels
        limits = _Limits(self.budget.cpu_seconds_for(pixels), self.budget.wall_seconds_for(pixels))
        with self._lock:
            for attempt in range(2):
                child = self._running_child()
                try:
                    return child.decode(data, max_pixels, min_side, limits)
                except _ChildGone as gone:
                    child.stop(kill=True)
                    self._child = _Child.spawn(self.max_pixels, self.budget)  # imports while the caller goes on
                    self._starts += 1
                    if not (gone.unread and attempt == 0):  # a child that died before reading it: try once more
                        raise gone.rejection(limits) from None
            raise AssertionError("unreachable")

    @property
    def restarts(self) -> int:
        """Children started to replace a killed or dead one."""
        return max(0, self._starts - 1)

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first decode)."""
        return self._child.process.pid if self._child is not None else None

    def child_peak_rss_bytes(self) -> int | None:
        """The child's peak resident memory (VmHWM from /proc); None when there is no child."""
        return _status_bytes(self.pid, "VmHWM") if self.pid else None

    def close(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop(kill=False)

    def __enter__(self) -> "ImageDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to report to
            pass

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_child=None, _lock=None, _starts=0)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _running_child(self) -> "_Child":
        """A child that has finished its imports: the current one, or a new one (one more try if it dies starting)."""
        for attempt in range(2):
            if self._child is None or self._child.process.poll() is not None:
                if self._child is not None:
                    self._child.stop(kill=True)  # it died between calls
                self._child = _Child.spawn(self.max_pixels, self.budget)
                self._starts += 1
            try:
                self._child.wait_ready()
                return self._child
            except RuntimeError:
                self._child = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class _Limits:
    cpu_s: float
    wall_s: float


class _ChildGone(Exception):
    """The child stopped answering: over a budget (`over` says which), or dead (its exit status)."""

    def __init__(self, status: int | None, over: str = "", *, unread: bool = False) -> None:
        super().__init__(status, over)
        self.status = status
        self.over = over  # "cpu" or "wall" when the parent stopped it
        self.unread = unread  # it died with the request still unread (it was dead before this call)

    def rejection(self, limits: _Limits) -> InputRejected:
        if self.over == "wall":
            return InputRejected(Reason.DECODE_LIMIT, f"decoding ran past its wall-clock limit of {limits.wall_s:.1f} s; stopped")
        if self.over == "cpu" or self.status in (-signal.SIGXCPU, -signal.SIGKILL):
            return InputRejected(
                Reason.DECODE_LIMIT,
                f"decoding needed more than its {limits.cpu_s:.1f} s of CPU time for this image size; stopped",
            )
        return InputRejected(Reason.UNREADABLE, f"the decoder process died on this file (exit status {self.status})")


class _Child:
    """One running child process and the parent's ends of its socket and shared input file."""

    def __init__(self, process: subprocess.Popen, sock: socket.socket, input_fd: int) -> None:
        self.process = process
        self.sock = sock
        self.input_fd = input_fd
        self.ready = False
        self.stopped = False

    @classmethod
    def spawn(cls, max_pixels: int, budget: DecodeBudget) -> "_Child":
        """Start a child; it imports while the caller goes on (`wait_ready` before the first request)."""
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        input_fd = os.memfd_create("decode-input", 0)
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p),
            OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
            OPENCV_IO_MAX_IMAGE_PIXELS=str(max_pixels),
        )
        env[_SETTINGS_ENV] = json.dumps(
            {"max_pixels": max_pixels, "socket": child_end.fileno(), "input": input_fd, **asdict(budget)}
        )
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "dataset.decode_guard"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                cwd=root,  # `-m` imports from the working folder first: ours, never the caller's
                close_fds=True, pass_fds=(child_end.fileno(), input_fd),
            )
        except BaseException:
            parent_end.close()
            os.close(input_fd)
            raise
        finally:
            child_end.close()
        return cls(process, parent_end, input_fd)

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            message, _ = self.receive(_Limits(_STARTUP_TIMEOUT_S, _STARTUP_TIMEOUT_S))
        except _ChildGone:
            message = b""
        if message != _READY:
            self.stop(kill=True)
            raise RuntimeError("the image decoder process did not start")
        self.ready = True

    def decode(self, data: bytes, max_pixels: int, min_side: int, limits: _Limits) -> np.ndarray:
        os.pwrite(self.input_fd, data, 0)
        try:
            self.sock.send(_REQUEST.pack(b"DREQ", max_pixels, min_side, len(data)))
            try:
                acknowledged, _ = self.receive(limits)
            except _ChildGone as gone:
                gone.unread = gone.over == ""  # it died before taking the file (killed between calls)
                raise
        except OSError:  # already gone: the request was never delivered
            raise _ChildGone(self.process.wait(), unread=True) from None
        finally:
            if len(data) > _KEEP_INPUT_BYTES:
                os.ftruncate(self.input_fd, 0)
        if acknowledged != _ACK:
            raise RuntimeError("the image decoder process answered with something unexpected")
        message, pixels_fd = self.receive(limits)
        kind, height, width = _REPLY.unpack_from(message)
        text = message[_REPLY.size :].decode("utf-8", "replace")
        if kind == b"DOK_" and pixels_fd is not None:
            return _map_pixels(pixels_fd, height, width)
        if kind == b"DREJ":
            reason, _, detail = text.partition("\n")
            raise InputRejected(Reason(reason), detail)
        raise RuntimeError(f"image decoder failed: {text}")

    def receive(self, limits: _Limits) -> tuple[bytes, int | None]:
        """One message (and the file descriptor sent with it) within `limits`, else `_ChildGone`."""
        deadline = time.monotonic() + limits.wall_s
        cpu_at_start = self.cpu_seconds()
        while True:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self.sock], [], [], max(0.0, min(_POLL_S, remaining)))
            if readable:
                break
            if self.cpu_seconds() - cpu_at_start > limits.cpu_s:
                raise _ChildGone(None, "cpu")
            if remaining <= 0:
                raise _ChildGone(None, "wall")
        try:
            message, fds, _, _ = socket.recv_fds(self.sock, _MAX_MESSAGE, 1)
        except OSError:  # ECONNRESET: the child's end closed with a message of ours unread
            message, fds = b"", []
        if not message:
            raise _ChildGone(self.process.wait())
        return message, (fds[0] if fds else None)

    def cpu_seconds(self) -> float:
        """CPU time the child has used (all its threads), from /proc; 0 when it cannot be read."""
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self, *, kill: bool) -> None:
        """End the child and release the parent's ends (idempotent: descriptors are closed once)."""
        if self.stopped:
            return
        self.stopped = True
        if kill:
            self.process.kill()
        self.sock.close()  # the child reads end-of-file and exits
        try:
            self.process.wait(timeout=None if kill else 2.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.input_fd)


def _map_pixels(fd: int, height: int, width: int) -> np.ndarray:
    """The child's pixels as an array over its memfd (mapped, not copied); the fd is closed."""
    try:
        size = height * width * 3
        if os.fstat(fd).st_size < size:
            raise RuntimeError("image decoder returned fewer pixels than it announced")
        mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    return np.frombuffer(mapping, np.uint8, size).reshape(height, width, 3)


def _status_bytes(pid: int | None, field: str) -> int | None:
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


# ------------------------------------------------------------------------------------------- child


def _serve() -> None:
    """The child: limits itself, then answers requests until the parent's socket closes."""
    settings = json.loads(os.environ.pop(_SETTINGS_ENV))
    budget = DecodeBudget(**{k: v for k, v in settings.items() if k in DecodeBudget.__dataclass_fields__})
    sock = socket.socket(fileno=settings["socket"])
    input_fd = settings["input"]
    import cv2
    from PIL import Image

    cv2.setNumThreads(1)
    Image.MAX_IMAGE_PIXELS = int(settings["max_pixels"])
    baseline = _status_bytes(None, "VmSize")
    if baseline is not None:
        limit = baseline + budget.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sock.send(_READY)
    while True:
        request = sock.recv(_MAX_MESSAGE)
        if len(request) != _REQUEST.size:
            return  # the parent closed its end (or sent nonsense): exit
        magic, max_pixels, min_side, length = _REQUEST.unpack(request)
        if magic != b"DREQ":
            return
        data = os.pread(input_fd, length, 0)
        sock.send(_ACK)
        _limit_cpu_time(budget.cpu_seconds_for(max_pixels) + 1.0)
        try:
            rgb = decode_image(data, max_pixels=max_pixels, min_side=min_side)
        except InputRejected as rejected:
            _reply(sock, b"DREJ", f"{rejected.reason.value}\n{rejected.detail}")
        except MemoryError:
            _reply(sock, b"DREJ", f"{Reason.DECODE_LIMIT.value}\nnot enough memory to decode this image")
        except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
            _reply(sock, b"DERR", f"{type(error).__name__}: {error}")
        else:
            _send_pixels(sock, np.ascontiguousarray(rgb))
        finally:
            rgb = data = None


def _send_pixels(sock: socket.socket, rgb: np.ndarray) -> None:
    fd = os.memfd_create("decoded-pixels", 0)
    try:
        os.pwrite(fd, memoryview(rgb).cast("B"), 0)
        socket.send_fds(sock, [_REPLY.pack(b"DOK_", rgb.shape[0], rgb.shape[1])], [fd])
    finally:
        os.close(fd)


def _reply(sock: socket.socket, kind: bytes, text: str) -> None:
    sock.send(_REPLY.pack(kind, 0, 0) + text.encode("utf-8", "replace")[: _MAX_MESSAGE - _REPLY.size])


def _limit_cpu_time(seconds: float) -> None:
    """The kernel's copy of the CPU budget (whole seconds): `seconds` more CPU time, then SIGXCPU."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    allowed = math.ceil(used.ru_utime + used.ru_stime + seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        allowed = min(allowed, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (allowed, hard))


if __name__ == "__main__":
    _serve()
