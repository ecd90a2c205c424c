"""Bounded work: worker threads, each owning one pipeline, fed by an in-process queue.

At most `workers + max_pending` jobs are accepted at a time (running + waiting); beyond that
`submit` raises `QueueFull` with a Retry-After hint, which the API turns into 429. The pipeline is
behind the small `Pipeline` protocol so tests can substitute a slow one for the queue-full case.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol

from serve.outputs import collect_files
from serve.store import DONE, FAILED, REJECTED, RUNNING, JobNotFound, ResultStore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]


class Pipeline(Protocol):
    """What the runner needs from `actors.pipeline.AvatarPipeline`."""

    def process(
        self, *, source: str, data: bytes, request: Any, output_dir: Path, progress: ProgressCallback | None = None
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


PipelineFactory = Callable[[], Pipeline]


def default_pipeline_factory(max_bytes: int, max_pixels: int) -> Pipeline:
    """The real single-photo pipeline with the service's input limits (models load on the first job)."""
    from actors.pipeline import AvatarPipeline, PipelineConfig

    return AvatarPipeline(PipelineConfig(max_bytes=max_bytes, max_pixels=max_pixels))


class QueueFull(Exception):
    """Every worker is busy and the waiting line is full; retry after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"The queue is full; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class JobCancelled(Exception):
    """Raised from the progress callback when the job was deleted or expired while running."""


_STATUS_FROM_ROW = {"ok": DONE, "rejected": REJECTED, "failed": FAILED}


class JobRunner:
    """`workers` threads running jobs from the store through their own pipelines."""

    def __init__(
        self,
        store: ResultStore,
        pipeline_factory: PipelineFactory,
        *,
        workers: int,
        max_pending: int,
        min_retry_after_s: int = 2,
    ) -> None:
        self.store = store
        self.pipeline_factory = pipeline_factory
        self.workers = workers
        self.max_pending = max_pending
        self.min_retry_after_s = min_retry_after_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued = 0
        self._running = 0
        self._mean_job_s: float | None = None
        self._threads: list[threading.Thread] = []

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"avatar-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let running jobs finish (up to `timeout_s`), drop waiting ones, close the pipelines."""
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def submit(self, job_id: str) -> None:
        """Queue a stored job, or raise `QueueFull`."""
        with self._lock:
            if self._queued + self._running >= self.workers + self.max_pending:
                raise QueueFull(self.retry_after_s())
            self._queued += 1
        self._queue.put(job_id)

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: one mean job duration, at least the configured minimum."""
        mean = self._mean_job_s or 0.0
        return max(self.min_retry_after_s, math.ceil(mean))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "workers": self.workers,
                "max_pending": self.max_pending,
                "queued": self._queued,
                "running": self._running,
                "mean_job_s": self._mean_job_s,
            }

    # -- workers -----------------------------------------------------------------------------
    def _work(self) -> None:
        pipeline: Pipeline | None = None
        try:
            while True:
                job_id = self._queue.get()
                if job_id is None:
                    return
                with self._lock:
                    self._queued -= 1
                    self._running += 1
                started = time.monotonic()
                try:
                    if pipeline is None:
                        pipeline = self.pipeline_factory()
                    self._run(pipeline, job_id)
                except Exception as error:  # noqa: BLE001 - a job never takes its worker down
                    log.exception("job %s failed", job_id)
                    self.store.update(job_id, status=FAILED, reason="internal_error", detail=f"{type(error).__name__}: {error}")
                finally:
                    elapsed = time.monotonic() - started
                    with self._lock:
                        self._running -= 1
                        self._mean_job_s = elapsed if self._mean_job_s is None else 0.8 * self._mean_job_s + 0.2 * elapsed
        finally:
            if pipeline is not None:
                pipeline.close()

    def _run(self, pipeline: Pipeline, job_id: str) -> None:
        try:
            record = self.store.load(job_id)
        except JobNotFound:
            return  # deleted while it waited
        job_dir = self.store.job_dir(job_id)
        data = self.store.input_path(record).read_bytes()
        request = _request_from_dict(record.request)
        if self.store.update(job_id, status=RUNNING, progress=0.0, message="starting") is None:
            self.store.discard_files(job_id)
            return

        def progress(fraction: float, message: str) -> None:
            fraction = min(1.0, max(0.0, float(fraction)))
            if self.store.update(job_id, progress=fraction, message=str(message)) is None:
                raise JobCancelled(job_id)

        try:
            row = pipeline.process(
                source=f"upload/{record.input_name}", data=data, request=request, output_dir=job_dir, progress=progress
            )
        except JobCancelled:
            row = None
        if row is None or not self.store.exists(job_id):
            self.store.discard_files(job_id)  # deleted or expired while running: leave nothing behind
            return
        status = _STATUS_FROM_ROW.get(str(row.get("status")), FAILED)
        files = collect_files(row, job_dir) if status == DONE else {}
        updated = self.store.update(
            job_id,
            status=status,
            progress=1.0,
            message={DONE: "done", REJECTED: "rejected", FAILED: "failed"}[status],
            reason=str(row.get("reason") or ""),
            detail=str(row.get("detail") or ""),
            result=row,
            files=files,
        )
        if updated is None:
            self.store.discard_files(job_id)


def _request_from_dict(values: dict[str, Any]):
    from actors.request import AvatarRequest

    return AvatarRequest(**values)
