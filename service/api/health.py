"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import observability
from service.api.auth import allow, public
from service.api.deps import context
from service.api.problems import Problem
from service.api.routing import Router
from service.context import ServiceContext
from service.projections import checkpoints
from service.projections.lag import lags_events
from service.projections.registry import all_projections
from service.store import migrate
from service.store.database import DATABASE_AWAY

router = Router(tags=["operations"])


@router.get("/healthz", dependencies=[public()])
async def healthz() -> dict[str, str]:
    """Answer while the process is up."""
    return {"status": "ok"}


@router.get("/readyz", dependencies=[public()],
            responses={503: {"description": "the database is unreachable, or its migrations"
                                            " are not at head"}})
async def readyz(ctx: Annotated[ServiceContext, Depends(context)]) -> dict[str, str]:
    """Answer 200 when the database is reachable and migrated to head."""
    try:
        async with ctx.db.connection() as conn:
            revision = await conn.fetchval("SELECT version_num FROM alembic_version")
    except DATABASE_AWAY as exc:
        raise Problem(
            503, "the database is unreachable", kind="not-ready", headers={"Retry-After": "2"}
        ) from exc
    head = migrate.head_revision()
    if revision != head:
        raise Problem(
            503, f"migrations at {revision}, head is {head}", kind="not-ready",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "migration": str(revision)}


# Admin and readers (allow() admits readers on every GET): monitoring scrapes with a reader key.
@router.get("/metrics", response_class=Response, dependencies=[allow()])
async def metrics(ctx: Annotated[ServiceContext, Depends(context)]) -> Response:
    """Expose Prometheus metrics (request counts and latency, appends, projection lag)."""
    try:
        async with ctx.db.connection() as conn:
            live = {g.name: g for g in await checkpoints.all_generations(conn)
                    if g.status == "live"}
            followed = [(p, live[p.name]) for p in all_projections() if p.name in live]
            lags = dict(zip([p.name for p, _ in followed], await lags_events(conn, followed),
                            strict=True))
        for name, lag in lags.items():
            observability.PROJECTION_LAG.labels(name).set(lag)
    except DATABASE_AWAY:
        pass  # metrics stay available while the database is away
    return Response(generate_latest(observability.REGISTRY), media_type=CONTENT_TYPE_LATEST)
