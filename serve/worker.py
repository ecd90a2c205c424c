"""One job at a time in a child process that can be stopped: the service's unit of enforceable work.

Why a process: a Python thread cannot be killed, and the pipeline is C code (decoders, MediaPipe,
OpenCV, torch) that checks nothing between its loops. So each worker slot of `serve.runner.JobRunner`
owns one long-lived child process (models load once in it, on its first job) and sends it jobs over a
pipe; progress comes back on the same pipe. When a job must stop before it ends (its time budget is
spent, the client deleted it, the server is shutting down), the child's whole process group is
SIGKILLed (grandchildren such as `dataset.decode_guard`'s decoder go with it) and a fresh child is
started for the next job: only a stopped job pays for reloading the models.

The child is a fresh interpreter (`python -m serve.worker`, never a fork of the multi-threaded server,
and unlike multiprocessing's "spawn" it does not re-import the server's `__main__`, which may be a
Ray worker or stdin), in a session of its own; parent and child talk through a
`multiprocessing.connection.Connection` over a socket pair. The pipeline factory is sent to it
pickled (it comes from the server itself, never from a client), so it must be a module-level class or
a `functools.partial` of one. The child dies with its parent (`PR_SET_PDEATHSIG`), so a killed server
leaves no job running.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from serve.store import json_safe

_PR_SET_PDEATHSIG = 1
_FD_ENV = "AVATAR_WORKER_FD"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 120.0  # imports on a loaded machine; not part of any job's budget
POLL_S = 0.1  # how often a waiting parent looks at its deadline and the cancel flag


@dataclass(frozen=True)
class Job:
    """What the child needs to run one job: all plain values (they cross a pipe)."""

    job_id: str
    source: str
    input_path: str
    request: dict[str, Any]
    output_dir: str


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended in the worker.

    kind: "done" (the pipeline returned `row`), "error" (the pipeline raised: `detail`), "timeout"
    (over budget; the child was killed), "cancelled" (stopped on request; the child was killed) or
    "crashed" (the child died by itself: `detail` names the exit status).
    """

    kind: str
    row: dict[str, Any] | None = None
    detail: str = ""
    seconds: float = 0.0


class WorkerStartError(RuntimeError):
    """The child process did not come up (it crashed while importing or building its pipeline)."""


class WorkerProcess:
    """A child process running `pipeline_factory()`'s pipeline, one job at a time.

    `run(job, budget_s, on_progress, should_stop)` blocks until the job ends and returns a `JobOutcome`;
    it kills and replaces the child when the job is over budget or `should_stop()` turns true.
    Not thread-safe: one caller (a runner's worker thread) per instance.
    """

    def __init__(self, pipeline_factory: Callable[[], Any], name: str = "avatar-worker") -> None:
        self.pipeline_factory = pipeline_factory
        self.name = name
        self.restarts = 0  # children started to replace a killed or dead one
        self.keep_warm = True  # start a successor as soon as a child is killed (off while shutting down)
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._ready = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child if none is running (it imports and builds its pipeline in the background)."""
        if self._process is not None and self._process.poll() is None:
            return
        self._discard()
        parent_end, child_end = socket.socketpair()
        search_path = [str(_PROJECT_ROOT), *(p for p in sys.path if p)]  # this package, and the factory's modules
        env = {**os.environ, _FD_ENV: str(child_end.fileno()), "PYTHONPATH": os.pathsep.join(search_path)}
        try:
            process = subprocess.Popen([sys.executable, "-m", "serve.worker", self.name], env=env, stdin=subprocess.DEVNULL,
                                       pass_fds=(child_end.fileno(),), start_new_session=True, close_fds=True)
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()
        self._process, self._conn, self._ready = process, Connection(parent_end.detach()), False
        try:
            self._conn.send(self.pipeline_factory)
        except (BrokenPipeError, OSError):
            pass  # it died at once: wait_ready reports it

    def stop(self) -> None:
        """Kill the child at once (a running job is lost; the caller records why)."""
        self._kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S, abort: Callable[[], bool] | None = None) -> bool:
        """Block until the child has built its pipeline (True), or `abort()` turned true (False);
        `WorkerStartError` when it died or hung."""
        self.start()
        if self._ready:
            return True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if abort is not None and abort():
                return False
            if self._conn.poll(POLL_S):
                message = self._receive()
                if message is not None and message[0] == "ready":
                    self._ready = True
                    return True
                break
            if self._process.poll() is not None:
                break
        detail = self._exit_text()
        self._kill()
        raise WorkerStartError(f"the worker process did not start ({detail})")

    # -- jobs --------------------------------------------------------------------------------
    def run(self, job: Job, budget_s: float, on_progress: Callable[[float, str], None],
            should_stop: Callable[[], bool]) -> JobOutcome:
        """Run `job` within `budget_s` seconds (counted from now); see `JobOutcome` for the endings.
        Call `wait_ready` first (start-up is not part of the budget)."""
        self.wait_ready()
        started = time.monotonic()
        deadline = started + budget_s
        try:
            self._conn.send(("job", job))
        except (BrokenPipeError, EOFError, OSError):
            return self._crashed(started)
        while True:
            if should_stop():
                self._replace()
                return JobOutcome("cancelled", seconds=time.monotonic() - started)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._replace()
                return JobOutcome("timeout", detail=f"The job ran past its time budget of {budget_s:g} s and was stopped.",
                                  seconds=time.monotonic() - started)
            if not self._conn.poll(min(POLL_S, remaining)):
                if self._process.poll() is not None and not self._conn.poll():
                    return self._crashed(started)
                continue
            message = self._receive()
            if message is None:
                return self._crashed(started)
            kind = message[0]
            if kind == "progress":
                on_progress(message[1], message[2])
            elif kind == "done":
                return JobOutcome("done", row=message[1], seconds=time.monotonic() - started)
            elif kind == "error":
                return JobOutcome("error", detail=message[1], seconds=time.monotonic() - started)

    # -- internals ---------------------------------------------------------------------------
    def _receive(self):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            return None

    def _crashed(self, started: float) -> JobOutcome:
        detail = f"The worker process died while running the job ({self._exit_text()})."
        self._replace()
        return JobOutcome("crashed", detail=detail, seconds=time.monotonic() - started)

    def _exit_text(self) -> str:
        process = self._process
        if process is None:
            return "not started"
        try:
            code = process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "no answer"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def _replace(self) -> None:
        """Kill the child and start its successor now, so it imports while the slot waits for work."""
        self._kill()
        self.restarts += 1
        if self.keep_warm:
            self.start()

    def _kill(self) -> None:
        process = self._process
        if process is not None:
            for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
                try:
                    kill()  # the process group first: the child leads its own session
                except (ProcessLookupError, PermissionError, OSError):
                    pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._discard()

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self._ready = None, None, False


# ------------------------------------------------------------------------------------------- child


def _child_main() -> None:
    """The child: dies with its parent, builds its pipeline, runs jobs until told to stop."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it stops us
    conn = Connection(int(os.environ.pop(_FD_ENV)))
    try:
        pipeline_factory = conn.recv()  # from the server that started us (see the module docstring)
    except (EOFError, OSError):
        return
    pipeline = pipeline_factory()
    try:
        conn.send(("ready",))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if not message or message[0] != "job":
                return
            job: Job = message[1]

            def progress(fraction: float, text: str) -> None:
                conn.send(("progress", float(fraction), str(text)))

            try:
                data = Path(job.input_path).read_bytes()
                row = pipeline.process(source=job.source, data=data, request=_request(job.request),
                                       output_dir=Path(job.output_dir), progress=progress)
                conn.send(("done", json_safe(dict(row))))
            except Exception as error:  # noqa: BLE001 - reported to the parent, which records it
                conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        pipeline.close()


def _request(values: dict[str, Any]):
    from actors.request import AvatarRequest

    return AvatarRequest.from_dict(values)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pipe's end-of-file still stops an idle child
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(0)


if __name__ == "__main__":
    _child_main()
