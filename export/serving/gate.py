"""The door of ``POST /generate``: admission, body limit and validation, before the queue.

An ASGI middleware in front of LitServe's route (the batching and HTTP stay LitServe's):

1. **Overload**: at most ``Limits.max_queue`` requests are admitted at once (waiting for a
   batch or running); one more is answered ``503`` with ``Retry-After`` at once instead of
   waiting behind them. The count lives in shared memory, so every API server process sees
   the same total.
2. **Body limit**: a body over ``Limits.max_body_bytes`` is ``413`` (by its Content-Length
   before any byte is read, else while reading).
3. **Validation**: :func:`.requests.parse_generate` checks the body against the model's latent
   layout; a bad request is ``400`` with a one-line JSON ``{"detail": ...}``. LitServe's batched
   loop fails a whole batch when one request's ``decode_request`` raises, so nothing reaches
   the queue unchecked. What goes on is the normalised request (with the seed drawn here).
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Awaitable, Callable

from ...latent import LatentSpec
from .requests import Limits, RequestError, parse_generate

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


async def send_json(send: Send, status: int, detail: str, headers: dict | None = None) -> None:
    """A complete JSON error response ``{"detail": detail}`` (one line)."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GenerateGate:
    """ASGI middleware guarding ``path`` (POST); every other route passes through untouched.

    Args:
        app: the wrapped ASGI app (LitServe's FastAPI app).
        path: the generate route, e.g. ``/generate``.
        spec: the model's latent layout (what a request is checked against).
        limits: images per request, body bytes, requests admitted at once.
        in_flight: a shared counter (``multiprocessing.Value("i")``) made before the API
            server processes fork, so they share it.
    """

    def __init__(self, app, *, path: str, spec: LatentSpec, limits: Limits, in_flight):
        self.app, self.path, self.spec, self.limits = app, path, spec, limits
        self.in_flight = in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != self.path
                or scope.get("method") != "POST"):
            await self.app(scope, receive, send)
            return
        if not self._admit():
            await send_json(send, 503, f"server busy: {self.limits.max_queue} requests are "
                            "already waiting or running (the --max-queue limit); retry later",
                            {"retry-after": "1"})
            return
        try:
            try:
                body = await self._read_body(scope, receive)
                request = parse_generate(body, self.spec, self.limits)
            except RequestError as exc:
                await send_json(send, exc.status, exc.message)
                return
            await self.app(*_with_body(scope, receive, json.dumps(request).encode()), send)
        finally:
            with self.in_flight.get_lock():
                self.in_flight.value -= 1

    def _admit(self) -> bool:
        with self.in_flight.get_lock():
            if self.in_flight.value >= self.limits.max_queue:
                return False
            self.in_flight.value += 1
            return True

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.limits.max_body_bytes
        too_big = RequestError(413, f"the body is larger than {limit:,} bytes (the "
                                    "--max-body-bytes limit); ask for fewer images")
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                raise too_big
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestError(400, "the client disconnected before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _with_body(scope: Scope, receive: Receive, body: bytes) -> tuple[Scope, Receive]:
    """``scope`` with JSON headers for ``body``, and a ``receive`` that replays it once, then
    hands over to the connection's own (which reports a real disconnect)."""
    headers = [(k, v) for k, v in scope.get("headers", [])
               if k not in (b"content-length", b"content-type", b"transfer-encoding")]
    headers += [(b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return {**scope, "headers": headers}, replay


def shared_counter():
    """The in-flight count shared by the API server processes (made before they fork)."""
    return mp.get_context("fork").Value("i", 0)
