"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from service.commands.base import Caller
from service.context import ServiceContext
from service.domain.principal import Principal


def service_context(request: Request) -> ServiceContext:
    """Return the service context of the running app."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def context(request: Request) -> ServiceContext:
    """Return the service context of the running app (the dependency routes declare).

    Async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    hop per request that cost more than the rest of this function by far.
    """
    return service_context(request)


def caller(principal: Principal, request: Request) -> Caller:
    """Return who runs a command: actor metadata and the request's idempotency key."""
    from service.api.auth import actor_metadata  # auth imports this module

    key = request.headers.get("idempotency-key")
    if key is not None and (len(key) > 200 or not key.isprintable()):
        key = None
    return Caller(metadata=actor_metadata(principal, request), idempotency_key=key)
