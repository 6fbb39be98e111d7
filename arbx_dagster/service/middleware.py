"""Plain ASGI middleware: request metrics, security headers, body limit, per-client limit.

Written against ASGI directly (not ``BaseHTTPMiddleware``) so that streaming responses
(SSE) pass through untouched and each layer costs a function call, not a task.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arbx_dagster.service.metrics import Metrics
from arbx_dagster.service.ratelimit import RateLimiter
from arbx_dagster.storage.cache import CacheError

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
NO_STORE = (b"cache-control", b"no-store")


class MetricsMiddleware:
    """Counts each request and its latency under its route's template.

    A request is counted just before its last body chunk goes out, so a client that has
    read a whole answer finds it in the next scrape, whichever worker answers that;
    requests that end without an answer (an error, a client gone) are counted at the end.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            route = scope.get("route")
            name = getattr(route, "path", None) or (
                "static" if scope["path"].startswith("/static/") else "unmatched"
            )
            self.metrics.observe_request(
                scope["method"], name, status["code"], time.perf_counter() - started
            )

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif (
                message["type"] == "http.response.body"
                and not message.get("more_body")
                and not counted
            ):
                count()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if not counted:
                count()


class SecurityHeadersMiddleware:
    """CSP, no sniffing, no framing, no referrer; HSTS when the request came over TLS
    (directly or, with ``--proxy-headers``, through a TLS-terminating proxy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if scope.get("scheme") == "https":
            extra.append(HSTS)
        if scope["path"].startswith("/api/"):
            extra.append(NO_STORE)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                headers.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``, announced (Content-Length) or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    await _json(
                        send, 400, {"error": "bad_request", "message": "bad Content-Length"}
                    )
                    return
                if too_big:
                    await _json(send, 413, _too_large(self.max_bytes))
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, _too_large(self.max_bytes)["message"])
            return message

        await self.app(scope, limited_receive, send)


class ClientRateLimitMiddleware:
    """Per client address, on ``/api/*`` (keys have their own limit after auth)."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limit: int, metrics: Metrics) -> None:
        self.app = app
        self.limiter = limiter
        self.limit = limit
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/") or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        try:
            decision = await self.limiter.check("client", address, self.limit)
        except CacheError:
            decision = None  # the limiter is an accelerator: fail open, the API stays up
        if decision is not None and not decision.allowed:
            self.metrics.inc("arbx_rate_limited_total", scope="client")
            await _json(
                send,
                429,
                {"error": "rate_limited", "message": "too many requests from this address"},
                [(b"retry-after", str(decision.retry_after).encode())],
            )
            return
        await self.app(scope, receive, send)


def _too_large(limit: int) -> dict[str, Any]:
    return {"error": "payload_too_large", "message": f"request body exceeds {limit} bytes"}


async def _json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
