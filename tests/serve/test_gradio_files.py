"""Issue 13, item 15: `GET /ui/gradio_api/file=<results_dir>/<id>/input.jpg` (and `job.json`) answered 200
with the raw upload and the job record, which the API's own whitelist refuses. Nothing under the
results folder may be served by any route except a job's whitelisted result files through the API;
the UI shows copies from Gradio's cache.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from serve.ui import _render
from tests.serve.conftest import live_server, wait_for_job
from tests.serve.standins import FastPipeline


@pytest.fixture
def ui_server(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    settings = ServeSettings(results_dir=tmp_path / "results", ui=True)
    app = create_app(settings, pipeline_factory=FastPipeline)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, app, settings


def file_routes(path: Path) -> list[str]:
    """Every spelling of Gradio's file routes for an absolute path."""
    raw, quoted = str(path), quote(str(path))
    return [f"{prefix}file={spelling}" for prefix in ("/ui/gradio_api/", "/ui/", "/gradio_api/")
            for spelling in (raw, quoted, f"/{raw}")]


def test_nothing_under_the_results_folder_is_served_by_gradio(ui_server, astronaut_jpeg):
    client, _, settings = ui_server
    accepted = client.post("/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg, "image/jpeg")}, data={"styles": "cartoon"})
    status = wait_for_job(client, accepted.json()["status_url"], timeout_s=60)
    assert status["status"] == "done"
    job_dir = settings.results_dir / status["id"]
    stored = [p for p in job_dir.rglob("*") if p.is_file()]
    names = {p.name for p in stored}
    assert {"input.jpg", "job.json", "avatar_cartoon.png"} <= names
    for path in stored:
        secret = path.read_bytes()
        for route in file_routes(path.resolve()):
            response = client.get(route)
            assert response.status_code != 200, f"{route} served {path.name}"
            assert secret[:64] not in response.content
    # The API still serves the whitelisted result, and only that.
    assert client.get(status["files"]["avatar_cartoon.png"]).status_code == 200
    for name in ("input.jpg", "job.json"):
        assert client.get(f"/v1/avatars/{status['id']}/files/{name}").status_code == 404


def test_the_ui_shows_copies_from_gradios_cache(ui_server, astronaut_jpeg):
    client, app, settings = ui_server
    service = app.state.service
    accepted = client.post("/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg, "image/jpeg")}, data={"styles": "anime"})
    status = wait_for_job(client, accepted.json()["status_url"], timeout_s=60)
    gradio_cache = (settings.results_dir.parent / "gradio").resolve()
    values = _render(service, service.get(status["id"]), gradio_cache)
    avatar = Path(values[1])
    assert avatar.resolve().is_relative_to(gradio_cache)
    assert not avatar.resolve().is_relative_to(settings.results_dir.resolve())
    original = client.get(status["files"]["avatar_anime.png"]).content
    assert avatar.read_bytes() == original
    shown = client.get(f"/ui/gradio_api/file={avatar}")
    assert shown.status_code == 200 and shown.content == original
