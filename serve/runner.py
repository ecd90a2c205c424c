"""Bounded, enforceable work: worker slots, each driving one `serve.worker.WorkerProcess`, fed by a queue.

- At most `workers + max_pending` jobs are accepted at a time (running + waiting); beyond that
  `submit` raises `QueueFull` with a Retry-After hint, which the API turns into 429.
- Every job has a time budget (`job_timeout_s`), counted from the moment it starts running (time in
  the queue does not count): past it the job's process is killed and the job answered `failed` with
  reason `timeout`.
- `cancel(job_id)` (a `DELETE`) stops a running job within `serve.worker.POLL_S`; a job deleted by
  another replica sharing the results folder is noticed within a second.
- `stop()` kills running jobs at once and answers them, and the jobs still waiting, `failed` with
  reason `interrupted`: shutdown takes well under a second, whatever the jobs are doing.

The pipeline is behind the small `Pipeline` protocol so tests can substitute a slow or hanging one;
its factory must pickle (the pipeline lives in the worker process).
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
from serve.store import (
    DONE, FAILED, INTERRUPTED, JOB_TIMEOUT, REJECTED, RUNNING, WORKER_CRASHED, JobNotFound, ResultStore,
)
from serve.worker import Job, JobOutcome, WorkerProcess, WorkerStartError

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
_EXISTS_CHECK_S = 1.0  # how often a running job's record is looked for (deleted by another replica?)


class Pipeline(Protocol):
    """What the runner needs from `actors.pipeline.AvatarPipeline`."""

    def process(
        self, *, source: str, data: bytes, request: Any, output_dir: Path, progress: ProgressCallback | None = None
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


PipelineFactory = Callable[[], Pipeline]


def default_pipeline_factory(config, catalog) -> Pipeline:
    """The real single-photo pipeline with the service's configuration (models load on the first job)."""
    from actors.pipeline import AvatarPipeline

    return AvatarPipeline(config, catalog)


class QueueFull(Exception):
    """Every worker is busy and the waiting line is full; retry after `retry_after_s` seconds."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"The queue is full; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


_STATUS_FROM_ROW = {"ok": DONE, "rejected": REJECTED, "failed": FAILED}


class JobRunner:
    """`workers` slots running jobs from the store, each in its own worker process."""

    def __init__(
        self,
        store: ResultStore,
        pipeline_factory: PipelineFactory,
        *,
        workers: int,
        max_pending: int,
        job_timeout_s: float,
        min_retry_after_s: int = 2,
    ) -> None:
        self.store = store
        self.pipeline_factory = pipeline_factory
        self.workers = workers
        self.max_pending = max_pending
        self.job_timeout_s = job_timeout_s
        self.min_retry_after_s = min_retry_after_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._running: dict[str, int] = {}  # job id -> slot
        self._cancelled: set[str] = set()
        self._stopping = threading.Event()
        self._mean_job_s: float | None = None
        self._threads: list[threading.Thread] = []
        self._processes: list[WorkerProcess] = []

    # -- control -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        for index in range(self.workers):
            process = WorkerProcess(self.pipeline_factory, name=f"avatar-worker-{index}")
            thread = threading.Thread(target=self._work, args=(index, process), name=f"avatar-slot-{index}", daemon=True)
            self._processes.append(process)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop now: kill running jobs, answer them and the waiting ones `interrupted`, end the slots."""
        self._stopping.set()
        for process in self._processes:
            process.keep_warm = False
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            process.stop()  # a slot that did not end in time: its child goes anyway
        with self._lock:
            left = list(self._queued) + list(self._running)
            self._queued.clear()
            self._running.clear()
        for job_id in left:
            self._interrupt(job_id)
        self._threads, self._processes = [], []

    def submit(self, job_id: str) -> None:
        """Queue a stored job, or raise `QueueFull`."""
        with self._lock:
            if len(self._queued) + len(self._running) >= self.workers + self.max_pending:
                raise QueueFull(self.retry_after_s())
            self._queued.add(job_id)
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> bool:
        """Stop the job if it is running here or drop it if it waits; True when it was ours."""
        with self._lock:
            if job_id in self._running:
                self._cancelled.add(job_id)
                return True
            if job_id in self._queued:
                self._queued.discard(job_id)  # its slot skips it when it comes up
                return True
        return False

    def retry_after_s(self) -> int:
        """Seconds until a slot is likely free: one mean job duration, at least the configured minimum."""
        mean = self._mean_job_s or 0.0
        return max(self.min_retry_after_s, math.ceil(mean))

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "workers": self.workers,
                "max_pending": self.max_pending,
                "queued": len(self._queued),
                "running": len(self._running),
                "mean_job_s": self._mean_job_s,
                "job_timeout_s": self.job_timeout_s,
                "worker_restarts": sum(p.restarts for p in self._processes),
            }

    def holds(self, job_id: str) -> bool:
        """Whether this runner is responsible for the job (queued or running here)."""
        with self._lock:
            return job_id in self._queued or job_id in self._running

    # -- slots -------------------------------------------------------------------------------
    def _work(self, slot: int, process: WorkerProcess) -> None:
        process.start()  # warm: the child imports while the slot waits (and dies with this thread)
        try:
            while not self._stopping.is_set():
                job_id = self._queue.get()
                if job_id is None or self._stopping.is_set():
                    return
                with self._lock:
                    if job_id not in self._queued:
                        continue  # cancelled while it waited
                    self._queued.discard(job_id)
                    self._running[job_id] = slot
                try:
                    outcome = self._run(process, job_id)
                except Exception as error:  # noqa: BLE001 - a job never takes its slot down
                    log.exception("job %s failed", job_id)
                    self.store.update(job_id, status=FAILED, reason="internal_error",
                                      detail=f"{type(error).__name__}: {error}")
                    outcome = None
                with self._lock:
                    self._running.pop(job_id, None)
                    self._cancelled.discard(job_id)
                    if outcome is not None and outcome.seconds:
                        s = outcome.seconds
                        self._mean_job_s = s if self._mean_job_s is None else 0.8 * self._mean_job_s + 0.2 * s
        finally:
            process.stop()

    def _run(self, process: WorkerProcess, job_id: str) -> JobOutcome | None:
        try:
            record = self.store.load(job_id)
        except JobNotFound:
            return None  # deleted while it waited
        job_dir = self.store.job_dir(job_id)
        try:
            ready = process.wait_ready(abort=self._stopping.is_set)  # start-up is not part of the job's budget
        except WorkerStartError as error:
            self.store.update(job_id, status=FAILED, reason=WORKER_CRASHED, detail=str(error))
            return None
        if not ready or self._stopping.is_set():
            self._interrupt(job_id)
            return None
        if self.store.update(job_id, status=RUNNING, progress=0.0, message="starting",
                             started_at=time.time()) is None:
            self.store.discard_files(job_id)
            return None
        job = Job(job_id=job_id, source=f"upload/{record.input_name}", input_path=str(self.store.input_path(record)),
                  request=record.request, output_dir=str(job_dir))
        gone = _GoneWatch(self.store, job_id)

        def progress(fraction: float, message: str) -> None:
            fraction = min(1.0, max(0.0, float(fraction)))
            if self.store.update(job_id, progress=fraction, message=str(message)) is None:
                gone.mark()

        def should_stop() -> bool:
            with self._lock:
                cancelled = job_id in self._cancelled
            return cancelled or self._stopping.is_set() or gone.check()

        outcome = process.run(job, self.job_timeout_s, progress, should_stop)
        if outcome.kind == "cancelled" or not self.store.exists(job_id):
            if self._stopping.is_set() and self.store.exists(job_id):
                self._interrupt(job_id)
            else:
                self.store.discard_files(job_id)  # deleted or expired while running: leave nothing behind
            return outcome
        self._record(job_id, job_dir, outcome)
        return outcome

    def _record(self, job_id: str, job_dir: Path, outcome: JobOutcome) -> None:
        if outcome.kind == "done":
            row = outcome.row or {}
            status = _STATUS_FROM_ROW.get(str(row.get("status")), FAILED)
            files = collect_files(row, job_dir) if status == DONE else {}
            changes = dict(status=status, reason=str(row.get("reason") or ""), detail=str(row.get("detail") or ""),
                           result=row, files=files)
        else:
            reason = {"timeout": JOB_TIMEOUT, "crashed": WORKER_CRASHED}.get(outcome.kind, "internal_error")
            changes = dict(status=FAILED, reason=reason, detail=outcome.detail)
        status = changes["status"]
        message = {DONE: "done", REJECTED: "rejected", FAILED: "failed"}[status]
        if self.store.update(job_id, progress=1.0, message=message, **changes) is None:
            self.store.discard_files(job_id)

    def _interrupt(self, job_id: str) -> None:
        self.store.update(job_id, status=FAILED, reason=INTERRUPTED, message="failed",
                          detail="The server stopped before the job finished; submit the photo again.")


class _GoneWatch:
    """Notices, at most once a second, that a running job's record is gone (deleted elsewhere)."""

    def __init__(self, store: ResultStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._gone = False
        self._checked = time.monotonic()

    def mark(self) -> None:
        self._gone = True

    def check(self) -> bool:
        now = time.monotonic()
        if not self._gone and now - self._checked >= _EXISTS_CHECK_S:
            self._checked = now
            self._gone = not self.store.exists(self.job_id)
        return self._gone
