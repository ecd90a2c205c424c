"""The Gradio UI in a real browser: Debian's chromium driven by playwright-core (node)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.browser_tools import ROOT, missing_browser_tools

SCRIPT = Path(__file__).with_name("browser_test.mjs")
ARTIFACTS = ROOT / "test-artifacts"

MISSING = missing_browser_tools()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_server(tmp_path):
    """`python app.py` in a subprocess on 127.0.0.1, the real pipeline behind it."""
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    env = {**os.environ, "AVATAR_RESULTS_DIR": str(tmp_path / "results"), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    process = subprocess.Popen(
        [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, tmp_path / "results"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_ui_makes_a_2d_avatar_and_a_3d_head_in_chromium(app_server, package_photos, tmp_path):
    url, results_dir = app_server
    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(package_photos["astronaut"]).save(photo, quality=92)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "ui.png"
    screenshot.unlink(missing_ok=True)
    run = subprocess.run(
        ["node", str(SCRIPT), url, str(photo), str(screenshot)],
        cwd=ROOT, capture_output=True, text=True, timeout=540,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no report from the browser script:\n{run.stdout}\n{run.stderr}"
    report = json.loads(lines[-1])
    assert run.returncode == 0 and report["ok"], report
    assert report["avatar"]["width"] >= 256 and report["canvas"]["width"] > 0
    assert report["views"] == 7 and report["swatches"] >= 2
    assert screenshot.is_file() and Image.open(screenshot).size[0] >= 1000
    viewer = np.asarray(Image.open(report["canvasShot"]).convert("L"), dtype=np.float32)
    assert viewer.std() > 4, "the 3D viewer canvas is blank: no head was drawn"
    assert report["deleted"].startswith("Deleted") and report["avatarAfterDelete"] == 0
    # The job went through the service's store, and "Delete my data" removed its folder.
    assert [p for p in results_dir.iterdir() if not p.name.startswith(".")] == []  # .owners: the heartbeat
