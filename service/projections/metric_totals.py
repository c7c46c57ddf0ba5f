"""metric_totals: live KPI inputs per agent, team and month, fresh at commit, compacted behind.

Ingestion appends each batch's totals as delta rows (``metric_total_delta``,
``metric_arrival_delta``) in the statement that stores its samples (service/store/metrics.py),
so the views ``metric_totals`` and ``metric_arrivals`` (migration 0005: the compacted rows plus
the pending deltas, summed in one snapshot) include a batch as soon as its 200 is sent: there
is no lag to wait for. Totals are ``numeric`` (each sample rounded to the 15 significant digits
a double holds), so sums are exact whatever the order of folding.

The compactor folds deltas into ``metric_total`` and ``metric_arrival`` in the background so
reads stay a handful of rows: one statement per step deletes a slice of deltas and upserts
their sums, in one transaction, so a reader sees each delta exactly once, before or after.
One replica compacts at a time (a session advisory lock on a dedicated connection, as the
scheduler and the projection runner do); ingestion never waits for it (it only inserts).

``rebuild`` recomputes the compacted tables from ``metric_sample`` for the months still
stored (archived months keep their compacted rows: their samples are in the archive files).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

import asyncpg

from service.store import metric_partitions
from service.store.database import DATABASE_AWAY, Database

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 7215003
LOCK_NAME = "metric-totals:compactor"
#: How often the compacting replica makes the coming months' partitions.
PARTITIONS_EVERY_SECONDS = 3600.0
#: Deltas folded per statement: a step stays short whatever the backlog.
STEP_ROWS = 50_000

_FOLD_TOTALS = """
WITH moved AS (
    DELETE FROM metric_total_delta
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM metric_total_delta LIMIT $1))
    RETURNING team_id, period, agent_id, metric, total, observations, updated_at
), folded AS (
    INSERT INTO metric_total AS t
    SELECT team_id, period, agent_id, metric, sum(total), sum(observations), max(updated_at)
    FROM moved GROUP BY team_id, period, agent_id, metric
    ON CONFLICT (team_id, period, agent_id, metric) DO UPDATE
    SET total = t.total + excluded.total,
        observations = t.observations + excluded.observations,
        updated_at = greatest(t.updated_at, excluded.updated_at)
)
SELECT count(*) FROM moved
"""

_FOLD_ARRIVALS = """
WITH moved AS (
    DELETE FROM metric_arrival_delta
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM metric_arrival_delta LIMIT $1))
    RETURNING team_id, metric, source, last_received_at, last_occurred_at, samples
), folded AS (
    INSERT INTO metric_arrival AS a
    SELECT team_id, metric, source, max(last_received_at), max(last_occurred_at), sum(samples)
    FROM moved GROUP BY team_id, metric, source
    ON CONFLICT (team_id, metric, source) DO UPDATE
    SET last_received_at = greatest(a.last_received_at, excluded.last_received_at),
        last_occurred_at = greatest(a.last_occurred_at, excluded.last_occurred_at),
        samples = a.samples + excluded.samples
)
SELECT count(*) FROM moved
"""


async def compact(conn: asyncpg.Connection, rows: int = STEP_ROWS) -> int:
    """Fold up to ``rows`` pending deltas of each kind; return how many were folded."""
    async with conn.transaction():
        totals: int = await conn.fetchval(_FOLD_TOTALS, rows)
        arrivals: int = await conn.fetchval(_FOLD_ARRIVALS, rows)
    return totals + arrivals


async def compact_all(conn: asyncpg.Connection) -> int:
    """Fold every pending delta; return how many."""
    folded = 0
    while (step := await compact(conn)) > 0:
        folded += step
    return folded


_REBUILD = [
    # Only months whose samples are still stored; an archived month keeps its rows.
    """
    DELETE FROM metric_total t
    WHERE EXISTS (SELECT 1 FROM metric_sample s WHERE s.period = t.period)
    """,
    "DELETE FROM metric_total_delta WHERE period IN (SELECT DISTINCT period FROM metric_sample)",
    """
    INSERT INTO metric_total
    SELECT team_id, period, agent_id, metric, sum(value::numeric), count(*), max(received_at)
    FROM metric_sample GROUP BY team_id, period, agent_id, metric
    """,
]


async def rebuild(conn: asyncpg.Connection) -> None:
    """Recompute the totals of every stored month from the samples, in one transaction.

    Ingestion waits meanwhile (the lock), so no delta is counted twice or lost.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE metric_total_delta IN EXCLUSIVE MODE")
        for statement in _REBUILD:
            await conn.execute(statement)


class Compactor:
    """Fold deltas every ``interval_seconds`` on the replica holding the lock."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime],
                 interval_seconds: float = 1.0) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval_seconds
        self.holding = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="metric-totals:compactor")

    async def stop(self) -> None:
        """Stop the task; its connection closes and the lock goes with it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.db.connect_single()
                if not await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))",
                                           LOCK_NAMESPACE, LOCK_NAME):
                    await conn.close()
                    conn = None
                    await asyncio.sleep(self.interval * 5)
                    continue
                self.holding = True
                backoff = 0.5
                checked = -PARTITIONS_EVERY_SECONDS
                while True:
                    await compact_all(conn)
                    if time.monotonic() - checked > PARTITIONS_EVERY_SECONDS:
                        # Months keep coming: the next ones get their partition ahead.
                        await metric_partitions.ensure(conn, self.clock())
                        checked = time.monotonic()
                    await asyncio.sleep(self.interval)
            except asyncio.CancelledError:
                raise
            except DATABASE_AWAY as exc:
                log.warning("compactor lost the database (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.interval * 5)
            except asyncpg.UndefinedTableError:
                await asyncio.sleep(self.interval)  # not migrated yet
            except Exception:
                log.exception("metric totals compaction failed; retrying")
                await asyncio.sleep(self.interval)
            finally:
                self.holding = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
