"""`AvatarService`: the one piece of service code behind both the HTTP API and the Gradio UI.

It validates an upload, stores it as a job, queues it on the bounded runner (each job in a worker
process, stopped when over its time budget or deleted), reports status, serves result files by public
name, deletes on request, and in the background keeps its heartbeat (`serve.store`) and sweeps expired
results.
"""
from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from serve.runner import JobRunner, PipelineFactory, QueueFull, default_pipeline_factory
from serve.settings import ServeSettings
from serve.store import HEARTBEAT_S, JobRecord, ResultStore
from serve.uploads import inspect_upload


class AvatarService:
    """Jobs for single photos. `start()` before use, `close()` after (the app's lifespan does both)."""

    def __init__(self, settings: ServeSettings, pipeline_factory: PipelineFactory | None = None, *,
                 config=None, catalog=None) -> None:
        from dataclasses import replace

        from actors.config import PipelineConfig
        from actors.engines import default_catalog

        self.settings = settings
        self.catalog = catalog or default_catalog()
        # The engines' configuration, with the service's own input limits.
        self.config = replace(config or PipelineConfig(), max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels)
        self.store = ResultStore(settings.results_dir, ttl_s=settings.ttl_s)
        self.runner = JobRunner(
            self.store,
            pipeline_factory or partial(default_pipeline_factory, self.config, self.catalog),
            workers=settings.workers,
            max_pending=settings.max_pending,
            job_timeout_s=settings.job_timeout_s,
            min_retry_after_s=settings.min_retry_after_s,
        )
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._sweeper is not None:
            return
        self._stop.clear()
        self.store.heartbeat()
        self.runner.start()
        self.store.sweep()
        self._sweeper = threading.Thread(target=self._sweep_forever, name="avatar-sweeper", daemon=True)
        self._sweeper.start()

    def close(self) -> None:
        """Stop promptly: running jobs are killed and, with the waiting ones, answered `interrupted`."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None
        self.runner.stop()
        self.store.retire()

    def _sweep_forever(self) -> None:
        """Beat every `HEARTBEAT_S` (or faster), sweep every `sweep_interval_s`."""
        tick = min(HEARTBEAT_S, self.settings.sweep_interval_s)
        last_sweep = time.monotonic()
        while not self._stop.wait(tick):
            try:
                self.store.heartbeat()
                if time.monotonic() - last_sweep >= self.settings.sweep_interval_s:
                    last_sweep = time.monotonic()
                    self.store.sweep()
            except OSError:
                pass  # a folder vanished mid-sweep (deleted by a request): the next sweep sees the rest

    # -- jobs --------------------------------------------------------------------------------
    def check_request(self, request: Any) -> Any:
        """The request resolved against the engines on offer and checked against this server's
        configuration: ValueError with the precise reason (an engine that is not configured here, ...)."""
        from actors.pipeline import check_engines

        return check_engines(request, self.config, self.catalog)

    def submit(self, data: bytes, request: Any) -> JobRecord:
        """Validate the request (ValueError) and the photo (`UploadRejected`), store it and queue it (`QueueFull`)."""
        request = self.check_request(request)
        info = inspect_upload(data, max_bytes=self.settings.max_upload_bytes, max_pixels=self.settings.max_pixels)
        stats = self.runner.stats()
        if stats["queued"] + stats["running"] >= self.runner.workers + self.runner.max_pending:
            raise QueueFull(self.runner.retry_after_s())  # full already: do not write the photo to disk
        record = self.store.create(request.to_dict(), data, info.extension)
        try:
            self.runner.submit(record.id)
        except QueueFull:
            self.store.delete(record.id)
            raise
        return record

    def get(self, job_id: str) -> JobRecord:
        """The job's record (`JobNotFound` for unknown, malformed, deleted or expired ids)."""
        return self.store.load(job_id)

    def file(self, job_id: str, name: str) -> Path:
        """Path of a published result file (`JobNotFound` when the id or name is not one)."""
        return self.store.file_path(job_id, name)

    def delete(self, job_id: str) -> bool:
        """Remove everything stored for the job, the uploaded photo included, and stop it if it runs
        here (within a fraction of a second; elsewhere, within a second). False when unknown."""
        if not self.store.exists(job_id):
            return False
        existed = self.store.delete(job_id)
        self.runner.cancel(job_id)
        return existed

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[float, str], None] | None = None,
        *,
        poll_s: float = 0.2,
        timeout_s: float | None = None,
    ) -> JobRecord:
        """Block until the job ends, reporting progress; `TimeoutError` after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            record = self.get(job_id)
            if on_progress is not None:
                on_progress(record.progress, record.message)
            if record.terminal:
                return record
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {job_id} did not finish within {timeout_s} s.")
            time.sleep(poll_s)

    def health(self) -> dict[str, Any]:
        return {"status": "ok", **self.runner.stats()}
