"""Wait for read models to reach a write: the one way a read sees what was just written.

A command returns the global position it wrote (``AppendResult.position``); a read that must
show it waits until its read models have applied it (``wait(ctx, Directory(), at=position)``),
or, without a position, until they have applied everything committed so far, or only a
stream's events (``stream=``: a read about one month need not wait for every other team's).

The database says whether a projection is there (its live checkpoint); the runner of this
process wakes waiters when it commits a batch (``service.projections.progress``), and a short
poll covers a projection that another process advances. A wait that times out returns False:
the caller decides whether a stale answer will do.
"""

from __future__ import annotations

import asyncio

import asyncpg

from service.context import ServiceContext
from service.projections.base import Projection, admits_sql, past_checkpoint_sql

#: How long a read that may answer from slightly stale read models waits for them first
#: (``wait`` then returns False and the read goes ahead with what they hold).
READ_TIMEOUT = 2.0
#: The poll for a projection another process advances starts here and doubles to MAX_POLL.
FIRST_POLL = 0.005
MAX_POLL = 0.02

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

# No event of the projection's types at or before the position is past the live checkpoint.
_REACHED = """
SELECT EXISTS (
    SELECT 1 FROM projection_checkpoint c
    WHERE c.name = $1 AND c.status = 'live' AND NOT EXISTS (
        SELECT 1 FROM event e
        WHERE (e.tx_id, e.position) > (c.tx_id, c.position) AND e.position <= $3
          AND ($2::text[] IS NULL OR e.stream_type = ANY($2::text[]))))
"""

# For a projection that names the events it applies (``Projection.applies``: of the stream
# types $3, only the event types $4), which reads past the others without storing its
# checkpoint at once: only those events count. No event that counts (at or before the position
# $5) is past the live checkpoint. The newest of them would be a long probe back through the
# events it skips, so each of its stream types ($2, never NULL here) is probed forward from the
# checkpoint on its own index range, which the runner keeps within a batch of skipped events.
_ADMITS = admits_sql("$3", "$4")
_APPLIED_ALL = f"""
SELECT CASE WHEN c.name IS NULL THEN NOT EXISTS (
           SELECT 1 FROM event e WHERE e.stream_type = ANY($2::text[])
             AND {_ADMITS})
       ELSE NOT EXISTS ({past_checkpoint_sql("$2", "c.tx_id", "c.position", _ADMITS,
                                             first=True)}) END
FROM (VALUES (1)) AS one (x)
LEFT JOIN projection_checkpoint c ON c.name = $1 AND c.status = 'live'
"""  # noqa: S608
_APPLIED_UP_TO = f"""
SELECT EXISTS (
    SELECT 1 FROM projection_checkpoint c
    WHERE c.name = $1 AND c.status = 'live'
      AND NOT EXISTS ({past_checkpoint_sql("$2", "c.tx_id", "c.position", _ADMITS,
                                           "AND e.position <= $5", first=True)}))
"""  # noqa: S608


def applied_stream(projection: str, stream: str) -> str:
    """Return SQL that is true when the live projection (a parameter) has applied the last
    event of the stream (a parameter), or the stream has none: one probe of the stream's
    last event, usable inside another query. Both arguments are placeholders ($n), never
    values. Only for a projection that applies every event it reads (``applies`` None)."""
    return f"""COALESCE((
    SELECT c.tx_id IS NOT NULL AND (c.tx_id, c.position) >= (e.tx_id, e.position)
    FROM event e LEFT JOIN projection_checkpoint c ON c.name = {projection} AND c.status = 'live'
    WHERE e.stream_id = {stream} ORDER BY e.version DESC LIMIT 1), true)"""  # noqa: S608


_STREAM_CAUGHT_UP = f"SELECT {applied_stream('$1', '$2')}"


async def _reached(conn: asyncpg.Connection, projection: Projection, at: int | None,
                   stream: str | None) -> bool:
    types = list(projection.stream_types) if projection.stream_types else None
    only = projection.applies
    if only is not None and types is not None:
        # A wait for one stream's events waits for every event that counts: still correct.
        counts = only.parameters()
        if at is not None:
            return bool(await conn.fetchval(_APPLIED_UP_TO, projection.name, types, *counts, at))
        return bool(await conn.fetchval(_APPLIED_ALL, projection.name, types, *counts))
    if at is not None:
        return bool(await conn.fetchval(_REACHED, projection.name, types, at))
    if stream is not None:
        return bool(await conn.fetchval(_STREAM_CAUGHT_UP, projection.name, stream))
    return bool(await conn.fetchval(_CAUGHT_UP, projection.name, types))


async def wait(
    ctx: ServiceContext, *projections: Projection, at: int | None = None,
    stream: str | None = None, timeout: float = 5.0,  # noqa: ASYNC109
) -> bool:
    """Wait until each live projection has applied the event at global position ``at`` and
    every earlier one of its types (without ``at``: every event of its types committed now;
    with ``stream``: that stream's events). Return False when ``timeout`` seconds pass first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    progress = ctx.runner.progress if ctx.runner is not None else None
    pending = list(projections)
    poll = FIRST_POLL
    while True:
        async with ctx.db.connection() as conn:
            pending = [p for p in pending if not await _reached(conn, p, at, stream)]
        if not pending:
            return True
        left = deadline - loop.time()
        if left <= 0:
            return False
        if progress is not None:
            await progress.changed(pending, min(poll, left))
        else:
            await asyncio.sleep(min(poll, left))
        poll = min(poll * 2, MAX_POLL)
