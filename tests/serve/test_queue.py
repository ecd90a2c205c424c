"""Bounded work: a full queue answers 429 with Retry-After (a stand-in pipeline holds jobs open on
purpose, which the real pipeline cannot do)."""
from functools import partial

import httpx

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server, wait_for_job
from tests.serve.standins import GatedPipeline


def test_full_queue_answers_429_with_retry_after(tmp_path, astronaut_jpeg):
    gate, started = tmp_path / "gate", tmp_path / "started"
    started.mkdir()
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=1, ui=False, min_retry_after_s=3)
    app = create_app(settings, pipeline_factory=partial(GatedPipeline, str(gate), str(started)))
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            submit = lambda: client.post("/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg)}, data={"styles": "cartoon"})
            running, waiting = submit(), submit()
            assert (running.status_code, waiting.status_code) == (202, 202)
            full = submit()
            assert full.status_code == 429
            assert full.json()["error"] == "queue_full"
            assert int(full.headers["Retry-After"]) >= 3
            health = client.get("/healthz").json()
            assert health["queued"] + health["running"] == 2
            # The refused photo was not stored: only the two accepted jobs have folders.
            jobs = sorted(p.name for p in settings.results_dir.iterdir() if not p.name.startswith("."))
            assert jobs == sorted([running.json()["id"], waiting.json()["id"]])
            gate.touch()
            for accepted in (running, waiting):
                assert wait_for_job(client, accepted.json()["status_url"], timeout_s=30)["status"] == "rejected"
            assert submit().status_code == 202  # room again
            assert len(list(started.iterdir())) >= 2
    finally:
        gate.touch()
