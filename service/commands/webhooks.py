"""Webhook subscription commands: subscribe a URL, delete a subscription.

Each goes through ``execute`` on the subscription's stream (``webhook:<id>``): the event and
the ``webhook_subscription`` row (``service.store.webhooks``) are written in one transaction,
and the stream's advisory lock queues two deletions of one subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import webhooks as w
from service.retrying import on_taken_id
from service.store import event_store
from service.store import webhooks as store
from service.store.errors import ConcurrencyError
from service.store.event_store import Cursor

log = logging.getLogger("csperf.webhooks")


async def create(
    ctx: ServiceContext, caller: Caller, *, url: str, event_types: Sequence[str],
    stream_types: Sequence[str] | None, description: str | None, start: Cursor | None,
    created_by: str,
) -> tuple[store.Subscription, str]:
    """Subscribe; return the subscription and its secret (which nothing will show again).

    Events after ``start`` are delivered; without it, events after the current end of the
    feed (every event committed from now on).
    """
    secret = store.new_secret()
    if start is None:
        async with ctx.db.connection() as conn:
            start = await event_store.head(conn)
    async for attempt in on_taken_id():  # the random id is taken: draw another
        with attempt:
            created = await _subscribe(ctx, caller, store.new_id(), url=url,
                                       event_types=event_types, stream_types=stream_types,
                                       description=description, secret=secret, start=start,
                                       created_by=created_by)
    log.info("webhook %s subscribed for %s", created.subscription_id, w.url_origin(url),
             extra={"actor": caller.metadata.get("actor")})
    return created, secret


async def _subscribe(
    ctx: ServiceContext, caller: Caller, subscription_id: str, *, url: str,
    event_types: Sequence[str], stream_types: Sequence[str] | None, description: str | None,
    secret: str, start: Cursor, created_by: str,
) -> store.Subscription:
    now = ctx.clock()
    created: store.Subscription | None = None

    async def write_row(conn: asyncpg.Connection) -> None:
        nonlocal created
        created = await store.insert(
            conn, subscription_id, url=url, event_types=event_types, stream_types=stream_types,
            description=description, secret=secret, start=start, created_by=created_by, now=now)

    subscribed = w.WebhookSubscribed(
        subscription_id=subscription_id, url_origin=w.url_origin(url),
        url_sha256=w.url_sha256(url), event_types=list(event_types),
        stream_types=list(stream_types) if stream_types is not None else None,
        description=description,
    )
    await execute(ctx, caller, w.subscription_stream(subscription_id), w.evolve,
                  lambda state: w.decide_subscribe(state, subscribed), then=write_row)
    assert created is not None
    return created


async def delete(
    ctx: ServiceContext, caller: Caller, subscription_id: str, *, deleted_by: str,
) -> tuple[store.Subscription, bool] | None:
    """Delete a subscription and cancel its pending deliveries; return it and whether this
    call deleted it (None: unknown)."""
    now = ctx.clock()
    pending = 0
    deleted: store.Subscription | None = None

    async def count(conn: asyncpg.Connection) -> None:
        # Counted first: the event records how many deliveries the deletion cancels.
        nonlocal pending
        pending = await store.pending(conn, subscription_id)

    async def mark_row(conn: asyncpg.Connection) -> None:
        nonlocal deleted
        deleted = await store.mark_deleted(conn, subscription_id, deleted_by=deleted_by, now=now)
        if deleted is None:  # the row disagrees with the stream: roll the event back
            raise ConcurrencyError(w.subscription_stream(subscription_id), None, 0)

    await execute(ctx, caller, w.subscription_stream(subscription_id), w.evolve,
                  lambda state: w.decide_delete(state, pending), before=count, then=mark_row)
    if deleted is None:
        current = await store.get(ctx.db, subscription_id)
        return (current, False) if current is not None else None
    log.info("webhook %s deleted", subscription_id,
             extra={"actor": caller.metadata.get("actor")})
    return deleted, True
