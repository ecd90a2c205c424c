"""Issue 13, item 14: the probe's scan-bomb upload (a 19 MB progressive JPEG of 6000² whose one AC scan
is repeated ~300,000 times) was accepted (202) and held the worker for minutes; nine filled the queue.

The upload is now judged by the decoding guard's header checks before it is stored (422, the guard's
reason code); a slow job that slips past any check is bounded by its time budget (test_job_budget.py),
and SIGTERM with jobs running is prompt (test_job_budget.py).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from tests.corpus import jpeg_scan_bomb
from tests.serve.conftest import live_server, wait_for_job
from tests.serve.standins import FastPipeline

MB = 1024 * 1024


@pytest.fixture(scope="module")
def scan_bomb(package_photos) -> bytes:
    """The issue's recipe: 6000² progressive, its last AC scan repeated to fill ~19 MB."""
    photo = package_photos["astronaut"]
    one = jpeg_scan_bomb(photo, 1, side=6000)
    two = jpeg_scan_bomb(photo, 2, side=6000)
    scan = len(two) - len(one)
    bomb = jpeg_scan_bomb(photo, (19 * MB - len(one)) // scan, side=6000)
    assert 18 * MB < len(bomb) < 20 * MB and bomb[:3] == b"\xff\xd8\xff"
    return bomb


def test_scan_bomb_uploads_are_refused_at_once_and_normal_jobs_go_on(tmp_path, scan_bomb, astronaut_jpeg):
    settings = ServeSettings(results_dir=tmp_path / "results", workers=1, max_pending=8, ui=False)
    with live_server(create_app(settings, pipeline_factory=FastPipeline)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:

        def upload(_):
            started = time.monotonic()
            response = client.post("/v1/avatars", files={"photo": ("bomb.jpg", scan_bomb, "image/jpeg")},
                                   data={"styles": "cartoon"})
            return response, time.monotonic() - started

        with ThreadPoolExecutor(9) as pool:
            answers = list(pool.map(upload, range(9)))
        for response, seconds in answers:
            assert response.status_code == 422, response.text[:300]
            assert response.json()["error"] == "decode_limit" and "scans" in response.json()["detail"]
            assert seconds < 20  # 19 MB over loopback plus a header walk, nine at a time on two cores
        health = client.get("/healthz").json()
        assert health["queued"] + health["running"] == 0  # nothing was queued
        assert [p for p in settings.results_dir.iterdir() if not p.name.startswith(".")] == []  # nor stored
        normal = client.post("/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg, "image/jpeg")},
                             data={"styles": "cartoon"})
        assert normal.status_code == 202
        assert wait_for_job(client, normal.json()["status_url"], timeout_s=60)["status"] == "done"
