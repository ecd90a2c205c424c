"""Issue 13, item 16: 50 slow-client sockets (headers or body trickled a byte at a time) stayed open
30 s. Each request's headers and body now have deadlines; the server answers 408 and closes, and keeps
serving everyone else meanwhile. Raw sockets, so nothing on the client side times out first."""
from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from serve.app import create_app
from serve.settings import ServeSettings
from tests.serve.conftest import live_server
from tests.serve.standins import FastPipeline

CLIENTS = 50
HEADER_TIMEOUT_S = 2.0
BODY_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    settings = ServeSettings(results_dir=tmp_path_factory.mktemp("results"), ui=False,
                             header_timeout_s=HEADER_TIMEOUT_S, body_timeout_s=BODY_TIMEOUT_S, keep_alive_s=1.0)
    with live_server(create_app(settings, pipeline_factory=FastPipeline)) as url:
        yield url


def trickle(url: str, first: bytes, then: bytes, give_up_s: float) -> tuple[float, bytes]:
    """Send `first`, then `then` one byte every 0.25 s; return (seconds until the server closed, its reply)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=give_up_s)
    started = time.monotonic()
    reply = b""
    try:
        sock.sendall(first)
        sock.settimeout(0.25)
        for byte in then:
            try:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            except socket.timeout:
                pass
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            if time.monotonic() - started > give_up_s:
                break
        sock.settimeout(max(0.1, give_up_s - (time.monotonic() - started)))
        while chunk := sock.recv(4096):
            reply += chunk
    except (socket.timeout, OSError):
        pass
    finally:
        sock.close()
    return time.monotonic() - started, reply


def crowd(url: str, first: bytes, then: bytes, give_up_s: float) -> list[tuple[float, bytes]]:
    results: list = [None] * CLIENTS
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, trickle(url, first, then, give_up_s)))
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    return threads, results


def test_slow_headers_are_cut_off_with_408(server):
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    then = b"X-Slow: " + b"a" * 400  # never finishes the headers
    threads, results = crowd(server, first, then, give_up_s=30)
    time.sleep(0.5)
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200  # everyone else is still served
    for thread in threads:
        thread.join(60)
    for seconds, reply in results:
        assert seconds < HEADER_TIMEOUT_S + 3, f"a slow-header socket stayed open {seconds:.1f} s"
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]


def test_idle_connections_that_send_nothing_are_closed(server):
    threads, results = crowd(server, b"", b"", give_up_s=30)
    for thread in threads:
        thread.join(60)
    for seconds, reply in results:
        assert seconds < HEADER_TIMEOUT_S + 3 and reply.startswith(b"HTTP/1.1 408")


def test_slow_bodies_are_cut_off_with_408(server, astronaut_jpeg):
    boundary = b"slowboundary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + astronaut_jpeg + b"\r\n--" + boundary + b"--\r\n")
    head = (b"POST /v1/avatars HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary
            + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    threads, results = crowd(server, head + body[:100], body[100:400], give_up_s=30)
    time.sleep(0.5)
    assert httpx.get(f"{server}/healthz", timeout=5).status_code == 200
    for thread in threads:
        thread.join(60)
    for seconds, reply in results:
        assert seconds < BODY_TIMEOUT_S + 3, f"a slow-body socket stayed open {seconds:.1f} s"
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert b"request_timeout" in reply


def test_a_normal_upload_is_not_affected(server, astronaut_jpeg):
    response = httpx.post(f"{server}/v1/avatars", files={"photo": ("p.jpg", astronaut_jpeg, "image/jpeg")}, timeout=30)
    assert response.status_code == 202
