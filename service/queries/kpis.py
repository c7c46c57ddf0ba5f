"""Live KPIs of an agent or a team for a month, and when each team feed last arrived."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from service.queries.streams import held, read_versions


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


async def agent_and_team(ctx: ServiceContext, agent_id: str
                         ) -> tuple[d.Agent, d.Team, Scheme | None]:
    """Return an agent (404 when there is none), their current team, and the latest version
    in force of the team's scheme (None: not read here, ``month_document`` reads it when the
    month needs it).

    One round trip when this process holds the agent and their team (a dashboard polls the
    same agents): the agent's, the team's and the scheme's streams are read together after
    the versions held; the agent and team in turn otherwise, or when the agent moved team or
    the team changed scheme meanwhile, and the scheme then on demand."""
    known = held(ctx, d.agent_stream(agent_id), d.evolve_agent)
    team = held(ctx, d.team_stream(known.team_id), d.evolve_team) if known else None
    if known is not None and team is not None:
        (agent, _), (now, _), (versions, _) = await read_versions(
            ctx, (d.agent_stream(agent_id), d.evolve_agent),
            (d.team_stream(team.team_id), d.evolve_team),
            (h.scheme_stream(team.scheme_id), h.evolve))
        if agent.team_id == team.team_id and now.scheme_id == team.scheme_id:
            return agent, now, versions.latest if versions is not None else None
    agent = await get_agent(ctx, agent_id)
    return agent, await get_team(ctx, agent.team_id), None


#: An agent's month in one statement: the totals per metric ('metric' rows) and the samples
#: per team ('team' rows), and the opening event of the team's cycle of the month ('opened',
#: none while the month has no cycle), which pins the scheme version that measures it.
_AGENT_MONTH = """
SELECT CASE WHEN grouping(metric) = 0 THEN 'metric' ELSE 'team' END AS kind, metric, team_id,
       sum(total) AS total, sum(observations) AS observations, max(updated_at) AS updated_at,
       NULL::text AS type, NULL::integer AS schema_version, NULL::jsonb AS data
FROM metric_totals WHERE agent_id = $1 AND period = $2
GROUP BY GROUPING SETS ((metric), (team_id))
UNION ALL
SELECT 'opened', NULL, NULL, NULL, NULL, NULL, type, schema_version, data
FROM event WHERE stream_id = $3 AND version = 1
"""


async def agent_month(ctx: ServiceContext, agent: d.Agent, team: d.Team, period: str,
                      latest: Scheme | None) -> dict[str, Any]:
    """Return an agent's totals and KPIs for a period (``agent_kpis``'s document), measured by
    the scheme version of the month (``month_scheme``: its cycle's, else the latest of the
    team's scheme, ``latest`` when the caller read it), with the totals and the cycle's
    opening read in one round trip."""
    stream = c.cycle_stream(team.team_id, period)
    async with ctx.db.connection() as conn:
        try:
            rows = await conn.fetch(_AGENT_MONTH, agent.agent_id, period, stream)
        except asyncpg.UndefinedTableError:
            rows = None  # the totals' view is not there yet: no data, as for a quiet month
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
    return _agent_document(await _rows(conn, _AGENT_MONTH, agent_id, period, None), scheme,
                           position)


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
