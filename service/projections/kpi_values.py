"""kpi_values: the live KPI read model, every KPI of every scheme in long form.

Metric samples are not events (they go to ``metric_sample`` and their totals to
``metric_total``/``metric_total_delta``, service/projections/metric_totals.py), so this read
model is not fed by the projection runner: a loop on one replica at a time (``LockedLoop``, as
the scheduler) folds the pending totals and finds the (team, agent, month) totals counted since
its last pass, and for each agent and each team touched recomputes every KPI with
``service/domain/live_kpis.py``, the rule the API's live KPIs follow. No formula is written
in SQL: the SQL here sums metric totals, as ``metric_totals`` does, and the reporting views
select the rows as they are.

Rows: per agent and month (over every team the agent's samples counted for; ``team_id`` is
the team whose scheme, position and targets judged them), and per team and month (``agent_id``
''). A scheme that adds a KPI adds rows, never columns.

What changed: a pass first folds the pending deltas (``metric_totals.compact_pass``), which
lists the keys of the deltas it folds in ``kpi_dirty`` in its folding statement; it then takes
the listed keys out and recomputes the agents and teams they name, in one transaction. No
clock is involved, so a batch that commits late is never skipped: its keys are listed when it
is folded. What measures a month can change without a sample (a team's own targets, its
scheme, the version its cycle pins, an agent's position): every ``SWEEP_SECONDS`` the keys of
this month and the last are listed again, so such a change reaches the rows within minutes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.kpis import TeamTarget
from service.domain.live_kpis import declared_totals, live_values, measured_kpis
from service.domain.periods import previous_period
from service.domain.scheme import KpiDef, Scheme
from service.projections.metric_totals import compact_pass, current_rows
from service.store.database import Database
from service.store.locked_loop import LockedLoop

log = logging.getLogger(__name__)

LOCK_NAMESPACE = 7215003
LOCK_NAME = "kpi-values:refresher"
#: How often the months still running are recomputed whatever was counted.
SWEEP_SECONDS = 300.0
#: The most of the time the refresher's passes may take (``pause_after``): a tenth of a core,
#: while that asks a pause of at most ``LONGEST_PAUSE`` seconds.
SHARE = 0.1
LONGEST_PAUSE = 10.0
#: The scheme that measures a team's month and the team's own targets (None: no such team).
MonthContext = Callable[[str, str], Awaitable[tuple[Scheme, Mapping[str, TeamTarget]] | None]]

#: Take the listed keys out (a key listed twice comes back once).
_TAKE = """
WITH taken AS (DELETE FROM kpi_dirty RETURNING team_id, agent_id, period)
SELECT DISTINCT team_id, agent_id, period FROM taken
"""

#: The totals of the agents (over all their teams) or of the teams (over all their agents)
#: given, per metric; ``{key}`` is agent_id or team_id and ``{rows}`` their current rows
#: (``metric_totals.current_rows``): code, never input.
_TOTALS = """
SELECT key, period, metric, sum(total)::float8 AS total,
       sum(observations)::bigint AS observations, max(updated_at) AS updated_at,
       array_agg(DISTINCT team ORDER BY team) AS teams
FROM ({rows}) x
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
    current = current_rows(
        f"{key} AS key, period, team_id AS team, metric, total, observations, updated_at",
        f"({key}, period) IN (SELECT * FROM unnest($1::text[], $2::text[]))")
    rows = await conn.fetch(_TOTALS.format(key=key, rows=current), [k for k, _ in pairs],
                            [p for _, p in pairs])
    for row in rows:
        found.setdefault((row["key"], row["period"]), _Month()).add(row)
    return found


class KpiValues(LockedLoop):
    """Fold the pending totals and recompute the live KPIs of what was counted since the last
    pass; now and then, those of the months still running whatever was counted (see
    ``SWEEP_SECONDS``).

    The fold is this loop's, at its pace, rather than a compactor's of its own every 2 seconds:
    reads sum the pending deltas, so the fold only bounds how many there are, and what it marks
    is read by the next pass here; folding every 2 seconds between passes 2 to 10 seconds apart
    paid each fold's fixed cost (updating every total touched since the last, about 60 ms for
    the ingestion benchmark's 4,400) several times for one refresh. Folding just before the
    refresh also gives the refresh compacted rows to sum instead of seconds of deltas.

    A pass every 2 seconds: under steady ingestion every agent is touched every second, and
    a pass recomputes each agent once however many batches touched them, so a longer interval
    is less work taken from ingestion (measured: BENCHMARKS.md, suite kpis). When a pass takes
    longer than a ninth of that (a busy machine, a large centre), the pause after it is nine
    times the pass, up to 10 seconds (``SHARE``, ``LONGEST_PAUSE``: passes of up to 1.1 s take
    at most a tenth of the time, so of a core; the rows never lag by more than 10 seconds and
    a pass, its fold included), and 2 seconds again once the machine is quiet. The API's live
    KPIs never lag (they sum the totals as they stand).
    """

    quiet = (asyncpg.UndefinedTableError,)  # not migrated yet

    def __init__(self, db: Database, month_context: MonthContext, *,
                 clock: Callable[[], datetime], interval_seconds: float = 2.0) -> None:
        super().__init__(db, name="live KPI values", lock=(LOCK_NAMESPACE, LOCK_NAME),
                         interval_seconds=interval_seconds,
                         standby_seconds=interval_seconds * 5, share=SHARE,
                         longest_seconds=LONGEST_PAUSE)
        self.month_context = month_context
        self.clock = clock
        self._swept = -SWEEP_SECONDS

    async def work(self, conn: asyncpg.Connection) -> None:
        """Do one pass: fold, then recompute what changed."""
        await compact_pass(conn)
        if time.monotonic() - self._swept > SWEEP_SECONDS:
            await sweep(conn, self.clock())
            self._swept = time.monotonic()
        await refresh(conn, self.month_context)


async def sweep(conn: asyncpg.Connection, now: datetime) -> None:
    """List every key of this month and the last (UTC) as changed."""
    since = previous_period(f"{now.year:04d}-{now.month:02d}")
    await conn.execute("INSERT INTO kpi_dirty SELECT DISTINCT team_id, agent_id, period"
                       " FROM metric_total WHERE period >= $1", since)


async def refresh(conn: asyncpg.Connection, month_context: MonthContext) -> int:
    """Recompute the KPIs of every agent and team whose totals changed; return how many keys
    (team, agent, month) had changed."""
    async with conn.transaction():
        changed = await conn.fetch(_TAKE)
        if not changed:
            return 0
        agent_keys = sorted({(r["agent_id"], r["period"]) for r in changed})
        team_keys = sorted({(r["team_id"], r["period"]) for r in changed})
        records = await _records(conn, month_context, agent_keys, team_keys)
        await conn.execute(
            "DELETE FROM kpi_values WHERE agent_id <> '' AND (agent_id, period) IN"
            " (SELECT * FROM unnest($1::text[], $2::text[]))",
            [a for a, _ in agent_keys], [p for _, p in agent_keys])
        await conn.execute(
            "DELETE FROM kpi_values WHERE agent_id = '' AND (team_id, period) IN"
            " (SELECT * FROM unnest($1::text[], $2::text[]))",
            [t for t, _ in team_keys], [p for _, p in team_keys])
        await conn.copy_records_to_table("kpi_values", records=records, columns=_COLUMNS)
    return len(changed)


async def _records(conn: asyncpg.Connection, month_context: MonthContext,
                   agent_keys: Sequence[tuple[str, str]], team_keys: Sequence[tuple[str, str]]
                   ) -> list[tuple[Any, ...]]:
    """Return the kpi_values rows of the agents and teams given."""
    agents = await _months(conn, "agent_id", agent_keys)
    teams = await _months(conn, "team_id", team_keys)
    directory = {r["agent_id"]: (r["team_id"], r["position"]) for r in await conn.fetch(
        "SELECT agent_id, team_id, position FROM agents WHERE agent_id = ANY($1::text[])",
        [a for a, _ in agent_keys])}
    contexts: dict[tuple[str, str], tuple[Scheme, Mapping[str, TeamTarget]] | None] = {}
    measured: dict[tuple[str, str, str | None], list[tuple[KpiDef, str]]] = {}
    records: list[tuple[Any, ...]] = []

    async def add(agent_id: str, team_id: str, period: str, position: str | None,
                  month: _Month) -> None:
        if (team_id, period) not in contexts:
            contexts[(team_id, period)] = await month_context(team_id, period)
        found = contexts[(team_id, period)]
        if found is None:
            return  # a team that no longer exists: nothing measures it
        scheme, targets = found
        # Every agent of a position shares its KPI definitions: worked out once per pass.
        if (team_id, period, position) not in measured:
            measured[(team_id, period, position)] = measured_kpis(scheme, position, targets)
        totals, observations = declared_totals(scheme, month.totals, month.observations)
        samples = sum(observations.values())
        for k in live_values(measured[(team_id, period, position)], totals, observations):
            records.append((agent_id, team_id, period, k.name, k.value, k.target, k.floor,
                            k.attainment, k.target_source, k.unit, k.direction, k.label,
                            k.formula, samples, month.updated_at))

    for (agent_id, period), month in agents.items():
        team_id, position = directory.get(agent_id, (min(month.teams), None))
        await add(agent_id, team_id, period, position, month)
    for (team_id, period), month in teams.items():
        await add("", team_id, period, None, month)
    return records
