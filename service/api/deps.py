"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request

from service.context import ServiceContext


def context(request: Request) -> ServiceContext:
    """Return the service context of the running app."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx
