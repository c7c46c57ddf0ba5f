"""metric_totals: live KPI inputs per agent, team and month, fresh at commit, compacted behind.

Ingestion appends each batch's totals as delta rows (``metric_total_delta``,
``metric_arrival_delta``) in the statement that stores its samples (service/store/metrics.py),
so the views ``metric_totals`` and ``metric_arrivals`` (migration 0005: the compacted rows plus
the pending deltas, summed in one snapshot) include a batch as soon as its 200 is sent: there
is no lag to wait for. Totals are ``numeric`` (each sample rounded to the 15 significant digits
a double holds), so sums are exact whatever the order of folding.

Deltas are folded into ``metric_total`` and ``metric_arrival`` in the background so reads
stay a handful of rows (``compact_pass``, which marks the keys it folded in ``kpi_dirty``):
one statement per step deletes a slice of deltas and upserts their sums, in one transaction,
so a reader sees each delta exactly once, before or after. The live KPI read model's loop
(service/projections/kpi_values.py) folds at the start of each of its passes, then recomputes
what the fold marked: one replica at a time (its session advisory lock), at its pace, which
steps back when passes are slow. Ingestion never waits for a fold (it only inserts).

``rebuild`` recomputes the compacted tables from ``metric_sample`` for the months still
stored (archived months keep their compacted rows: their samples are in the archive files).
"""

from __future__ import annotations

import asyncpg


def current_rows(columns: str, where: str) -> str:
    """Return SQL for the totals' rows as they stand (what the view ``metric_totals`` sums):
    the compacted rows and the pending deltas, of ``columns`` where ``where`` holds (both SQL,
    code, never values). For a reader that sums them its own way (the view sums every team's
    rows, then the teams), with its condition on each side rather than after the union."""
    return (f"SELECT {columns} FROM metric_total WHERE {where}"
            f" UNION ALL SELECT {columns} FROM metric_total_delta WHERE {where}")

#: Deltas folded per statement: a step stays short whatever the backlog.
STEP_ROWS = 50_000

# A step's rows are the table's first ``$1`` by row address (ctid): every row up to the
# address of the last of them, which a TID range scan reads from the table's start. Not
# ``ctid = ANY(ARRAY(...))``: planned generically, that array became a filter searched once per
# row of a sequential scan (quadratic in the step). Nor a join on the addresses: it scanned
# the table twice and hashed every row of it (the compactor was 14 % of PostgreSQL's CPU
# during the ingestion benchmark, that join a quarter of it, perf). The addresses are sorted
# rather than taken in the order a scan meets them, which need not be the table's (a scan may
# start where a concurrent one is, or run in parallel).

_FOLD_TOTALS = """
WITH moved AS (
    DELETE FROM metric_total_delta
    WHERE ctid <= (SELECT max(ctid) FROM (SELECT ctid FROM metric_total_delta ORDER BY ctid
                   LIMIT $1) s)
    RETURNING team_id, period, agent_id, metric, total, observations, updated_at
), folded AS (
    INSERT INTO metric_total AS t
    SELECT team_id, period, agent_id, metric, sum(total), sum(observations), max(updated_at)
    FROM moved GROUP BY team_id, period, agent_id, metric
    ON CONFLICT (team_id, period, agent_id, metric) DO UPDATE
    SET total = t.total + excluded.total,
        observations = t.observations + excluded.observations,
        updated_at = greatest(t.updated_at, excluded.updated_at)
), dirty AS (
    -- the live KPIs of these keys are out of date (service/projections/kpi_values.py)
    INSERT INTO kpi_dirty SELECT DISTINCT team_id, agent_id, period FROM moved
)
SELECT count(*) FROM moved
"""

_FOLD_ARRIVALS = """
WITH moved AS (
    DELETE FROM metric_arrival_delta
    WHERE ctid <= (SELECT max(ctid) FROM (SELECT ctid FROM metric_arrival_delta ORDER BY ctid
                   LIMIT $1) s)
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


async def _step(conn: asyncpg.Connection, rows: int) -> tuple[int, int]:
    """Fold up to ``rows`` pending deltas of each kind; return how many of each."""
    async with conn.transaction():
        totals: int = await conn.fetchval(_FOLD_TOTALS, rows)
        arrivals: int = await conn.fetchval(_FOLD_ARRIVALS, rows)
    return totals, arrivals


async def compact(conn: asyncpg.Connection, rows: int = STEP_ROWS) -> int:
    """Fold up to ``rows`` pending deltas of each kind; return how many were folded."""
    return sum(await _step(conn, rows))


async def compact_pass(conn: asyncpg.Connection, rows: int = STEP_ROWS) -> int:
    """Fold what is pending, a step of ``rows`` at a time, until a step finds fewer than
    ``rows`` of each kind; return how many were folded.

    It does not chase what ingestion appends meanwhile, as folding until a step found nothing
    did: under steady ingestion each step found the deltas of the batch or two committed
    during the step before, so a pass never ended, and every step paid a fold's fixed cost for
    a batch's rows (93 steps in a 30 s benchmark run, 5.5 s of PostgreSQL's time, more than
    the KPI read model and the dashboard's reads together; pg_stat_statements). Rows appended
    during a pass wait for the next one, which reads sum with the rest."""
    folded = 0
    while True:
        totals, arrivals = await _step(conn, rows)
        folded += totals + arrivals
        if totals < rows and arrivals < rows:
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
    "INSERT INTO kpi_dirty SELECT DISTINCT team_id, agent_id, period FROM metric_total",
]


async def rebuild(conn: asyncpg.Connection) -> None:
    """Recompute the totals of every stored month from the samples, in one transaction.

    Ingestion waits meanwhile (the lock), so no delta is counted twice or lost.
    """
    async with conn.transaction():
        await conn.execute("LOCK TABLE metric_total_delta IN EXCLUSIVE MODE")
        for statement in _REBUILD:
            await conn.execute(statement)
