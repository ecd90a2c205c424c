"""Fixtures for the service tests: a real uvicorn server on 127.0.0.1, photos as upload bytes."""
from __future__ import annotations

import io
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest


def encode(rgb: np.ndarray, fmt: str = "JPEG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return buffer.getvalue()


@contextmanager
def live_server(app) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 (free port) in a thread, lifespan included, with the server
    configuration `python app.py` uses (`serve.server`; the app's settings, or the defaults for a bare
    app); yield its URL."""
    import uvicorn

    from serve.server import server_config
    from serve.settings import ServeSettings

    settings = getattr(app.state, "settings", None) or ServeSettings()
    server = uvicorn.Server(server_config(app, settings, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def wait_for_job(client, status_url: str, timeout_s: float = 180.0) -> dict:
    """Poll a job until it ends; return its last status document."""
    deadline = time.monotonic() + timeout_s
    seen_progress = []
    while time.monotonic() < deadline:
        response = client.get(status_url)
        assert response.status_code == 200, response.text
        body = response.json()
        seen_progress.append(body["progress"])
        if body["status"] in ("done", "rejected", "failed"):
            body["_progress_seen"] = seen_progress
            return body
        time.sleep(0.1)
    raise TimeoutError(f"job at {status_url} did not finish in {timeout_s} s")


@pytest.fixture(scope="session")
def astronaut_jpeg(package_photos) -> bytes:
    return encode(package_photos["astronaut"])


@pytest.fixture(scope="session")
def grace_hopper_png(package_photos) -> bytes:
    return encode(package_photos["grace_hopper"], "PNG")
