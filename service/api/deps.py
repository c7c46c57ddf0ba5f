"""FastAPI dependencies shared by the routers: the service context and who runs a command."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.commands.base import Caller
from service.context import ServiceContext
from service.domain.principal import Principal, event_metadata

_MAX_HEADER_ID = 128


def service_context(request: Request) -> ServiceContext:
    """Return the service context of the running app.

    The API's routes take it from their request (``ctx = service_context(request)``) rather
    than as a ``Ctx`` parameter: FastAPI solves each dependency of a route on every request,
    about 80 Python calls (3 % of a PUT agent's service CPU under load, py-spy), for a value
    that never changes.
    """
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def context(request: Request) -> ServiceContext:
    """Return the service context of the running app (the dependency routes declare).

    Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    hop per request that cost more than the rest of this function by far.
    """
    return service_context(request)


#: The service context as a route parameter, ``ctx: Ctx`` (the pages').
Ctx = Annotated[ServiceContext, Depends(context)]


def _header_id(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if not value or len(value) > _MAX_HEADER_ID or not value.isprintable():
        return None
    return value


def actor_metadata(principal: Principal, request: Request) -> dict[str, Any]:
    """Return the metadata every event appended for this request must carry."""
    request_id = getattr(request.state, "request_id", None) or _header_id(request, "x-request-id")
    return event_metadata(
        principal,
        request_id=request_id,
        correlation_id=_header_id(request, "x-correlation-id"),
        causation_id=_header_id(request, "x-causation-id"),
    )


def caller(principal: Principal, request: Request) -> Caller:
    """Return who runs a command: actor metadata and the request's idempotency key."""
    key = request.headers.get("idempotency-key")
    if key is not None and (len(key) > 200 or not key.isprintable()):
        key = None
    return Caller(metadata=actor_metadata(principal, request), idempotency_key=key)
