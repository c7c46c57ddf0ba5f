"""Request ids, access logs, latency metrics, the body size limit and HEAD, as plain ASGI."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import observability
from service.api.problems import problem_response

log = logging.getLogger("csperf.access")

class _RequestIds:
    """Request ids: this process's random prefix and a count, unique without asking the
    kernel for random bytes on every request (uuid4 did, a fiftieth of a held ranking read).

    A forked worker (a server that loads the app before it forks) draws a prefix of its own.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.count = itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.count) & 0xFFFFFFFFFFFFFFFF:016x}"


_new_request_id = _RequestIds().new


#: The metric series of each (method, route, status) seen: prometheus_client's labels() takes a
#: lock and checks its label values on every call. As bounded as the series themselves.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _observe(method: str, route: str, status: int, seconds: float) -> None:
    series = _SERIES.get((method, route, status))
    if series is None:
        series = _SERIES[(method, route, status)] = (
            observability.REQUESTS.labels(method, route, str(status)),
            observability.LATENCY.labels(method, route),
        )
    series[0].inc()
    series[1].observe(seconds)


class BodyTooLarge(HTTPException):
    """The request body passed the configured limit.

    An HTTPException so that it crosses FastAPI's body parsing, which turns any other error
    raised while reading the body into a 400 (a chunked body has no Content-Length to refuse
    up front, so this is how the limit reaches it).
    """

    kind = "payload-too-large"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class RequestContextMiddleware:
    """Give each request an id, log it, time it, and refuse oversized bodies with 413."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The two headers read here, the last of each as a dict of them all would keep.
        request_id = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"content-length":
                declared = value.decode("latin-1")
        if not request_id or len(request_id) > 128 or not request_id.isprintable():
            request_id = _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = observability.request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500}

        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send, request_id)
            observability.request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            await self._too_large(scope, receive, send, request_id)
            status["code"] = 413
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            _observe(method, route, status["code"], elapsed)
            if log.isEnabledFor(logging.INFO):  # no record to build when nobody reads it
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "path": scope.get("path"),
                        "status": status["code"],
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            observability.request_id_var.reset(token)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        response = problem_response(
            None, 413, f"the request body exceeds {self.max_body_bytes} bytes",
            kind="payload-too-large", headers={"x-request-id": rid},
        )
        await response(scope, receive, send)


class _HeadAnswered(Exception):
    """A HEAD request's answer is complete; the streaming body behind it is not wanted."""


class HeadAsGet:
    """Answer HEAD on every GET route as GET without the body (RFC 9110, 9.3.2).

    FastAPI registers a route for the methods it names, so HEAD was a 405 everywhere. Here
    HEAD runs the GET route (same checks, same status and headers, Content-Length included)
    and only the body is dropped; a streaming body (the SSE feed) is stopped at its first
    chunk instead of running on unread.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request; only HEAD is changed."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_head(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
                return
            if not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _HeadAnswered

        try:
            await self.app({**scope, "method": "GET"}, receive, send_head)
        except _HeadAnswered:
            pass
        except BaseExceptionGroup as group:  # a streaming response's task group wraps it
            rest = group.subgroup(lambda e: not isinstance(e, _HeadAnswered))
            if rest is not None:
                raise rest from None


def _route_template(scope: MutableMapping[str, Any]) -> str:
    # The path template, not the raw path, so metric label cardinality stays bounded.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
