"""The HTTP API end to end on a real uvicorn server with the real pipeline."""
from __future__ import annotations

import io
import re
import secrets
import socket
import time
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from actors.request import AvatarRequest
from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import encode, live_server, wait_for_job
from tests.serve.images import jpeg_with_header_size, png_with_header_size

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServeSettings(results_dir=tmp_path_factory.mktemp("results"), workers=1, max_pending=8)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client, settings


def submit(client, photo: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg", **options):
    return client.post("/v1/avatars", files={"photo": (name, photo, content_type)}, data=options)


@pytest.fixture(scope="module")
def done_2d(server, astronaut_jpeg):
    client, _ = server
    accepted = submit(client, astronaut_jpeg, modes="2d", styles="cartoon")
    assert accepted.status_code == 202, accepted.text
    return accepted, wait_for_job(client, accepted.json()["status_url"])


# Happy paths -----------------------------------------------------------------------------------
def test_2d_happy_path(server, done_2d):
    client, _ = server
    accepted, status = done_2d
    body = accepted.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"]) and accepted.headers["location"] == body["status_url"]
    assert status["status"] == "done", status
    assert status["progress"] == 1.0 and max(status["_progress_seen"]) == 1.0
    assert status["expires_at"] > status["finished_at"]
    metrics = status["metrics"]
    assert -90 <= metrics["ita_in"] <= 90 and 1 <= metrics["mst_in"] <= 10
    [cartoon] = metrics["styles"]
    assert cartoon["style"] == "cartoon" and -90 <= cartoon["ita_out"] <= 90 and 1 <= cartoon["mst_out"] <= 10
    assert "head.glb" not in status["files"]
    avatar = client.get(status["files"]["avatar_cartoon.png"])
    assert avatar.status_code == 200 and avatar.headers["content-type"] == "image/png"
    assert avatar.headers["cache-control"] == "no-store"
    image = Image.open(io.BytesIO(avatar.content))
    assert image.size == (512, 512)
    assert np.asarray(image.convert("L")).std() > 10  # a picture, not a blank


def test_3d_happy_path(server, grace_hopper_png):
    client, _ = server
    accepted = submit(client, grace_hopper_png, name="grace.png", content_type="image/png", modes=["2d", "3d"], styles="realistic")
    assert accepted.status_code == 202, accepted.text
    status = wait_for_job(client, accepted.json()["status_url"], timeout_s=300)
    assert status["status"] == "done", status
    files = status["files"]
    glb = client.get(files["head.glb"])
    assert glb.headers["content-type"] == "model/gltf-binary" and glb.content[:4] == b"glTF"
    bundle = zipfile.ZipFile(io.BytesIO(client.get(files["head_obj.zip"]).content))
    suffixes = {name.rsplit(".", 1)[1] for name in bundle.namelist()}
    assert suffixes == {"mtl", "obj", "png"}
    [mtl] = [n for n in bundle.namelist() if n.endswith(".mtl")]
    maps = {line.split()[-1] for line in bundle.read(mtl).decode().splitlines() if line.startswith("map_")}
    assert maps and maps <= set(bundle.namelist())  # every texture the MTL names travels with it
    assert all(bundle.read(name)[:4] == b"\x89PNG" for name in maps)
    views = [name for name in files if name.startswith("view_")]
    assert len(views) == 7
    sheet = Image.open(io.BytesIO(client.get(files["views.png"]).content))
    assert sheet.width > sheet.height  # a row of views
    assert 0 <= status["metrics"]["nme"] < 1
    assert "avatar_realistic.png" in files


def test_photo_without_a_face_is_rejected_with_a_reason(server):
    client, _ = server
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    accepted = submit(client, encode(gradient, "PNG"), name="wall.png")
    status = wait_for_job(client, accepted.json()["status_url"])
    assert (status["status"], status["reason"]) == ("rejected", "no_face")
    assert status["files"] == {}


def test_type_is_sniffed_from_the_bytes_not_the_name(server, astronaut_jpeg):
    client, _ = server
    accepted = submit(client, astronaut_jpeg, name="notes.txt", content_type="text/plain")
    assert accepted.status_code == 202
    assert client.delete(f"/v1/avatars/{accepted.json()['id']}").status_code == 204


# Errors ----------------------------------------------------------------------------------------
def test_oversize_upload_is_413(server):
    client, settings = server
    just_over = b"\xff\xd8\xff" + b"\0" * (settings.max_upload_bytes - 2)
    response = submit(client, just_over)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    far_over = b"\xff\xd8\xff" + b"\0" * (settings.max_upload_bytes + 2 * MB)  # refused before parsing
    response = submit(client, far_over)
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    assert str(settings.max_upload_bytes) in response.json()["detail"]


def test_decompression_bomb_headers_are_422(server, astronaut_jpeg):
    client, settings = server
    jobs_before = set(settings.results_dir.iterdir())
    for bomb in (png_with_header_size(50_000, 50_000), jpeg_with_header_size(astronaut_jpeg, 30_000, 30_000)):
        response = submit(client, bomb)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "too_large"
    assert set(settings.results_dir.iterdir()) <= jobs_before  # nothing stored for a refused upload


@pytest.mark.parametrize("data", [b"just some text", b"GIF89a\x01\x00\x01\x00" + b"\0" * 20, b"%PDF-1.4\n%%EOF"])
def test_wrong_type_is_415(server, data):
    client, _ = server
    response = submit(client, data, name="photo.jpg", content_type="image/jpeg")
    assert response.status_code == 415 and response.json()["error"] == "not_an_image"


@pytest.mark.parametrize(
    "options, field",
    [({"styles": "watercolour"}, "styles"), ({"modes": "4d"}, "modes"), ({"engine": "magic"}, "engine"),
     ({"strength": "1.5"}, "strength"), ({"seed": "-1"}, "seed"), ({"size": "100"}, "size"),
     ({"texture_size": "300"}, "texture_size"), ({"modes": ""}, "modes"), ({"head_engine": "clay"}, "head_engine")],
)
def test_options_outside_the_schema_are_422_naming_the_field(server, astronaut_jpeg, options, field):
    client, _ = server
    response = submit(client, astronaut_jpeg, **options)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and body["detail"].startswith(field), body


def test_rules_beyond_the_form_model_are_422_with_the_request_message(server, astronaut_jpeg):
    """`all` with other styles: stated in OpenAPI (serve.openapi), checked by the catalog, answered in its words."""
    from actors.engines import default_catalog

    client, _ = server
    with pytest.raises(ValueError) as expected:
        default_catalog().resolve_request(AvatarRequest(styles=("all", "anime")))
    response = submit(client, astronaut_jpeg, styles=["all", "anime"])
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_options", "detail": str(expected.value)}
    response = submit(client, astronaut_jpeg, size="260")  # a multiple of 8: the schema says so now
    assert response.status_code == 422 and response.json()["detail"].startswith("size")


def test_an_engine_this_server_is_not_configured_for_is_422_with_the_reason(server, astronaut_jpeg):
    client, _ = server
    response = submit(client, astronaut_jpeg, engine="diffusers", styles="anime")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_options"
    assert "diffusers 2D engine is not configured" in response.json()["detail"]
    assert "--base-model" in response.json()["detail"]
    response = submit(client, astronaut_jpeg, modes="3d", head_engine="flame")
    assert response.status_code == 422 and "flame head engine is not configured" in response.json()["detail"]


def test_malformed_fields_and_missing_photo_are_422(server, astronaut_jpeg):
    client, _ = server
    response = submit(client, astronaut_jpeg, seed="seven")
    assert response.status_code == 422 and response.json()["error"] == "invalid_request" and "seed" in response.json()["detail"]
    response = client.post("/v1/avatars", data={"modes": "2d"})
    assert response.status_code == 422 and "photo" in response.json()["detail"]


@pytest.mark.parametrize("job_id", [secrets.token_hex(16), "not-an-id", "..", "0" * 64])
def test_unknown_ids_are_404(server, job_id):
    client, _ = server
    for response in (
        client.get(f"/v1/avatars/{job_id}"),
        client.get(f"/v1/avatars/{job_id}/files/avatar_cartoon.png"),
        client.delete(f"/v1/avatars/{job_id}"),
    ):
        assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "%2E%2E", "job.json",
     "input.jpg", "..%5C..%5Cjob.json", "avatars%2F..%2Fjob.json", "%2e%2e%2fjob.json", "avatar_cartoon.png%00.glb"],
)
def test_traversal_in_file_names_reads_nothing(server, done_2d, name):
    client, _ = server
    _, status = done_2d
    response = client.get(f"/v1/avatars/{status['id']}/files/{name}")
    assert response.status_code in (400, 404)
    assert b"root:" not in response.content and b'"request"' not in response.content


def test_traversal_in_a_raw_request_path_reads_nothing(server, done_2d):
    client, _ = server
    _, status = done_2d
    host, port = client.base_url.host, client.base_url.port
    for path in (f"/v1/avatars/{status['id']}/files/../../../../../etc/passwd", f"/v1/avatars/../{status['id']}/job.json"):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.split(b" ", 2)[1] in (b"400", b"404"), reply[:200]
        assert b"root:" not in reply and b'"request"' not in reply


# Delete and expiry -----------------------------------------------------------------------------
def test_delete_removes_everything_for_the_job(server, astronaut_jpeg):
    client, settings = server
    accepted = submit(client, astronaut_jpeg, styles="sketch")
    job_id = accepted.json()["id"]
    status = wait_for_job(client, accepted.json()["status_url"])
    assert status["status"] == "done"
    job_dir = settings.results_dir / job_id
    stored = [p for p in job_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("input.") and p.read_bytes() == astronaut_jpeg for p in stored)
    assert client.delete(f"/v1/avatars/{job_id}").status_code == 204
    assert not job_dir.exists()
    assert client.get(f"/v1/avatars/{job_id}").status_code == 404
    assert client.get(status["files"]["avatar_sketch.png"]).status_code == 404
    assert client.delete(f"/v1/avatars/{job_id}").status_code == 404


def test_delete_while_running_leaves_nothing_behind(server, astronaut_jpeg):
    client, settings = server
    accepted = submit(client, astronaut_jpeg, modes=["2d", "3d"], styles="anime")
    job_id = accepted.json()["id"]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/v1/avatars/{job_id}").json()["status"]) == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state == "running"
    assert client.delete(f"/v1/avatars/{job_id}").status_code == 204
    while (health := client.get("/healthz").json())["running"] + health["queued"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert health["running"] + health["queued"] == 0
    assert not (settings.results_dir / job_id).exists()
    assert client.get(f"/v1/avatars/{job_id}").status_code == 404


def test_results_expire_after_the_ttl(tmp_path, astronaut_jpeg):
    settings = ServeSettings(results_dir=tmp_path / "results", ttl_s=1.0, sweep_interval_s=0.2, ui=False)
    with live_server(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        accepted = submit(client, astronaut_jpeg, styles="cartoon")
        job_id = accepted.json()["id"]
        status = wait_for_job(client, accepted.json()["status_url"])
        assert status["status"] == "done"
        assert status["expires_at"] - status["finished_at"] == pytest.approx(1.0)
        job_dir = settings.results_dir / job_id
        deadline = time.monotonic() + 10
        while job_dir.exists() and time.monotonic() < deadline:  # the sweeper, not a request, removes it
            time.sleep(0.1)
        assert not job_dir.exists()
        assert client.get(f"/v1/avatars/{job_id}").status_code == 404
        assert client.get(status["files"]["avatar_cartoon.png"]).status_code == 404


# Service surface -------------------------------------------------------------------------------
def test_health_docs_and_ui_are_served(server):
    client, _ = server
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["workers"] == 1
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/avatars", "/v1/avatars/{job_id}", "/v1/avatars/{job_id}/files/{name}", "/healthz"} <= set(paths)
    assert set(paths["/v1/avatars"]["post"]["responses"]) >= {"202", "413", "415", "422", "429"}
    assert client.get("/docs").status_code == 200
    ui = client.get("/ui/", follow_redirects=True)
    assert ui.status_code == 200 and "gradio" in ui.text.lower()
