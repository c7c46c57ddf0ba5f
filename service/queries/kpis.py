"""Live KPIs of an agent or a team for a month, and when each team feed last arrived."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from service.context import ServiceContext
from service.domain.errors import Conflict, NotFound
from service.domain.kpis import TeamTarget
from service.domain.live_kpis import live_kpis
from service.domain.scheme import Scheme
from service.queries.cycles import month_scheme
from service.queries.directory import get_team


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


async def agent_kpis(conn: asyncpg.Connection, agent_id: str, period: str, scheme: Scheme,
                     position: str | None = None) -> dict[str, Any]:
    """Return an agent's totals and KPIs (by the scheme's formulas for their position) for a
    period, over every team they were in."""
    rows = await _rows(
        conn,
        """
        SELECT metric, sum(total) AS total, sum(observations) AS observations,
               max(updated_at) AS updated_at
        FROM metric_totals WHERE agent_id = $1 AND period = $2 GROUP BY metric
        """,
        agent_id, period,
    )
    teams = await _rows(
        conn,
        "SELECT team_id, sum(observations) AS samples FROM metric_totals"
        " WHERE agent_id = $1 AND period = $2 GROUP BY team_id ORDER BY team_id",
        agent_id, period,
    )
    document = _document(rows, scheme, position)
    document["by_team"] = [{"team_id": r["team_id"], "samples": int(r["samples"])}
                           for r in teams]
    return document


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
