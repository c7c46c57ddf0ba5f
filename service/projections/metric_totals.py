"""metric_totals: live KPI inputs per agent, team and month, and when each feed last arrived.

This read model follows the ``metric_sample`` table rather than the event log (samples are not
events: see service/store/metrics.py), but it is run like every projection: one process holds
its lease, each batch's upserts and its checkpoint commit together, it is rebuilt from zero
beside the live tables and swapped in (``csperf projections rebuild metric_totals``), and
readers use the views ``metric_totals`` and ``metric_arrivals``.

One statement per batch reads the next samples in (transaction id, id) order below the
running-transaction horizon, so none is ever skipped, and aggregates them in the database:
no sample travels to Python. Totals are ``numeric`` (each sample rounded to the 15 significant
digits a double holds), so they are exact sums and a rebuild, whatever its batches, equals the
live model to the last digit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from service import observability
from service.projections import checkpoints
from service.projections.base import Projection, Tables
from service.projections.checkpoints import Generation
from service.projections.runner import ProjectionFailed, Worker
from service.store.database import UNAVAILABLE_ERRORS, Database
from service.store.event_store import Cursor, RecordedEvent

log = logging.getLogger(__name__)

NAME = "metric_totals"
#: Samples per live step: large, because a step costs one statement whatever its size.
LIVE_SAMPLES = 20_000
BUILD_SAMPLES = 50_000

_STEP = """
WITH batch AS MATERIALIZED (
    SELECT tx_id, id, source, agent_id, team_id, period, metric, value, occurred_at,
           received_at
    FROM metric_sample
    WHERE (tx_id, id) > ($1, $2)
      AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY tx_id, id
    LIMIT $3
), totals AS (
    INSERT INTO {totals} AS t (agent_id, team_id, period, metric, total, observations,
                               updated_at)
    SELECT agent_id, team_id, period, metric, sum(value::numeric), count(*), now()
    FROM batch GROUP BY agent_id, team_id, period, metric
    ON CONFLICT (team_id, period, agent_id, metric) DO UPDATE
    SET total = t.total + excluded.total,
        observations = t.observations + excluded.observations,
        updated_at = excluded.updated_at
), arrivals AS (
    INSERT INTO {arrivals} AS a (team_id, metric, source, last_received_at, last_occurred_at,
                                 samples)
    SELECT team_id, metric, source, max(received_at), max(occurred_at), count(*)
    FROM batch GROUP BY team_id, metric, source
    ON CONFLICT (team_id, metric, source) DO UPDATE
    SET last_received_at = greatest(a.last_received_at, excluded.last_received_at),
        last_occurred_at = greatest(a.last_occurred_at, excluded.last_occurred_at),
        samples = a.samples + excluded.samples
)
SELECT tx_id, id, (SELECT count(*) FROM batch) AS n
FROM batch ORDER BY tx_id DESC, id DESC LIMIT 1
"""


class MetricTotals(Projection):
    """Sums and counts of every raw metric per (agent, team, period), and feed arrivals."""

    name = NAME
    version = 1
    #: Reads no events: SampleWorker feeds it from metric_sample.
    stream_types = ()
    tables = {
        # The contract read by service/queries/metrics_source.py for scoring.
        "metric_totals": """(
            agent_id     text NOT NULL,
            team_id      text NOT NULL,
            period       text NOT NULL,
            metric       text NOT NULL,
            total        numeric NOT NULL,
            observations bigint NOT NULL,
            updated_at   timestamptz NOT NULL,
            PRIMARY KEY (team_id, period, agent_id, metric),
            UNIQUE (agent_id, period, team_id, metric)
        )""",
        # Feed monitoring: when each source last sent each metric for each team.
        "metric_arrivals": """(
            team_id          text NOT NULL,
            metric           text NOT NULL,
            source           text NOT NULL,
            last_received_at timestamptz NOT NULL,
            last_occurred_at timestamptz NOT NULL,
            samples          bigint NOT NULL,
            PRIMARY KEY (team_id, metric, source)
        )""",
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Ignore events; samples are applied by SampleWorker.step."""

    async def count_source(self, conn: asyncpg.Connection) -> int:
        """Count the stored samples (what `csperf projections status` compares with)."""
        count: int = await conn.fetchval("SELECT count(*) FROM metric_sample")
        return count

    def make_worker(self, conn: asyncpg.Connection) -> Worker:
        """Return the worker that reads samples instead of events."""
        return SampleWorker(conn, self)


class SampleWorker(Worker):
    """Advance MetricTotals from metric_sample, reusing the runner's generations and swaps."""

    async def step(self, generation: Generation, limit: int) -> int:
        """Aggregate the next samples into a generation's tables; return how many."""
        tables = self.projection.table_names(generation.generation)
        sql = _STEP.format(totals=tables["metric_totals"], arrivals=tables["metric_arrivals"])
        try:
            async with self.conn.transaction():
                row = await self.conn.fetchrow(
                    sql, generation.cursor.tx_id, generation.cursor.position, limit
                )
                if row is None:
                    return 0
                await checkpoints.advance(
                    self.conn, generation, Cursor(row["tx_id"], row["id"]), row["n"]
                )
        except UNAVAILABLE_ERRORS:
            raise
        except Exception as exc:
            # Set-based: no single sample to blame. Stop here and say so, as projections do.
            await checkpoints.record_failure(
                self.conn, generation, generation.cursor.position, repr(exc)
            )
            observability.PROJECTION_FAILED.labels(self.projection.name).set(1)
            log.exception("projection %s stopped after sample %s", self.projection.name,
                          generation.cursor.position)
            raise ProjectionFailed(self.projection.name) from exc
        observability.PROJECTION_FAILED.labels(self.projection.name).set(0)
        observability.PROJECTED_EVENTS.labels(self.projection.name).inc(row["n"])
        if generation.status == "live":
            observability.PROJECTION_POSITION.labels(self.projection.name).set(row["id"])
        n: int = row["n"]
        return n

    async def run_once(self) -> int:
        """Advance the live generation one batch and any rebuild one batch."""
        live, building = await self.ensure_live()
        read = await self.step(live, LIVE_SAMPLES)
        if building is not None:
            built = await self.step(building, BUILD_SAMPLES)
            if built < BUILD_SAMPLES:
                await self.finish_build(building)
            read += built
        return read


_NEWEST = "SELECT tx_id, id FROM metric_sample ORDER BY tx_id DESC, id DESC LIMIT 1"
_REACHED = """
SELECT EXISTS (
    SELECT 1 FROM projection_checkpoint
    WHERE name = $1 AND status = 'live' AND (tx_id, position) >= ($2, $3)
), EXISTS (SELECT 1 FROM projection_checkpoint WHERE name = $1 AND status = 'live')
"""


async def caught_up(conn: asyncpg.Connection, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Wait until the live KPI read model holds every sample committed now.

    Returns False when the timeout passes first, or at once when no process has ever run the
    read model (nothing to wait for).
    """
    newest = await conn.fetchrow(_NEWEST)
    if newest is None:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        reached, running = await conn.fetchrow(_REACHED, NAME, newest["tx_id"], newest["id"])
        if reached:
            return True
        if not running or loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)


async def wait_caught_up(db: Database, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Wait on a pooled connection until the KPI read model holds every committed sample."""
    async with db.connection() as conn:
        return await caught_up(conn, timeout)
