"""The gate in front of every route: bearer-token auth and the request-body size limit.

A plain ASGI middleware, so refused requests cost no routing or parsing: a wrong key gets 401 and
a body over the limit gets 413 before the body is read further, both in the OpenAI error shape.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._errors import error_body

__all__ = ["OPEN_PATHS", "ASGIApp", "Guard", "Receive", "Scope", "Send", "read_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
"""Routes that answer without the API key (a load balancer's health check has no key)."""


class Guard:
    """Refuse requests without the right bearer token (when a key is set) or with a large body."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self._key = api_key.encode("utf-8") if api_key else None
        self._max_body = int(max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if self._key is not None and scope.get("path") not in OPEN_PATHS:
            refusal = self._check_key(headers.get(b"authorization"))
            if refusal is not None:
                reason, code = refusal
                await _reply(send, 401, reason, code=code, extra=[(b"www-authenticate", b"Bearer")])
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _reply(send, 400, "the Content-Length header is not a number")
                return
            if size > self._max_body:
                await _reply(send, 413, self._too_large(size), code="request_too_large")
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self._max_body:
                await _reply(send, 413, self._too_large(None), code="request_too_large")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _check_key(self, header: bytes | None) -> tuple[str, str] | None:
        """None when the Authorization header carries the key, else (message, code)."""
        if not header:
            return (
                "missing API key: send the header 'Authorization: Bearer <key>' "
                "(the openai client sends its api_key this way)",
                "missing_api_key",
            )
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._key or b""):
            return "invalid API key", "invalid_api_key"
        return None

    def _too_large(self, size: int | None) -> str:
        got = f" ({size} bytes)" if size is not None else ""
        return (
            f"request body too large{got}: the limit is {self._max_body} bytes; "
            "split the input over several requests"
        )


async def read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole request body (None: the client went away first) and a `receive` that gives it
    again to the app behind."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, receive
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            body = b"".join(chunks)
            return body, _replay(body, receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the already-read body once, then defers to the real one."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _reply(
    send: Send,
    status: int,
    message: str,
    *,
    code: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(error_body(status, message, code=code)).encode("utf-8")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
