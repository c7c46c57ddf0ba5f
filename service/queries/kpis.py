"""Live KPIs of an agent or a team for a month, and when each team feed last arrived."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import directory as d
from service.domain import scheme_history as h
from service.domain.errors import Conflict, NotFound
from service.domain.kpis import TeamTarget
from service.domain.live_kpis import live_kpis
from service.domain.scheme import Scheme
from service.queries import schemes
from service.queries.cycles import month_scheme, opening_scheme
from service.queries.directory import get_agent, get_team
from service.queries.streams import Reading, held
from service.store.event_store import COLUMNS, by_stream, streams_after


def _document(rows: Sequence[asyncpg.Record], scheme: Scheme, position: str | None
              ) -> dict[str, Any]:
    names = [m.name for m in scheme.metrics]
    totals = dict.fromkeys(names, 0.0)
    observations = dict.fromkeys(names, 0)
    arrived: dict[str, float] = {}
    updated: datetime | None = None
    for row in rows:
        if row["metric"] not in totals:
            continue
        totals[row["metric"]] = arrived[row["metric"]] = float(row["total"])
        observations[row["metric"]] = int(row["observations"])
        if updated is None or row["updated_at"] > updated:
            updated = row["updated_at"]
    # The KPIs of the agent's position (the scheme's own for a team), by the scheme's formulas.
    return {
        "kpis": {k.name: k.value for k in live_kpis(scheme, position, {}, arrived,
                                                     observations)},
        "totals": totals,
        "observations": observations,
        "samples": sum(observations.values()),
        "updated_at": updated,
    }


async def _rows(conn: asyncpg.Connection, sql: str, *args: object) -> list[asyncpg.Record]:
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    except asyncpg.UndefinedTableError:
        return []  # the read model has not started yet: no data, as for a quiet month
    return rows


@dataclass(frozen=True, slots=True)
class MonthRead:
    """An agent's month as ``agent_and_team`` read it with their streams: the ``_AGENT_MONTH``
    rows of ``period`` (the month of the team as this process held it) and the latest version
    in force of the team's scheme."""

    period: str
    rows: list[asyncpg.Record]
    latest: Scheme | None


async def agent_and_team(ctx: ServiceContext, agent_id: str, month: Callable[[d.Team], str]
                         ) -> tuple[d.Agent, d.Team, MonthRead | None]:
    """Return an agent (404 when there is none), their current team, and the month ``month``
    names for that team, read beside them (None: not read here, ``agent_month`` reads it).

    One round trip when this process holds the agent and their team (a dashboard polls the
    same agents): the agent's, the team's and the scheme's streams after the versions held,
    with the month that ``month`` names for the team held. The agent and team in turn
    otherwise, or when the agent moved team or the team changed scheme meanwhile."""
    known = held(ctx, d.agent_stream(agent_id), d.evolve_agent)
    team = held(ctx, d.team_stream(known.team_id), d.evolve_team) if known else None
    if known is not None and team is not None:
        period = month(team)
        streams = Reading.of(ctx, (d.agent_stream(agent_id), d.evolve_agent),
                             (d.team_stream(team.team_id), d.evolve_team),
                             (h.scheme_stream(team.scheme_id), h.evolve))
        after = streams.after
        rows = await _month_rows(ctx, agent_id, period, c.cycle_stream(team.team_id, period),
                                 after)
        if rows is not None:
            (agent, _), (now, _), (versions, _) = streams.fold(
                by_stream((r for r in rows if r["kind"] == "event"), after))
            if agent.team_id == team.team_id and now.scheme_id == team.scheme_id:
                return agent, now, MonthRead(
                    period, [r for r in rows if r["kind"] != "event"],
                    versions.latest if versions is not None else None)
    agent = await get_agent(ctx, agent_id)
    return agent, await get_team(ctx, agent.team_id), None


#: An agent's month in one statement: the events of the streams asked for ($4, $6, $8) after
#: the versions held ($5, $7, $9; 'event' rows), the opening event of the team's cycle of the
#: month ('opened', none while the month has no cycle), which pins the scheme version that
#: measures it, then the totals per metric ('metric' rows) and the samples per team ('team'
#: rows).
#:
#: The streams are a VALUES list rather than arrays (as ``read_streams`` takes them): the
#: planner counts a VALUES list's rows in a generic plan but guesses 10 elements for an array
#: parameter, so a generic plan of arrays looks twice as costly as each custom one and
#: PostgreSQL planned the statement at every read (229 us of its CPU a read for the two
#: statements this one replaces, 109 for this one with its plan kept; 2026-12-04).
_AGENT_MONTH = f"""
SELECT e.*, 'event' AS kind, NULL AS metric, NULL AS team_id, NULL::numeric AS total,
       NULL::numeric AS observations, NULL::timestamptz AS updated_at
FROM {streams_after("(VALUES ($4::text, $5::bigint), ($6, $7), ($8, $9))"
                    " AS wanted(id, after_version)")}
UNION ALL
SELECT {COLUMNS}, 'opened', NULL, NULL, NULL, NULL, NULL
FROM event WHERE stream_id = $3 AND version = 1
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       CASE WHEN grouping(metric) = 0 THEN 'metric' ELSE 'team' END, metric, team_id,
       sum(total), sum(observations), max(updated_at)
FROM metric_totals WHERE agent_id = $1 AND period = $2
GROUP BY GROUPING SETS ((metric), (team_id))
ORDER BY stream_id, version
"""  # noqa: S608 (constants only)
#: How many streams ``_AGENT_MONTH`` reads (fewer: the rest of its pairs are NULL).
_STREAMS = 3


async def _month_rows(ctx: ServiceContext, agent_id: str, period: str, cycle: str | None,
                      after: Mapping[str, int]) -> list[asyncpg.Record] | None:
    """Return ``_AGENT_MONTH``'s rows, None while the totals' view is not there yet."""
    async with ctx.db.connection() as conn:
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                _AGENT_MONTH, agent_id, period, cycle, *_stream_pairs(after))
        except asyncpg.UndefinedTableError:
            return None
    return rows


def _stream_pairs(after: Mapping[str, int]) -> list[str | int | None]:
    """Return ``_AGENT_MONTH``'s stream parameters: each stream and the version it is read
    after, then NULLs."""
    pairs: list[str | int | None] = [x for pair in after.items() for x in pair]
    return pairs + [None] * (2 * _STREAMS - len(pairs))


async def agent_month(ctx: ServiceContext, agent: d.Agent, team: d.Team, period: str,
                      read: MonthRead | None) -> dict[str, Any]:
    """Return an agent's totals and KPIs for a period (``agent_kpis``'s document), measured by
    the scheme version of the month (``month_scheme``: its cycle's, else the latest of the
    team's scheme), from what ``agent_and_team`` read when it read that month, else with the
    totals and the cycle's opening read in one round trip."""
    latest = read.latest if read is not None else None
    if read is not None and read.period == period:
        rows: list[asyncpg.Record] | None = read.rows
    else:
        rows = await _month_rows(ctx, agent.agent_id, period,
                                 c.cycle_stream(team.team_id, period), {})
    opened = next((r for r in rows if r["kind"] == "opened"), None) if rows else None
    if rows is None:
        scheme = await month_scheme(ctx, team, period)
    elif opened is not None:
        scheme = await opening_scheme(ctx, opened["type"], opened["schema_version"],
                                      opened["data"])
    else:
        scheme = latest or await schemes.get_scheme(ctx, team.scheme_id)
    return _agent_document(rows or [], scheme, agent.position)


def _agent_document(rows: Sequence[asyncpg.Record], scheme: Scheme, position: str | None
                    ) -> dict[str, Any]:
    """Return an agent's month document from ``_AGENT_MONTH``'s rows."""
    document = _document([r for r in rows if r["kind"] == "metric"], scheme, position)
    document["by_team"] = [{"team_id": r["team_id"], "samples": int(r["observations"])}
                           for r in sorted((r for r in rows if r["kind"] == "team"),
                                           key=lambda r: r["team_id"])]
    return document


async def agent_kpis(conn: asyncpg.Connection, agent_id: str, period: str, scheme: Scheme,
                     position: str | None = None) -> dict[str, Any]:
    """Return an agent's totals and KPIs (by the scheme's formulas for their position) for a
    period, over every team they were in."""
    # no stream: the month's scheme is the caller's
    return _agent_document(await _rows(conn, _AGENT_MONTH, agent_id, period, None,
                                       *_stream_pairs({})), scheme, position)


async def team_kpis(conn: asyncpg.Connection, team_id: str, period: str, scheme: Scheme
                    ) -> dict[str, Any]:
    """Return a team's totals and KPIs for a period: the samples of agents while in the team."""
    rows = await _rows(
        conn,
        """
        SELECT metric, sum(total) AS total, sum(observations) AS observations,
               max(updated_at) AS updated_at
        FROM metric_totals WHERE team_id = $1 AND period = $2 GROUP BY metric
        """,
        team_id, period,
    )
    agents = await _rows(
        conn,
        "SELECT count(DISTINCT agent_id) AS n FROM metric_totals"
        " WHERE team_id = $1 AND period = $2",
        team_id, period,
    )
    document = _document(rows, scheme, None)
    document["agents"] = int(agents[0]["n"]) if agents else 0
    return document


async def last_arrivals(conn: asyncpg.Connection, team_id: str) -> dict[str, datetime]:
    """Return, per metric, when any source last sent it for the team."""
    rows = await _rows(
        conn,
        "SELECT metric, max(last_received_at) AS at FROM metric_arrivals"
        " WHERE team_id = $1 GROUP BY metric",
        team_id,
    )
    return {r["metric"]: r["at"] for r in rows}


async def feeds(conn: asyncpg.Connection, team_id: str) -> list[dict[str, Any]]:
    """Return every (metric, source) feed of a team with its last arrival."""
    rows = await _rows(
        conn,
        "SELECT metric, source, last_received_at, last_occurred_at, samples"
        " FROM metric_arrivals WHERE team_id = $1 ORDER BY metric, source",
        team_id,
    )
    return [dict(r) for r in rows]


async def month_context(ctx: ServiceContext, team_id: str, period: str
                        ) -> tuple[Scheme, Mapping[str, TeamTarget]] | None:
    """Return what measures a team's month: the scheme (its cycle's, else the team's latest)
    and the team's own targets; None for a team that does not exist (or has no scheme in
    force). The live KPI read model (service/projections/kpi_values.py) asks this."""
    try:
        team = await get_team(ctx, team_id)
        return await month_scheme(ctx, team, period), team.kpi_targets
    except (NotFound, Conflict):
        return None
