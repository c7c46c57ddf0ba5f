"""The global feed for integrations: filtered pages of the event store that never skip.

Pages follow ``event_store.read_all``'s order: (transaction id, position), only rows of
transactions older than every running one, so nothing can later appear behind a cursor.

Filters (stream types, event types) would leave a reader re-scanning the same unrelated rows
forever if ``next`` stopped at the last *matching* event. So when a page is not full, ``next``
moves on to the last event visible in the same snapshot, matching or not: every event up to it
is final (its transaction has ended) and every match among them is on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.store.event_store import Cursor, RecordedEvent

# One statement, so the page and the horizon come from the same snapshot.
_PAGE = """
WITH horizon AS MATERIALIZED (
    SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin
), page AS (
    SELECT e.position, e.tx_id, e.stream_id, e.version, e.event_id, e.type, e.schema_version,
           e.data, e.metadata, e.recorded_at
    FROM event e, horizon h
    WHERE (e.tx_id, e.position) > ($1, $2)
      AND e.tx_id < h.xmin
      AND ($4::text[] IS NULL OR e.stream_type = ANY($4::text[]))
      AND ($5::text[] IS NULL OR e.type = ANY($5::text[]))
    ORDER BY e.tx_id, e.position
    LIMIT $3
), tail AS (
    SELECT e.tx_id, e.position FROM event e, horizon h
    WHERE e.tx_id < h.xmin
    ORDER BY e.tx_id DESC, e.position DESC
    LIMIT 1
)
SELECT false AS is_tail, page.* FROM page
UNION ALL
SELECT true, tail.position, tail.tx_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM tail
ORDER BY is_tail, tx_id, position
"""


def event_document(e: RecordedEvent) -> dict[str, Any]:
    """Render a stored event as the feed, the SSE stream and webhooks show it."""
    return {
        "position": e.position, "cursor": e.cursor.encode(), "event_id": str(e.event_id),
        "stream_id": e.stream_id, "version": e.version, "type": e.type,
        "schema_version": e.schema_version, "data": e.data, "metadata": e.metadata,
        "recorded_at": e.recorded_at.isoformat(),
    }


@dataclass(frozen=True)
class FeedPage:
    """Events after a cursor, and where the next read starts."""

    events: list[RecordedEvent]
    next: Cursor


async def read_feed(
    conn: asyncpg.Connection,
    after: Cursor,
    limit: int,
    *,
    stream_types: Sequence[str] | None = None,
    event_types: Sequence[str] | None = None,
) -> FeedPage:
    """Return up to limit events after the cursor that pass the filters, and the next cursor."""
    rows = await conn.fetch(
        _PAGE, after.tx_id, after.position, limit,
        list(stream_types) if stream_types else None,
        list(event_types) if event_types else None,
    )
    events = [
        RecordedEvent(
            position=r["position"], tx_id=r["tx_id"], stream_id=r["stream_id"],
            version=r["version"], event_id=r["event_id"], type=r["type"],
            schema_version=r["schema_version"], data=r["data"], metadata=r["metadata"],
            recorded_at=r["recorded_at"],
        )
        for r in rows if not r["is_tail"]
    ]
    next_cursor = events[-1].cursor if events else after
    if len(events) < limit:
        tail = next((Cursor(r["tx_id"], r["position"]) for r in rows if r["is_tail"]), None)
        if tail is not None and tail > next_cursor:
            next_cursor = tail
    return FeedPage(events, next_cursor)


class CommitSignal:
    """Wake every waiter at once when this process commits events.

    Commits of other replicas are seen by the waiters' own short polls; this only saves the
    wait for commits made here.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()

    def fire(self) -> None:
        """Wake every waiter."""
        for waiter in self._waiters:
            waiter.set()

    @contextlib.contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """Return an event that is set on every commit, for the duration of the block."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            yield waiter
        finally:
            self._waiters.discard(waiter)
