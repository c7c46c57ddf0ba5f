"""reminders: turn events into email reminders in the outbox, exactly once.

Run by the projection runner like a read model (one process at a time, checkpointed), so the
reminders of a batch are inserted in the same transaction as its checkpoint: a crash never
loses or doubles one. Like ``webhook_dispatch`` it has no tables of its own: it writes the
``reminder`` outbox (a migration table), which the mail sender (service/mail/sender.py) empties.

Which events remind whom is the table ``service.domain.reminders.KINDS``; this module only
reads the event types it names. Each reminder's id is derived from (person, kind, subject) and
inserted ``ON CONFLICT DO NOTHING``, and events before ``reminder_start`` (the feed's end when
reminders were installed) are passed over: a rebuild from position zero (a new ``version``)
re-sends nothing and never emails about the past.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import asyncpg

from service.domain import reminders as r
from service.projections.base import Only, Projection, Tables
from service.projections.decoded import decoded
from service.store import reminders as store
from service.store.event_store import DataOnly, RecordedEvent

_STREAM_TYPES = tuple(sorted({k.stream_type for k in r.BY_EVENT.values() if k.stream_type}))


class Reminders(Projection):
    """Record the reminders each event of ``KINDS`` causes."""

    name = "reminders"
    version = 1
    tables: ClassVar[dict[str, str]] = {}
    stream_types = _STREAM_TYPES
    # Payloads are read only for the event types that remind (a month's close is 3.6 MB).
    data_only = DataOnly(_STREAM_TYPES, frozenset(r.BY_EVENT))
    applies = Only(_STREAM_TYPES, frozenset(r.BY_EVENT))

    def __init__(self, on_enqueue: Callable[[], None] | None = None) -> None:
        #: Called when reminders were recorded (before commit: a wake-up, not a promise).
        self.on_enqueue = on_enqueue

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Derive and record the reminders of the batch's events."""
        wanted = [e for e in events if e.type in r.BY_EVENT]
        if not wanted:
            return
        begin = await store.start(conn)
        recorded = 0
        for e in wanted:
            if e.cursor <= begin:
                continue
            recorded += await store.enqueue(conn, r.derive(decoded(e)),
                                            created_at=e.recorded_at, event_id=e.event_id)
        if recorded and self.on_enqueue is not None:
            self.on_enqueue()
