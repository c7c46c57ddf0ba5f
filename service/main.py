"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from functools import partial

import asyncpg
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from service import docs
from service.api import (
    cycles,
    directory,
    events,
    feedback,
    goals,
    health,
    keys,
    monitoring,
    problems,
    raters,
    releases,
    training,
)
from service.api import metrics as metrics_api
from service.api import sanctions as sanctions_api
from service.api import schemes as schemes_api
from service.api import stream as stream_api
from service.api import webhooks as webhooks_api
from service.api.middleware import HeadAsGet, RequestContextMiddleware
from service.commands import schemes
from service.config import Settings, get_settings
from service.context import Clock, ServiceContext, system_clock
from service.mail.sender import ReminderSender
from service.mail.settings import MailSettings
from service.mail.smtp import parse_smtp_url
from service.notifier import Notifier
from service.projections.base import Projection
from service.projections.kpi_values import KpiValues
from service.projections.registry import all_projections
from service.projections.reminders import Reminders
from service.projections.runner import ProjectionRunner
from service.projections.webhooks import WebhookDispatch
from service.queries.kpis import month_context
from service.scheduler import Scheduler
from service.store import metric_partitions, migrate, reporting
from service.store.database import Database
from service.store.embedded import start_embedded
from service.store.feed import CommitSignal
from service.store.invalidation import CacheListener
from service.ui import downloads as ui_downloads
from service.ui import report as ui_report
from service.ui import routes as ui_routes
from service.webhooks.sender import WebhookSender
from service.webhooks.settings import WebhookSettings

log = logging.getLogger(__name__)

VERSION = "1.0.0"

#: How long a start waits for the read models' tables (a new database makes them in well
#: under a second) before serving anyway.
READ_MODELS_TIMEOUT_SECONDS = 30.0

#: FastAPI's OpenTelemetry hooks report to an OpenTelemetry SDK's providers, and only the API
#: package comes with FastAPI: without the SDK they asked for the three global providers on
#: every request to find none configured (3 % of a held ranking read in-process). With the
#: SDK installed (a deployment that exports traces), they run as FastAPI sets them.
TELEMETRY: TelemetryConfig | None = (
    None if importlib.util.find_spec("opentelemetry.sdk") is not None
    else {"tracing": False, "metrics": False, "logs": False})


async def resolve_database_url(settings: Settings) -> str:
    """Return the configured URL, or start the embedded server and return its URL."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return await asyncio.to_thread(start_embedded, settings.data_dir)


def _on_commit(runner: ProjectionRunner | None, signal: CommitSignal
               ) -> Callable[[Collection[str] | None, Collection[str] | None], None]:
    """Return what a local commit wakes: the projection runners reading the events committed,
    and the live feed's streams."""

    def wake(stream_types: Collection[str] | None, event_types: Collection[str] | None) -> None:
        if runner is not None:
            runner.wake(stream_types, event_types)
        signal.fire()

    return wake


def _start_cache_listener(ctx: ServiceContext) -> CacheListener:
    """Listen for the commands' cache invalidations; until it listens, entries live briefly."""
    def listening(now: bool) -> None:
        for cache in ctx.shared_caches():
            if now:  # what was held before may have missed a change
                cache.clear()
            cache.listening = now

    listener = CacheListener(ctx.db, on_change=ctx.dropped, on_listening=listening)
    listener.start()
    return listener


async def ensure_reporting_views(ctx: ServiceContext) -> None:
    """Create or update the reporting views over the read models that exist (a start-up hook;
    the projection runner makes the others as their read models appear)."""
    try:
        async with ctx.db.connection() as conn:
            await reporting.ensure_reporting(conn)
    except asyncpg.PostgresError as exc:  # BI views are not worth refusing to serve the API
        log.warning("reporting views not made at start-up: %s", exc)


def _start_webhook_sender(
    ctx: ServiceContext, projections: Sequence[Projection], settings: WebhookSettings
) -> WebhookSender | None:
    """Start this process's webhook sender, woken by the dispatcher when it enqueues."""
    if not settings.run_sender:
        return None
    sender = WebhookSender(ctx.db, settings)
    sender.start()
    ctx.extras.webhook_sender = sender
    for projection in projections:
        if isinstance(projection, WebhookDispatch):
            projection.on_enqueue = sender.wake
    return sender


def _start_reminder_sender(
    ctx: ServiceContext, projections: Sequence[Projection]
) -> ReminderSender | None:
    """Start this process's reminder sender where a mail server is configured."""
    settings = ctx.settings
    if settings.smtp_url is None:
        log.info("CSPERF_SMTP_URL is unset: reminders are recorded but not sent")
        return None
    mail = MailSettings()
    if not mail.run_sender:
        return None
    sender = ReminderSender(ctx.db, parse_smtp_url(settings.smtp_url.get_secret_value()),
                            settings.smtp_from, mail, clock=ctx.clock)
    sender.start()
    ctx.extras.reminder_wake = sender.wake
    for projection in projections:
        if isinstance(projection, Reminders):
            projection.on_enqueue = sender.wake
    return sender


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    clock: Clock = system_clock,
    projections: Sequence[Projection] | None = None,
    migrate_on_start: bool = True,
    webhook_settings: WebhookSettings | None = None,
) -> FastAPI:
    """Build the app; it connects to the database only when it starts.

    ``webhook_settings`` replaces the ``CSPERF_WEBHOOK_*`` environment (tests use it).
    """
    settings = settings or get_settings()
    webhooks = webhook_settings or WebhookSettings()
    chosen = (list(projections) if projections is not None
              else [*all_projections(), WebhookDispatch(), Reminders()])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or await resolve_database_url(settings)
        if migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url, pool_size=settings.db_pool_size)
        replica = settings.read_database_url
        read_db = (Database(replica.get_secret_value(), pool_size=settings.db_pool_size,
                            read_only=True) if replica is not None else None)
        ctx = ServiceContext(settings=settings, db=db, clock=clock, read_db=read_db)
        if settings.run_projections:
            ctx.runner = ProjectionRunner(db, chosen, poll_seconds=settings.projection_poll_seconds)
            ctx.runner.start()
            try:
                async with asyncio.timeout(READ_MODELS_TIMEOUT_SECONDS):
                    await ctx.runner.wait_for_read_models()
            except TimeoutError:
                log.warning("serving before every read model exists; the first reads may fail")
        signal = CommitSignal()
        ctx.extras.commit_signal = signal
        ctx.notifier = Notifier(db, local=_on_commit(ctx.runner, signal))
        ctx.notifier.start()
        listener = app.state.cache_listener = _start_cache_listener(ctx)
        app.state.ctx = ctx
        app.state.projections = chosen
        for hook in app.state.startup_hooks:
            await hook(ctx)
        sender = _start_webhook_sender(ctx, chosen, webhooks)
        # This month's samples and the next few months' have a partition before they arrive
        # (one replica's Upkeep keeps it so as months pass).
        async with db.connection() as conn:
            await metric_partitions.ensure(conn, ctx.clock())
        partitions = (metric_partitions.Upkeep(db, clock=ctx.clock)
                      if settings.run_projections else None)
        kpi_values = (KpiValues(db, partial(month_context, ctx), clock=ctx.clock)
                      if settings.run_projections else None)
        for loop in (partitions, kpi_values):
            if loop is not None:
                loop.start()
        reminders = _start_reminder_sender(ctx, chosen)
        scheduler = None
        if settings.run_scheduler:
            scheduler = Scheduler(ctx, interval_seconds=settings.scheduler_interval_seconds)
            scheduler.start()
        try:
            yield
        finally:
            if sender is not None:
                await sender.stop()
            if reminders is not None:
                await reminders.stop()
            if scheduler is not None:
                await scheduler.stop()
            for loop in (kpi_values, partitions):
                if loop is not None:
                    await loop.stop()
            await listener.stop()
            await ctx.notifier.stop()
            if ctx.runner is not None:
                await ctx.runner.stop()
            await db.close()
            if read_db is not None:
                await read_db.close()

    app = FastAPI(
        title="csperf",
        version=VERSION,
        summary="Customer-service performance management: live KPIs, monthly evaluations, "
        "published rankings and their consequences.",
        lifespan=lifespan,
        # Served by service.docs from the package's own assets, not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
        telemetry=TELEMETRY,
    )
    app.state.startup_hooks = [keys.register_bootstrap_key, schemes.ensure_default,
                               ensure_reporting_views]
    problems.install(app)
    # Added first, so it runs inside the request context (ids, logs, metrics) of the next.
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # FastAPI tries routes in this order, about 1.5 us of matching each on every request (an
    # included router's twice), so the hottest come first: published rankings and scorecards
    # (first in their router), probes, then everything else.
    app.include_router(cycles.router)
    app.include_router(health.router)
    app.include_router(keys.router)
    app.include_router(directory.router)
    app.include_router(schemes_api.router)
    app.include_router(goals.router)
    app.include_router(raters.router)
    app.include_router(training.router)
    app.include_router(feedback.router)
    app.include_router(releases.router)
    app.include_router(monitoring.router)
    app.include_router(metrics_api.router)
    app.include_router(sanctions_api.router)
    app.include_router(events.router)
    app.include_router(stream_api.router)
    app.include_router(webhooks_api.router)
    docs.install(app)
    # The built-in pages (/ui): a second door onto the same read and write layers.
    app.include_router(ui_routes.router)
    app.include_router(ui_report.router)
    app.include_router(ui_downloads.router)
    return app
