"""The UI's 3D head viewer: a three.js page that shows the rigged head and moves it with sliders.

`mount_head_viewer(app)` adds two things to the FastAPI app:
- `/static/...`: the viewer's files under `serve/static/` — the page's script and three.js r187
  (`serve/static/three/`: the core build, GLTFLoader, OrbitControls and the utils they import, MIT,
  its LICENSE beside them), vendored from npm `three` 0.187.0, so nothing comes from a CDN.
- `/viewer?glb=<url>`: the page. It loads the GLB from the API's own file route only
  (`/v1/avatars/{id}/files/head.glb`, checked here; anything else is a 400), never from a results
  path. Sliders: smile (mouthSmileLeft + mouthSmileRight), jaw open (jawOpen), blink (eyeBlinkLeft +
  eyeBlinkRight) — the GLB's ARKit morph targets, starting at the photo's expression — and head
  turn (the `head` bone, or `neck_01`, about the vertical axis).
`viewer_iframe(job_id)` is the HTML the Gradio UI embeds (a `gr.HTML` with an iframe).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"
VIEWER_PATH = "/viewer"
GLB_URL = re.compile(r"/v1/avatars/[0-9a-f]{32}/files/head\.glb")  # the API's file route (store.JOB_ID_PATTERN ids)
JOB_ID = re.compile(r"[0-9a-f]{32}")
VIEWER_HEIGHT = 420


def glb_url(job_id: str) -> str:
    """The API's own URL of a job's head.glb."""
    if not isinstance(job_id, str) or JOB_ID.fullmatch(job_id) is None:
        raise ValueError(f"not a job id: {job_id!r}.")
    return f"/v1/avatars/{job_id}/files/head.glb"


def viewer_iframe(job_id: str, height: int = VIEWER_HEIGHT) -> str:
    """An iframe of the viewer on a job's head.glb (for `gr.HTML`)."""
    src = f"{VIEWER_PATH}?glb={glb_url(job_id)}"
    return (f'<iframe src="{html.escape(src)}" title="3D head" style="width:100%;height:{int(height)}px;border:0;'
            f'border-radius:8px;background:#eeeeee" loading="lazy"></iframe>')


def viewer_page(glb: str) -> str:
    """The viewer's HTML for the GLB at `glb` (ValueError unless it is the API's head.glb route)."""
    if GLB_URL.fullmatch(glb or "") is None:
        raise ValueError("glb must be the API's file route /v1/avatars/{id}/files/head.glb.")
    page = (STATIC_DIR / "viewer.html").read_text(encoding="utf-8")
    return page.replace("__GLB_URL__", html.escape(json.dumps(glb), quote=True))


def mount_head_viewer(app) -> None:
    """Serve `serve/static/` at /static and the viewer page at /viewer (see the module docstring)."""
    from fastapi import Query
    from fastapi.responses import HTMLResponse, PlainTextResponse
    from fastapi.staticfiles import StaticFiles

    if any(getattr(route, "path", None) == VIEWER_PATH for route in app.routes):
        return  # mounted already
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="head-viewer-static")

    def viewer(glb: str = Query("", description="the API's URL of a head.glb")):
        try:
            return HTMLResponse(viewer_page(glb), headers={"Cache-Control": "no-store"})
        except ValueError as error:
            return PlainTextResponse(str(error), status_code=400)

    app.add_api_route(VIEWER_PATH, viewer, methods=["GET"], include_in_schema=False)
