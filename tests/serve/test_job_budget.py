"""Issue 13, items 12-14: every job has an enforced time budget, DELETE stops a running job, queued
jobs are never swept, list fields are bounded, and SIGTERM is prompt with jobs running.

Stand-in pipelines (`tests.serve.standins`) hold jobs open on purpose; they run in the service's
worker processes like the real pipeline, and record their process id so the tests can check that
the process doing the work was really stopped.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import httpx
import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from tests.jobs.helpers import free_port
from tests.serve.conftest import live_server, wait_for_job
from tests.serve.standins import HangingPipeline, SlowPipeline

ROOT = Path(__file__).resolve().parents[2]


def submit(client, photo: bytes, **options):
    return client.post("/v1/avatars", files={"photo": ("p.jpg", photo, "image/jpeg")}, data=options)


def wait_until(predicate, timeout_s: float, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    return predicate()


def pid_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_long_list_is_422_and_repeats_are_dropped(tmp_path, astronaut_jpeg):
    """The probe's request: `styles=cartoon` 600 times (4.8 KB) kept the worker busy 124 s."""
    settings = ServeSettings(results_dir=tmp_path / "results", ui=False)
    with live_server(create_app(settings, pipeline_factory=partial(SlowPipeline, 0.0))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        response = submit(client, astronaut_jpeg, styles=["cartoon"] * 600)
        assert response.status_code == 422 and response.json()["detail"].startswith("styles"), response.text
        accepted = submit(client, astronaut_jpeg, styles=["cartoon"] * 16 + ["anime"])
        assert accepted.status_code == 422  # 17 items: over the bound before de-duplication
        accepted = submit(client, astronaut_jpeg, styles=["cartoon"] * 8 + ["anime"] * 8)
        assert accepted.status_code == 202, accepted.text
        status = wait_for_job(client, accepted.json()["status_url"], timeout_s=60)
        assert status["request"]["styles"] == ["cartoon", "anime"]  # computed once each


def test_delete_stops_a_running_job_and_the_next_job_runs(tmp_path, astronaut_jpeg):
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=4, ui=False, job_timeout_s=120)
    pids = tmp_path / "pids"
    with live_server(create_app(settings, pipeline_factory=partial(HangingPipeline, str(pids)))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        stuck = submit(client, astronaut_jpeg, styles="sketch").json()  # never ends by itself
        assert wait_until(lambda: (pids / stuck["id"]).is_file(), 60)
        pid = int((pids / stuck["id"]).read_text())  # the process running the job
        assert pid != os.getpid()
        normal = submit(client, astronaut_jpeg, styles="cartoon")
        assert normal.status_code == 202
        deleted_at = time.monotonic()
        assert client.delete(f"/v1/avatars/{stuck['id']}").status_code == 204
        assert wait_until(lambda: not pid_alive(pid), 5), "the worker running the deleted job was not stopped"
        stopped_s = time.monotonic() - deleted_at
        status = wait_for_job(client, normal.json()["status_url"], timeout_s=60)
        behind_s = time.monotonic() - deleted_at
        assert status["status"] == "done"
        health = client.get("/healthz").json()
        assert (health["running"], health["queued"], health["worker_restarts"]) == (0, 0, 1)
        assert not (settings.results_dir / stuck["id"]).exists()
        assert client.get(stuck["status_url"]).status_code == 404
    assert stopped_s < 3
    assert behind_s < 30, f"the job behind the deleted one took {behind_s:.1f} s (a fresh worker starts in a few)"


def test_a_job_over_its_budget_fails_with_timeout_and_the_next_job_runs(tmp_path, astronaut_jpeg):
    budget = 2.0
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=4, ui=False, job_timeout_s=budget)
    with live_server(create_app(settings, pipeline_factory=HangingPipeline)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        stuck = submit(client, astronaut_jpeg, styles="sketch").json()
        normal = submit(client, astronaut_jpeg, styles="cartoon").json()  # queued behind it
        submitted = time.monotonic()
        status = wait_for_job(client, stuck["status_url"], timeout_s=60)
        assert (status["status"], status["reason"]) == ("failed", "timeout"), status
        assert f"{budget:g} s" in status["detail"]
        ran_s = status["finished_at"] - status["started_at"]
        assert budget <= ran_s < budget + 3
        behind = wait_for_job(client, normal["status_url"], timeout_s=60)
        assert behind["status"] == "done"
        # Its own time, after the budget of the job in front of it, plus a fresh worker's start-up.
        assert time.monotonic() - submitted < budget + 30


def test_queued_time_does_not_count_and_queued_jobs_are_not_swept(tmp_path, astronaut_jpeg):
    """Item 13: a job still queued past job_timeout_s was swept as abandoned (404) though it never ran."""
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=4, ui=False,
                             job_timeout_s=2.0, sweep_interval_s=0.1)
    with live_server(create_app(settings, pipeline_factory=partial(SlowPipeline, 1.2))) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        jobs = [submit(client, astronaut_jpeg, styles="cartoon").json() for _ in range(4)]
        statuses = [wait_for_job(client, job["status_url"], timeout_s=90) for job in jobs]
    assert [s["status"] for s in statuses] == ["done"] * 4
    last = statuses[-1]
    assert last["started_at"] - last["created_at"] > settings.job_timeout_s  # it waited longer than a budget


@pytest.mark.slow
def test_sigterm_with_jobs_running_is_prompt_and_answers_them(tmp_path, astronaut_jpeg):
    """Item 14: with the worker stuck (a scan bomb) and the queue full, SIGTERM took more than 30 s."""
    port, results = free_port(), tmp_path / "results"
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.serve.standin_server", "--pipeline", "hanging", "--port", str(port),
         "--results-dir", str(results), "--workers", "2", "--max-pending", "2", "--job-timeout-s", "600"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert wait_until(lambda: _healthy(client), 60, poll_s=0.2), (tmp_path / "server.log").read_text()[-2000:]
            jobs = [submit(client, astronaut_jpeg, styles="sketch").json() for _ in range(4)]
            running = lambda: sum(client.get(job["status_url"]).json()["status"] == "running" for job in jobs)
            assert wait_until(lambda: running() == 2, 60)
            import psutil

            workers = [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
            assert len(workers) >= 2
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            took_s = time.monotonic() - started
        assert took_s < 5, f"SIGTERM took {took_s:.1f} s"
        # Workers die with the server (multiprocessing's resource tracker reads end-of-file a moment later).
        assert wait_until(lambda: not [pid for pid in workers if pid_alive(pid)], 3), "processes outlived the server"
        from serve.store import ResultStore

        store = ResultStore(results, ttl_s=60)
        answered = [store.load(job["id"]) for job in jobs]
        assert {(r.status, r.reason) for r in answered} == {("failed", "interrupted")}, (tmp_path / "server.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()


def _healthy(client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False
