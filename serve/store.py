"""The results folder: one directory per job, its record, its files, expiry and deletion.

Layout: `<results_dir>/<job id>/job.json` (the record), `input.<ext>` (the uploaded photo), the
pipeline's outputs (`avatars/<sha256>/...`) and `head_obj.zip`. Job ids are server-generated
tokens (32 lowercase hex characters); anything else is "not found" before a path is built. Files
are served only through the record's `files` map (public name -> path inside the job folder), so a
client-supplied name never becomes a path. Records live on disk, so several processes (Ray Serve
replicas on one node) that share the folder see the same jobs; writes are atomic (write + rename).
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
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
    finished_at: float | None = None
    expires_at: float | None = None  # set when the job ends: finished_at + ttl
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


class ResultStore:
    """Job folders under `root`: create, read, update, delete, expire. Thread-safe within a process."""

    def __init__(self, root: Path, ttl_s: float, job_timeout_s: float) -> None:
        self.root = Path(root)
        self.ttl_s = float(ttl_s)
        self.job_timeout_s = float(job_timeout_s)
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
        """Delete expired and abandoned jobs, and folders without a record; return the removed ids."""
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
                if now - entry.stat().st_mtime > 60:
                    shutil.rmtree(entry, ignore_errors=True)
                    removed.append(entry.name)
                continue
            if self._expired(record, now):
                self.delete(record.id)
                removed.append(record.id)
        return removed

    def _expired(self, record: JobRecord, now: float) -> bool:
        if record.terminal:
            return record.expires_at is not None and now >= record.expires_at
        return now - record.updated_at >= self.job_timeout_s

    def _write(self, record: JobRecord) -> None:
        path = self.job_dir(record.id) / RECORD_NAME
        tmp = path.with_name(f".{RECORD_NAME}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)
