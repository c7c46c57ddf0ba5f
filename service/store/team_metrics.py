"""Look up the metrics a batch's teams accept, month by month (``declared``; ingestion asks
``lookup_sql`` in its locking statement, service/store/metrics.py, and reads it by ``accepted``).

The team_metrics read model answers (one query) when it has applied every committed scheme
and team event; a month whose cycle it has not taken in yet, or every pair when it lags, is
read from the streams instead, so a scheme published a moment ago decides the very next batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import asyncpg

from service.domain import cycle as c
from service.domain import directory as d
from service.domain import team_metrics as tm
from service.domain.events import DomainEvent, decode
from service.domain.scheme_history import SchemeVersions, evolve, scheme_stream
from service.store.applied import applied, newest_events

Pair = tuple[str, str]

def lookup_sql(teams: str, periods: str, cycles: str) -> str:
    """Return the lookup of what teams declare for months, given SQL for the arrays of the
    teams, the months (with ``tm.ANY_MONTH``: the latest version's rows) and those months'
    cycle streams (code, never values): one row, whether the read model has applied every
    scheme and team event, its rows as arrays, and which of the cycles have been opened. A
    month the read model has no row of, with an opened cycle, was opened a moment ago (see
    ``accepted``); asked here rather than in a second round trip for every batch of a month
    without a cycle. Its own ``newest`` (a query of its own, so it can be a subquery of
    ingestion's locking statement, service/store/metrics.py, which has another)."""
    return f"""
WITH newest AS (
{newest_events("scheme", "team")}
), fresh AS (SELECT {applied("team_metrics")} AS ok)
SELECT (SELECT ok FROM fresh) AS declared_fresh, array_agg(t.team_id) AS declared_teams,
       array_agg(t.period) AS declared_periods, array_agg(t.metric) AS declared_metrics,
       array_agg(t.unit) AS declared_units, array_agg(t.aggregation) AS declared_aggregations,
       (SELECT array_agg(e.stream_id) FROM event e
        WHERE e.stream_id = ANY({cycles}) AND e.version = 1) AS opened_cycles
FROM team_metrics t
WHERE t.team_id = ANY({teams}) AND t.period = ANY({periods})
"""


_LOOKUP = lookup_sql("$1::text[]", "$2::text[]", "$3::text[]")


async def declared(conn: asyncpg.Connection, pairs: Collection[Pair]
                   ) -> dict[Pair, dict[str, tm.Declared]]:
    """Return, per (team, month), the metrics its samples may carry."""
    if not pairs:
        return {}
    teams = sorted({t for t, _ in pairs})
    periods = sorted({p for _, p in pairs} | {tm.ANY_MONTH})
    try:
        row = await conn.fetchrow(_LOOKUP, teams, periods,
                                  [c.cycle_stream(t, p) for t, p in pairs])
    except asyncpg.UndefinedTableError:
        row = None  # the projection has not started yet
    found = accepted(row, pairs)
    return await from_streams(conn, pairs) if found is None else found


def accepted(row: Mapping[str, Any] | None, pairs: Collection[Pair]
             ) -> dict[Pair, dict[str, tm.Declared]] | None:
    """Return, per (team, month), the metrics its samples may carry, from a row of the
    lookup (``lookup_sql``) of those pairs; None when the read model cannot answer (it lags,
    or has not taken in a cycle opened a moment ago): read the streams (``from_streams``)."""
    if not pairs:
        return {}
    if row is None or not row["declared_fresh"]:
        return None
    found: dict[Pair, dict[str, tm.Declared]] = {}
    for team_id, period, metric, unit, aggregation in zip(
            row["declared_teams"] or (), row["declared_periods"] or (),
            row["declared_metrics"] or (), row["declared_units"] or (),
            row["declared_aggregations"] or (), strict=True):
        found.setdefault((team_id, period), {})[metric] = tm.Declared(unit, aggregation)
    # A month whose cycle the read model has not taken in yet (opened a moment ago).
    cycles = {c.cycle_stream(t, p): (t, p) for t, p in pairs}
    if any(cycles.get(stream) not in found for stream in row["opened_cycles"] or ()):
        return None
    return {(t, p): tm.in_force(found.get((t, tm.ANY_MONTH), {}), found.get((t, p)))
            for t, p in pairs}


async def _events(conn: asyncpg.Connection, stream_ids: list[str]
                  ) -> dict[str, list[DomainEvent]]:
    rows = await conn.fetch(
        "SELECT stream_id, type, schema_version, data FROM event"
        " WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version", stream_ids)
    events: dict[str, list[DomainEvent]] = {}
    for r in rows:
        events.setdefault(r["stream_id"], []).append(
            decode(r["type"], r["schema_version"], r["data"]))
    return events


async def from_streams(conn: asyncpg.Connection, pairs: Collection[Pair]
                       ) -> dict[Pair, dict[str, tm.Declared]]:
    """Return, per (team, month), the metrics its samples may carry, from the streams."""
    teams = sorted({t for t, _ in pairs})
    scheme_of: dict[str, str] = {}
    for events in (await _events(conn, [d.team_stream(t) for t in teams])).values():
        team: d.Team | None = None
        for e in events:
            team = d.evolve_team(team, e)
        if team is not None:
            scheme_of[team.team_id] = team.scheme_id
    opened: dict[Pair, tuple[str, int]] = {}
    rows = await conn.fetch(
        "SELECT stream_id, type, schema_version, data FROM event"
        " WHERE stream_id = ANY($1::text[]) AND version = 1",
        [c.cycle_stream(t, p) for t, p in pairs])
    for r in rows:
        e = decode(r["type"], r["schema_version"], r["data"])
        if isinstance(e, c.CycleOpened):
            opened[(e.team_id, e.period)] = (e.scheme_id, e.scheme_version)
    schemes = sorted(set(scheme_of.values()) | {s for s, _ in opened.values()})
    histories: dict[str, SchemeVersions] = {}
    for stream_id, events in (await _events(conn, [scheme_stream(s) for s in schemes])).items():
        state: SchemeVersions | None = None
        for e in events:
            state = evolve(state, e)
        if state is not None:
            histories[stream_id.removeprefix("scheme:")] = state
    result: dict[Pair, dict[str, tm.Declared]] = {}
    for team_id, period in pairs:
        history = histories.get(scheme_of.get(team_id, ""))
        latest = tm.declared(history.latest) if history and history.latest else {}
        month = None
        if (team_id, period) in opened:
            scheme_id, version = opened[(team_id, period)]
            pinned = histories.get(scheme_id)
            if pinned is not None and version in pinned.versions:
                month = tm.declared(pinned.versions[version])
        result[(team_id, period)] = tm.in_force(latest, month)
    return result
