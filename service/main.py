"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import cycles, directory, events, health, keys, problems
from service.api import metrics as metrics_api
from service.api import sanctions as sanctions_api
from service.api import schemes as schemes_api
from service.api.middleware import RequestContextMiddleware
from service.commands import schemes
from service.config import Settings, get_settings
from service.context import Clock, ServiceContext, system_clock
from service.notifier import Notifier
from service.projections.base import Projection
from service.projections.registry import all_projections
from service.projections.runner import ProjectionRunner
from service.scheduler import Scheduler
from service.store import migrate
from service.store.database import Database
from service.store.embedded import start_embedded

log = logging.getLogger(__name__)

VERSION = "1.0.0"


async def resolve_database_url(settings: Settings) -> str:
    """Return the configured URL, or start the embedded server and return its URL."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await asyncio.to_thread(start_embedded, settings.data_dir)


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock = system_clock,
    projections: Sequence[Projection] | None = None,
    migrate_on_start: bool = True,
) -> FastAPI:
    """Build the app; it connects to the database only when it starts."""
    settings = settings or get_settings()
    chosen = list(projections) if projections is not None else all_projections()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or await resolve_database_url(settings)
        if migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url, pool_size=settings.db_pool_size)
        ctx = ServiceContext(settings=settings, db=db, clock=clock)
        if settings.run_projections:
            ctx.runner = ProjectionRunner(db, chosen, poll_seconds=settings.projection_poll_seconds)
            ctx.runner.start()
        ctx.notifier = Notifier(db, local=ctx.runner.wake if ctx.runner else None)
        ctx.notifier.start()
        app.state.ctx = ctx
        app.state.projections = chosen
        for hook in app.state.startup_hooks:
            await hook(ctx)
        scheduler = None
        if settings.run_scheduler:
            scheduler = Scheduler(ctx, interval_seconds=settings.scheduler_interval_seconds)
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await ctx.notifier.stop()
            if ctx.runner is not None:
                await ctx.runner.stop()
            await db.close()

    app = FastAPI(
        title="csperf",
        version=VERSION,
        summary="Customer-service performance management: live KPIs, monthly evaluations, "
        "published rankings and their consequences.",
        lifespan=lifespan,
    )
    app.state.startup_hooks = [keys.register_bootstrap_key, schemes.ensure_default]
    problems.install(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(keys.router)
    app.include_router(directory.router)
    app.include_router(schemes_api.router)
    app.include_router(cycles.router)
    app.include_router(metrics_api.router)
    app.include_router(sanctions_api.router)
    app.include_router(events.router)
    return app
