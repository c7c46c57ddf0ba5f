"""Read-your-writes: wait until projections have applied everything committed so far."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.projections.base import Projection
from service.store.database import Database

# The newest committed event of the projection's types, whether or not an older transaction
# is still running (the projection itself only passes it once that one ends), and whether the
# live checkpoint has reached it.
_CAUGHT_UP = """
WITH target AS (
    SELECT tx_id, position FROM event
    WHERE $2::text[] IS NULL OR stream_type = ANY($2::text[])
    ORDER BY tx_id DESC, position DESC LIMIT 1
)
SELECT NOT EXISTS (SELECT 1 FROM target) OR EXISTS (
    SELECT 1 FROM projection_checkpoint c, target t
    WHERE c.name = $1 AND c.status = 'live' AND (c.tx_id, c.position) >= (t.tx_id, t.position)
)
"""


def applied_stream(projection: str, stream: str) -> str:
    """Return SQL that is true when the live projection (a parameter) has applied the last
    event of the stream (a parameter), or the stream has none: one probe of the stream's
    last event, usable inside another query."""
    return f"""COALESCE((
    SELECT c.tx_id IS NOT NULL AND (c.tx_id, c.position) >= (e.tx_id, e.position)
    FROM event e LEFT JOIN projection_checkpoint c ON c.name = {projection} AND c.status = 'live'
    WHERE e.stream_id = {stream} ORDER BY e.version DESC LIMIT 1), true)"""


_STREAM_CAUGHT_UP = f"SELECT {applied_stream('$1', '$2')}"


async def wait_caught_up(
    db: Database, projections: Sequence[Projection], timeout: float = 5.0,  # noqa: ASYNC109
    *, stream_id: str | None = None,
) -> bool:
    """Wait until each live projection has applied every event of its types committed now.

    With stream_id, wait only for that stream's events: a read about one month need not wait
    for the projection to take in every other team's evaluations first.
    Returns False when the timeout passes first (the caller decides whether stale is fine).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with db.connection() as conn:
        pending = list(projections)
        while pending:
            still = []
            for p in pending:
                if stream_id is not None:
                    caught_up = await conn.fetchval(_STREAM_CAUGHT_UP, p.name, stream_id)
                else:
                    types = list(p.stream_types) if p.stream_types else None
                    caught_up = await conn.fetchval(_CAUGHT_UP, p.name, types)
                if not caught_up:
                    still.append(p)
            pending = still
            if pending:
                if loop.time() > deadline:
                    return False
                await asyncio.sleep(0.005)
    return True
