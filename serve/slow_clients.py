"""Deadlines for slow clients: a connection may not hold the server open by sending slowly.

Two limits, at the two layers where they can be seen:

- Headers (`header_deadline_protocol`): uvicorn starts no timer while a request's headers arrive (its
  keep-alive timer only runs between requests), so a client sending a byte now and then keeps a socket
  and its buffers forever. The protocol subclass arms a timer when a connection opens (and when a new
  request starts on a kept-alive one) and cancels it when h11 has the complete headers; when it fires
  the client gets `408` and the connection is closed. Server-level: `python app.py`, the tests and the
  benchmark run uvicorn with it (`serve.server`); behind Ray Serve the proxy's own limits apply.
- Body (`BodyReadDeadline`, ASGI middleware): from the moment the headers are in, the whole body must
  arrive within `timeout_s`; past it the app reads a disconnect and the client gets `408` with
  `Connection: close`. Once the body is complete nothing is timed, so long responses (Gradio's event
  streams) are untouched.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

def _timeout_body(what: str, seconds: float) -> bytes:
    return json.dumps({"error": "request_timeout",
                       "detail": f"The request's {what} did not arrive within {seconds:g} s; the connection is closed."}).encode()


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers (`header_timeout_s`)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _watch_headers(self) -> None:
        """Timer on while a request's headers are incomplete (h11: client IDLE), off otherwise."""
        waiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if waiting and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
        elif not waiting:
            self._cancel_header_timer()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is under way (pipelining): the app's own cycle ends the connection
        body = _timeout_body("headers", self.header_timeout_s)
        # h11 cannot answer a request it has not seen: write the response as bytes, then close.
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode() + body
        )
        self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to pass as uvicorn's `http=` with this deadline."""
    if not header_timeout_s > 0:
        raise ValueError(f"`header_timeout_s` must be positive, got {header_timeout_s}.")
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": float(header_timeout_s)})


class BodyReadDeadline:
    """ASGI middleware: an HTTP request's body must be complete within `timeout_s` of its headers."""

    def __init__(self, app: Callable, *, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"`timeout_s` must be positive, got {timeout_s}.")
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        complete = timed_out = response_started = False

        async def deadline_receive() -> Message:
            nonlocal complete, timed_out
            if complete:
                return await receive()  # after the body: waits for a disconnect, untimed
            if timed_out:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if timed_out and not response_started:
                return  # this middleware answers instead of the app
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, deadline_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not response_started:
            body = _timeout_body("body", self.timeout_s)
            await send({"type": "http.response.start", "status": 408,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
