"""webhook_dispatch: turn events into webhook deliveries, exactly once per subscription.

Run by the projection runner like a read model (one process at a time, checkpointed), so the
deliveries of a batch are inserted in the same transaction as its checkpoint: a crash never
loses or doubles one. It has no tables of its own: it writes the ``webhook_delivery`` outbox
(a migration table), which the sender (service/webhooks/sender.py) empties.

A subscription gets the events after its start cursor only, and each (subscription, event)
pair has one delivery id, inserted ``ON CONFLICT DO NOTHING``: so even a rebuild from position
zero (``csperf projections rebuild webhook_dispatch``) re-sends nothing and back-fills nothing.
Its ``version`` therefore never needs to change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import ClassVar

import asyncpg
import orjson

from service.domain import webhooks as w
from service.projections.base import Projection, Tables
from service.store import webhooks as store
from service.store.event_store import DataOnly, RecordedEvent, read_data, stream_type
from service.store.feed import event_document


class WebhookDispatch(Projection):
    """Enqueue one delivery per event and matching subscription."""

    name = "webhook_dispatch"
    version = 1
    tables: ClassVar[dict[str, str]] = {}
    stream_types = None
    # Payloads are read only for the events some subscription wants (read_data below).
    data_only = DataOnly(("*",))

    def __init__(self, on_enqueue: Callable[[], None] | None = None) -> None:
        #: Called when deliveries were enqueued (before commit: a wake-up, not a promise).
        self.on_enqueue = on_enqueue

    async def writes(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> bool:
        """Tell whether an active subscription wants an event of the batch. One subscribed
        after this read starts after the events visible then (``commands.webhooks.subscribe``),
        these among them, unless given an earlier start; and one given an earlier start while
        the batch's transaction ran would have missed them as well: the answer stands."""
        return bool(_wanted(events, await store.active_targets(conn)))

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Match the batch against the active subscriptions and enqueue the deliveries."""
        wanted = _wanted(events, await store.active_targets(conn))
        if not wanted:
            return
        payloads = await read_data(conn, [e.position for e, _ in wanted])
        rows = []
        for e, subscribed in wanted:
            document = event_document(replace(e, data=payloads[e.position]))
            for t in subscribed:
                delivery = w.delivery_id(t.subscription_id, e.event_id)
                body = orjson.dumps({"delivery_id": str(delivery),
                                     "subscription_id": t.subscription_id, "event": document})
                rows.append((delivery, t.subscription_id, e.event_id, e.type, e.stream_id,
                             e.position, body.decode()))
        if rows:
            await store.enqueue(conn, rows)
            if self.on_enqueue is not None:
                self.on_enqueue()


def _wanted(events: Sequence[RecordedEvent], targets: Sequence[store.Target]
            ) -> list[tuple[RecordedEvent, list[store.Target]]]:
    """Return each event some target wants, with those targets."""
    if not targets:
        return []
    return [
        (e, subscribed) for e in events
        if (subscribed := [t for t in targets if e.cursor > t.start and w.matches(
            t.event_types, t.stream_types, e.type, stream_type(e.stream_id))])
    ]
