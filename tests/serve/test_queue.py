"""Bounded work: a full queue answers 429 with Retry-After. The only test with a stand-in pipeline:
it must hold jobs open on purpose, which the real pipeline cannot do."""
import threading

import httpx

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server, wait_for_job


class GatedPipeline:
    """Blocks every job until the test opens the gate; then reports an unusable photo."""

    def __init__(self, gate: threading.Event, started: list) -> None:
        self.gate, self.started = gate, started

    def process(self, *, source, data, request, output_dir, progress=None):
        self.started.append(source)
        progress(0.5, "waiting at the gate")
        assert self.gate.wait(60)
        return {"status": "rejected", "reason": "no_face", "detail": "stand-in pipeline"}

    def close(self) -> None:
        pass


def test_full_queue_answers_429_with_retry_after(tmp_path, astronaut_jpeg):
    gate, started = threading.Event(), []
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=1, ui=False, min_retry_after_s=3)
    app = create_app(settings, pipeline_factory=lambda: GatedPipeline(gate, started))
    try:
        with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            submit = lambda: client.post("/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg)}, data={"style": "cartoon"})
            running, waiting = submit(), submit()
            assert (running.status_code, waiting.status_code) == (202, 202)
            full = submit()
            assert full.status_code == 429
            assert full.json()["error"] == "queue_full"
            assert int(full.headers["Retry-After"]) >= 3
            health = client.get("/healthz").json()
            assert health["queued"] + health["running"] == 2
            # The refused photo was not stored: only the two accepted jobs have folders.
            assert sorted(p.name for p in settings.results_dir.iterdir()) == sorted([running.json()["id"], waiting.json()["id"]])
            gate.set()
            for accepted in (running, waiting):
                assert wait_for_job(client, accepted.json()["status_url"], timeout_s=30)["status"] == "rejected"
            assert submit().status_code == 202  # room again
            assert len(started) >= 2
    finally:
        gate.set()
