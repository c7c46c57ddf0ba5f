"""kpi_values: the live KPI read model, every KPI of every scheme in long form.

Metric samples are not events (they go to ``metric_sample`` and their totals to
``metric_total``/``metric_total_delta``, service/projections/metric_totals.py), so this read
model is not fed by the projection runner: a loop on one replica at a time (``LockedLoop``, as
the compactor) finds the (team, agent, month) totals counted since its last pass, and for each
agent and each team touched recomputes every KPI with ``service/domain/live_kpis.py``, the
rule the API's live KPIs follow. No formula is written in SQL: the SQL here sums metric
totals, as ``metric_totals`` does, and the reporting views select the rows as they are.

Rows: per agent and month (over every team the agent's samples counted for; ``team_id`` is
the team whose scheme, position and targets judged them), and per team and month (``agent_id``
''). A scheme that adds a KPI adds rows, never columns.

Finding what changed: ``metric_total (updated_at)`` and the few pending deltas give the keys
counted since the watermark (minus a margin, for transactions that commit out of clock order);
of those, only keys whose sample count differs from ``kpi_value_source`` are recomputed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.domain.kpis import TeamTarget
from service.domain.live_kpis import declared_totals, live_kpis
from service.domain.scheme import Scheme
from service.store.database import Database
from service.store.locked_loop import LockedLoop

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 7215003
LOCK_NAME = "kpi-values:refresher"
#: Rows counted this long before the watermark are looked at again: a batch whose clock read
#: came before another's can commit after it.
MARGIN = timedelta(minutes=1)
#: The scheme that measures a team's month and the team's own targets (None: no such team).
MonthContext = Callable[[str, str], Awaitable[tuple[Scheme, Mapping[str, TeamTarget]] | None]]

_CHANGED = """
WITH recent AS (
    SELECT team_id, agent_id, period FROM metric_total
    WHERE $1::timestamptz IS NULL OR updated_at >= $1
    UNION
    SELECT team_id, agent_id, period FROM metric_total_delta
    WHERE $1::timestamptz IS NULL OR updated_at >= $1
), counted AS (
    SELECT r.team_id, r.agent_id, r.period, sum(x.observations)::bigint AS samples,
           max(x.updated_at) AS updated_at
    FROM recent r CROSS JOIN LATERAL (
        SELECT t.observations, t.updated_at FROM metric_total t
        WHERE t.team_id = r.team_id AND t.period = r.period AND t.agent_id = r.agent_id
        UNION ALL
        SELECT d.observations, d.updated_at FROM metric_total_delta d
        WHERE d.agent_id = r.agent_id AND d.period = r.period AND d.team_id = r.team_id
    ) x
    GROUP BY r.team_id, r.agent_id, r.period
)
SELECT c.team_id, c.agent_id, c.period, c.samples, c.updated_at FROM counted c
LEFT JOIN kpi_value_source s
       ON s.team_id = c.team_id AND s.agent_id = c.agent_id AND s.period = c.period
WHERE s.samples IS DISTINCT FROM c.samples
"""

#: The totals of the agents (over all their teams) or of the teams (over all their agents)
#: given, per metric; ``{key}`` is agent_id or team_id (code, never input).
_TOTALS = """
SELECT key, period, metric, sum(total)::float8 AS total,
       sum(observations)::bigint AS observations, max(updated_at) AS updated_at,
       array_agg(DISTINCT team ORDER BY team) AS teams
FROM (
    SELECT {key} AS key, period, team_id AS team, metric, total, observations, updated_at
    FROM metric_total
    WHERE ({key}, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))
    UNION ALL
    SELECT {key} AS key, period, team_id AS team, metric, total, observations, updated_at
    FROM metric_total_delta
    WHERE ({key}, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))
) x
GROUP BY key, period, metric
"""

_COLUMNS = ["agent_id", "team_id", "period", "kpi", "value", "target", "floor", "attainment",
            "target_source", "unit", "direction", "label", "formula", "samples", "updated_at"]


class _Month:
    """What one key's KPIs are computed from: per metric totals and observations."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.observations: dict[str, int] = {}
        self.updated_at: datetime | None = None
        self.teams: set[str] = set()

    def add(self, row: asyncpg.Record) -> None:
        self.totals[row["metric"]] = row["total"]
        self.observations[row["metric"]] = row["observations"]
        if self.updated_at is None or row["updated_at"] > self.updated_at:
            self.updated_at = row["updated_at"]
        self.teams.update(row["teams"])


async def _months(conn: asyncpg.Connection, key: str, pairs: Sequence[tuple[str, str]]
                  ) -> dict[tuple[str, str], _Month]:
    found: dict[tuple[str, str], _Month] = {}
    rows = await conn.fetch(_TOTALS.format(key=key), [k for k, _ in pairs],
                            [p for _, p in pairs])
    for row in rows:
        found.setdefault((row["key"], row["period"]), _Month()).add(row)
    return found


class KpiValues(LockedLoop):
    """Recompute the live KPIs of what was counted since the last pass."""

    quiet = (asyncpg.UndefinedTableError,)  # not migrated yet

    def __init__(self, db: Database, month_context: MonthContext, *,
                 interval_seconds: float = 1.0) -> None:
        super().__init__(db, name="live KPI values", lock=(LOCK_NAMESPACE, LOCK_NAME),
                         interval_seconds=interval_seconds,
                         standby_seconds=interval_seconds * 5)
        self.month_context = month_context

    async def work(self, conn: asyncpg.Connection) -> None:
        """Do one pass."""
        await refresh(conn, self.month_context)


async def refresh(conn: asyncpg.Connection, month_context: MonthContext) -> int:
    """Recompute the KPIs of every agent and team whose totals changed; return how many keys
    (team, agent, month) had changed."""
    watermark = await conn.fetchval("SELECT watermark FROM kpi_value_state WHERE id = 1")
    changed = await conn.fetch(_CHANGED, watermark - MARGIN if watermark else None)
    if not changed:
        return 0
    agent_keys = sorted({(r["agent_id"], r["period"]) for r in changed})
    team_keys = sorted({(r["team_id"], r["period"]) for r in changed})
    agents = await _months(conn, "agent_id", agent_keys)
    teams = await _months(conn, "team_id", team_keys)
    directory = {r["agent_id"]: (r["team_id"], r["position"]) for r in await conn.fetch(
        "SELECT agent_id, team_id, position FROM agents WHERE agent_id = ANY($1::text[])",
        [a for a, _ in agent_keys])}
    contexts: dict[tuple[str, str], tuple[Scheme, Mapping[str, TeamTarget]] | None] = {}

    async def context(team_id: str, period: str
                      ) -> tuple[Scheme, Mapping[str, TeamTarget]] | None:
        if (team_id, period) not in contexts:
            contexts[(team_id, period)] = await month_context(team_id, period)
        return contexts[(team_id, period)]

    records: list[tuple[Any, ...]] = []

    async def add(agent_id: str, team_id: str, period: str, position: str | None,
                  month: _Month) -> None:
        found = await context(team_id, period)
        if found is None:
            return  # a team that no longer exists: nothing measures it
        scheme, targets = found
        totals, observations = declared_totals(scheme, month.totals, month.observations)
        samples = sum(observations.values())
        for k in live_kpis(scheme, position, targets, totals, observations):
            records.append((agent_id, team_id, period, k.name, k.value, k.target, k.floor,
                            k.attainment, k.target_source, k.unit, k.direction, k.label,
                            k.formula, samples, month.updated_at))

    for (agent_id, period), month in agents.items():
        team_id, position = directory.get(agent_id, (min(month.teams), None))
        await add(agent_id, team_id, period, position, month)
    for (team_id, period), month in teams.items():
        await add("", team_id, period, None, month)
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM kpi_values WHERE agent_id <> '' AND (agent_id, period) IN"
            " (SELECT * FROM unnest($1::text[], $2::text[]))",
            [a for a, _ in agent_keys], [p for _, p in agent_keys])
        await conn.execute(
            "DELETE FROM kpi_values WHERE agent_id = '' AND (team_id, period) IN"
            " (SELECT * FROM unnest($1::text[], $2::text[]))",
            [t for t, _ in team_keys], [p for _, p in team_keys])
        await conn.copy_records_to_table("kpi_values", records=records, columns=_COLUMNS)
        await conn.executemany(
            "INSERT INTO kpi_value_source VALUES ($1, $2, $3, $4) ON CONFLICT"
            " (team_id, agent_id, period) DO UPDATE SET samples = $4",
            [(r["team_id"], r["agent_id"], r["period"], r["samples"]) for r in changed])
        newest = max(r["updated_at"] for r in changed)
        await conn.execute(
            "UPDATE kpi_value_state SET watermark = greatest(watermark, $1) WHERE id = 1",
            newest)
    return len(changed)
