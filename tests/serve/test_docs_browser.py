"""Issue 13, item 17: /docs was blank offline (Swagger UI loaded from a CDN). In chromium with every
request that would leave 127.0.0.1 blocked, /docs must render the API from packaged assets."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server
from tests.serve.standins import FastPipeline
from tests.serve.test_browser import ARTIFACTS, MISSING, ROOT

SCRIPT = Path(__file__).with_name("docs_browser_test.mjs")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}")]


def test_docs_render_offline_in_chromium(tmp_path):
    settings = ServeSettings(results_dir=tmp_path / "results", ui=False)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "docs.png"
    with live_server(create_app(settings, pipeline_factory=FastPipeline)) as url:
        run = subprocess.run(["node", str(SCRIPT), url, str(screenshot)], cwd=ROOT, capture_output=True, text=True,
                             timeout=180)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the browser script:\n{run.stdout}\n{run.stderr}"
    report = json.loads(lines[-1])
    assert run.returncode == 0 and report["ok"], report
    assert report["external"] == [], "the docs tried to reach another host"
    assert report["failed"] == [] and report["consoleErrors"] == []
    assert report["title"].startswith("Indian Avatar AI")
    assert {"/v1/avatars", "/v1/avatars/{job_id}", "/v1/avatars/{job_id}/files/{name}", "/healthz"} <= {
        p.replace("\u200b", "") for p in report["operations"]}
    assert "photo" in report["submitText"] and "styles" in report["submitText"]
    assert screenshot.is_file()
