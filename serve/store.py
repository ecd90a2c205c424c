"""The results folder: one directory per job, its record, its files, expiry and deletion.

Layout: `<results_dir>/<job id>/job.json` (the record), `input.<ext>` (the uploaded photo), the
pipeline's outputs (`avatars/<sha256>/...`) and `head_obj.zip`. Job ids are server-generated
tokens (32 lowercase hex characters); anything else is "not found" before a path is built. Files
are served only through the record's `files` map (public name -> path inside the job folder), so a
client-supplied name never becomes a path. Records live on disk, so several processes (Ray Serve
replicas on one node) that share the folder see the same jobs; writes are atomic (write + rename).

Only finished work expires: a finished job is deleted `ttl_s` after it ended. A job that is still
queued or running is never swept, however long it waits; it belongs to the service process that
accepted it (`owner`), which keeps a heartbeat file under `.owners/`. When that heartbeat stops (the
process died), the sweep answers the job `failed` with reason `interrupted`, so the client learns what
happened instead of getting 404, and the answer then expires like any other.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

JOB_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
FILE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+\-]{0,63}\.(png|glb|zip)")
RECORD_NAME = "job.json"

QUEUED, RUNNING, DONE, REJECTED, FAILED = "queued", "running", "done", "rejected", "failed"
TERMINAL = (DONE, REJECTED, FAILED)

# Reason codes of jobs that failed for the service's own reasons (the pipeline's are dataset.reasons.Reason).
JOB_TIMEOUT = "timeout"  # ran past job_timeout_s and was stopped
INTERRUPTED = "interrupted"  # the server stopped (or died) before the job finished
WORKER_CRASHED = "worker_crashed"  # the worker process died while running the job
OWNERS_DIR = ".owners"
HEARTBEAT_S = 5.0  # how often a live service refreshes its heartbeat file
OWNER_STALE_S = 60.0  # a heartbeat older than this: the service that owns the job is gone


class JobNotFound(Exception):
    """No such job (unknown, malformed, deleted or expired id), or no such file for it."""


@dataclass
class JobRecord:
    id: str
    status: str
    created_at: float
    updated_at: float
    request: dict[str, Any]
    input_name: str  # file name of the stored upload inside the job folder
    progress: float = 0.0
    message: str = ""
    started_at: float | None = None  # when it left the queue (its time budget counts from here)
    finished_at: float | None = None
    expires_at: float | None = None  # set when the job ends: finished_at + ttl
    owner: str = ""  # the service process responsible for the job until it ends
    reason: str = ""
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)  # the pipeline's row, JSON-safe
    files: dict[str, str] = field(default_factory=dict)  # public name -> path relative to the job folder

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def is_job_id(value: str) -> bool:
    return isinstance(value, str) and JOB_ID_PATTERN.fullmatch(value) is not None


def json_safe(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples and paths; NaN and inf become None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return json_safe(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return None
    return str(value)


def new_owner_id() -> str:
    """A service process's name in job records: host, pid and a random token (pids are reused)."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


class ResultStore:
    """Job folders under `root`: create, read, update, delete, expire. Thread-safe within a process.

    `owner` names the calling service process in the jobs it creates (see the module docstring).
    """

    def __init__(self, root: Path, ttl_s: float, owner: str | None = None) -> None:
        self.root = Path(root)
        self.ttl_s = float(ttl_s)
        self.owner = owner or new_owner_id()
        self._lock = threading.RLock()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # biometric data: owner only

    # -- paths -------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        if not is_job_id(job_id):
            raise JobNotFound(job_id)
        return self.root / job_id

    def input_path(self, record: JobRecord) -> Path:
        return self.job_dir(record.id) / record.input_name

    def file_path(self, job_id: str, name: str) -> Path:
        """The stored file published as `name` for a finished job; `JobNotFound` for anything else."""
        if not isinstance(name, str) or FILE_NAME_PATTERN.fullmatch(name) is None:
            raise JobNotFound(name)
        record = self.load(job_id)
        relative = record.files.get(name)
        if relative is None:
            raise JobNotFound(name)
        job_dir = self.job_dir(job_id).resolve()
        path = (job_dir / relative).resolve()
        if not path.is_relative_to(job_dir) or not path.is_file():
            raise JobNotFound(name)
        return path

    # -- records -----------------------------------------------------------------------------
    def create(self, request: dict[str, Any], data: bytes, extension: str) -> JobRecord:
        """A new queued job with its upload stored; the id is a fresh random token."""
        now = time.time()
        job_id = secrets.token_hex(16)
        job_dir = self.job_dir(job_id)
        job_dir.mkdir(mode=0o700)
        record = JobRecord(
            id=job_id,
            status=QUEUED,
            created_at=now,
            updated_at=now,
            request=json_safe(request),
            input_name=f"input.{extension}",
            message="queued",
            owner=self.owner,
        )
        (job_dir / record.input_name).write_bytes(data)
        self._write(record)
        return record

    def load(self, job_id: str, *, now: float | None = None) -> JobRecord:
        """The job's record; an expired job is deleted here and reported as not found."""
        path = self.job_dir(job_id) / RECORD_NAME
        try:
            record = JobRecord(**json.loads(path.read_text()))
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, TypeError):
            raise JobNotFound(job_id) from None
        if self._expired(record, time.time() if now is None else now):
            self.delete(job_id)
            raise JobNotFound(job_id)
        return record

    def update(self, job_id: str, **changes: Any) -> JobRecord | None:
        """Apply `changes` and save; None when the job no longer exists (deleted or expired)."""
        with self._lock:
            try:
                record = self.load(job_id)
            except JobNotFound:
                return None
            for key, value in changes.items():
                setattr(record, key, json_safe(value) if key in ("result", "request") else value)
            record.updated_at = time.time()
            if record.terminal and record.finished_at is None:
                record.finished_at = record.updated_at
            if record.terminal:
                record.expires_at = record.finished_at + self.ttl_s
            self._write(record)
            return record

    def exists(self, job_id: str) -> bool:
        return is_job_id(job_id) and (self.root / job_id / RECORD_NAME).is_file()

    def delete(self, job_id: str) -> bool:
        """Remove the job folder (record, upload, outputs). True when something was there."""
        job_dir = self.job_dir(job_id)
        with self._lock:
            existed = (job_dir / RECORD_NAME).is_file()
            # The record goes first so concurrent readers stop seeing the job at once.
            (job_dir / RECORD_NAME).unlink(missing_ok=True)
            shutil.rmtree(job_dir, ignore_errors=True)
        return existed

    def discard_files(self, job_id: str) -> None:
        """Remove whatever a job folder holds after its record is gone (a job deleted while running)."""
        if not self.exists(job_id):
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete expired jobs and folders without a record; answer the unfinished jobs of dead services
        `interrupted`. Return the removed ids. Queued and running jobs of live services are left alone."""
        now = time.time() if now is None else now
        removed = []
        for entry in self.root.iterdir():
            if not is_job_id(entry.name):
                continue
            record_path = entry / RECORD_NAME
            try:
                record = JobRecord(**json.loads(record_path.read_text()))
            except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, TypeError):
                # A folder left without a record (crash during create or delete) older than a minute.
                try:
                    if now - entry.stat().st_mtime > 60:
                        shutil.rmtree(entry, ignore_errors=True)
                        removed.append(entry.name)
                except FileNotFoundError:
                    pass
                continue
            if self._expired(record, now):
                self.delete(record.id)
                removed.append(record.id)
            elif not record.terminal and not self.owner_alive(record.owner, now):
                self.update(record.id, status=FAILED, reason=INTERRUPTED, message="failed",
                            detail="The server that accepted the job stopped before it finished; submit the photo again.")
        return removed

    def _expired(self, record: JobRecord, now: float) -> bool:
        """Only finished work expires; unfinished jobs are answered (see `sweep`), never removed."""
        return record.terminal and record.expires_at is not None and now >= record.expires_at

    # -- owners ------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Say that this store's owner is alive (the service calls this every `HEARTBEAT_S`)."""
        folder = self.root / OWNERS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        tmp = folder / f".{self.owner}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(f"{time.time()}\n")
        os.replace(tmp, folder / self.owner)

    def retire(self) -> None:
        """This owner is stopping: remove its heartbeat (its unfinished jobs were answered already)."""
        (self.root / OWNERS_DIR / self.owner).unlink(missing_ok=True)

    def owner_alive(self, owner: str, now: float | None = None) -> bool:
        """Whether the service named `owner` still beats (always true for this store's own owner)."""
        if owner == self.owner:
            return True
        if not owner or "/" in owner or owner.startswith("."):
            return False
        try:
            beat = (self.root / OWNERS_DIR / owner).stat().st_mtime
        except OSError:
            return False
        now = time.time() if now is None else now
        if now - beat > OWNER_STALE_S:
            return False
        parts = owner.rsplit("-", 2)  # host, pid, token (new_owner_id)
        if len(parts) == 3 and parts[0] == self.owner.rsplit("-", 2)[0] and parts[1].isdigit():
            pid = parts[1]
            return _pid_exists(int(pid))  # same machine: a dead pid is a dead owner, whatever its last beat
        return True

    def _write(self, record: JobRecord) -> None:
        path = self.job_dir(record.id) / RECORD_NAME
        tmp = path.with_name(f".{RECORD_NAME}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
