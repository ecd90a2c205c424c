"""The 3D head viewer (serve/head_viewer.py): its routes, and the page in a real browser with a real head."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.testclient import TestClient
from PIL import Image

from serve.head_viewer import glb_url, mount_head_viewer, viewer_iframe
from tests.browser_tools import ROOT, missing_browser_tools
from tests.serve.conftest import live_server

SCRIPT = Path(__file__).with_name("head_viewer_check.mjs")
JOB = "0123456789abcdef0123456789abcdef"


def viewer_app(glb: Path | None = None) -> FastAPI:
    """The viewer's routes, plus a stand-in for the API's file route serving `glb`."""
    app = FastAPI()
    mount_head_viewer(app)
    mount_head_viewer(app)  # idempotent

    @app.get("/v1/avatars/{job_id}/files/{name}")
    def file(job_id: str, name: str):
        return FileResponse(glb, media_type="model/gltf-binary")

    return app


def test_viewer_page_only_takes_the_apis_glb_route():
    client = TestClient(viewer_app())
    page = client.get("/viewer", params={"glb": glb_url(JOB)})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert f"/v1/avatars/{JOB}/files/head.glb" in page.text and "/static/viewer.js" in page.text
    for bad in ("", "/results/x/head.glb", "https://cdn.example/head.glb", f"/v1/avatars/{JOB}/files/../../x.glb",
                f"/v1/avatars/{JOB}/files/head.glb\"><script>alert(1)</script>"):
        assert client.get("/viewer", params={"glb": bad}).status_code == 400, bad
    for asset in ("/static/three/three.module.js", "/static/three/three.core.js", "/static/three/LICENSE",
                  "/static/three/addons/loaders/GLTFLoader.js", "/static/three/addons/controls/OrbitControls.js",
                  "/static/viewer.js"):
        assert client.get(asset).status_code == 200, asset


def test_iframe_points_at_the_api_route():
    html = viewer_iframe(JOB)
    assert f'src="/viewer?glb=/v1/avatars/{JOB}/files/head.glb"' in html
    with pytest.raises(ValueError):
        viewer_iframe("../../etc")


def test_vendored_three_is_the_pinned_release():
    package = json.loads((ROOT / "package.json").read_text())
    pinned = {**package.get("dependencies", {}), **package.get("devDependencies", {})}["three"]
    vendored = (ROOT / "serve" / "static" / "three" / "three.core.js").read_text(encoding="utf-8")
    assert f"const REVISION = '{pinned.split('.')[1]}'" in vendored
    assert "MIT License" in (ROOT / "serve" / "static" / "three" / "LICENSE").read_text()


@pytest.fixture(scope="module")
def makehuman_glb(aligned_faces, tmp_path_factory) -> Path:
    from actors.reconstruct3d.export import write_glb
    from actors.reconstruct3d.makehuman import MakeHumanHeadEngine

    engine = MakeHumanHeadEngine()
    try:
        face = aligned_faces["astronaut"]
        mesh = engine.reconstruct([face])[0]
        path = tmp_path_factory.mktemp("viewer") / "head.glb"
        write_glb(mesh, engine.bake(mesh, face, 512), path)
        return path
    finally:
        engine.close()


@pytest.fixture
def viewer_server(makehuman_glb):
    with live_server(viewer_app(makehuman_glb)) as url:
        yield url


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(missing_browser_tools() is not None, reason=f"browser test skipped: {missing_browser_tools()}")
def test_viewer_shows_the_rigged_head_and_its_sliders_move_it(viewer_server, tmp_path):
    url = f"{viewer_server}/viewer?glb={glb_url(JOB)}"
    done = subprocess.run(["node", str(SCRIPT), url, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    report = json.loads((tmp_path / "head_viewer.json").read_text())
    assert done.returncode == 0, (done.stderr[-2000:], report)
    assert report["loaded"] and not report["error"], report
    assert not report["consoleErrors"] and not report["failedRequests"], report
    assert not [r for r in report["requests"] if not r.startswith(("/viewer", "/static/", "/v1/avatars/"))]  # no CDN
    assert len(report["morphNames"]) == 52 and {"jawOpen", "mouthSmileLeft", "eyeBlinkRight"} <= set(report["morphNames"])
    assert {"head", "neck_01", "jaw"} <= set(report["bones"])
    start, jaw, turn, clicked = (np.asarray(Image.open(report[k]).convert("RGB"), dtype=np.int16)
                                 for k in ("start", "jaw", "turn", "jawClicked"))
    head = np.abs(start - 238).sum(axis=2) > 20
    assert head.mean() > 0.2  # a head, not a blank canvas
    assert (np.abs(jaw - start).sum(axis=2) > 30).mean() > 0.002  # the jaw slider moves the mouth
    assert (np.abs(turn - start).sum(axis=2) > 30).mean() > 0.02  # the head turns
    assert report["jawByMouse"] == pytest.approx(1.0, abs=0.05) and (np.abs(clicked - start).sum(axis=2) > 30).mean() > 0.002
