"""Look up the metrics a batch's teams accept, month by month (ingestion calls ``declared``).

The team_metrics read model answers (one query) when it has applied every committed scheme
and team event; a month whose cycle it has not taken in yet, or every pair when it lags, is
read from the streams instead, so a scheme published a moment ago decides the very next batch.
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from service.domain import cycle as c
from service.domain import directory as d
from service.domain import team_metrics as tm
from service.domain.events import DomainEvent, decode
from service.domain.scheme_history import SchemeVersions, evolve, scheme_stream
from service.store.applied import applied, newest_events

Pair = tuple[str, str]

# Also names which of the months' cycles ($3, their streams) have been opened: a month the
# read model has no row of, with an opened cycle, was opened a moment ago (see ``declared``);
# asked here rather than in a second round trip for every batch of a month without a cycle.
_LOOKUP = f"""
WITH newest AS (
{newest_events("scheme", "team")}
), fresh AS (SELECT {applied("team_metrics")} AS ok)
SELECT (SELECT ok FROM fresh) AS fresh, array_agg(t.team_id) AS teams,
       array_agg(t.period) AS periods, array_agg(t.metric) AS metrics,
       array_agg(t.unit) AS units, array_agg(t.aggregation) AS aggregations,
       (SELECT array_agg(e.stream_id) FROM event e
        WHERE e.stream_id = ANY($3::text[]) AND e.version = 1) AS opened
FROM team_metrics t
WHERE t.team_id = ANY($1::text[]) AND t.period = ANY($2::text[])
"""


async def declared(conn: asyncpg.Connection, pairs: Collection[Pair]
                   ) -> dict[Pair, dict[str, tm.Declared]]:
    """Return, per (team, month), the metrics its samples may carry."""
    if not pairs:
        return {}
    teams = sorted({t for t, _ in pairs})
    periods = sorted({p for _, p in pairs} | {tm.ANY_MONTH})
    cycles = {c.cycle_stream(t, p): (t, p) for t, p in pairs}
    try:
        row = await conn.fetchrow(_LOOKUP, teams, periods, list(cycles))
    except asyncpg.UndefinedTableError:
        row = None  # the projection has not started yet
    if row is None or not row["fresh"]:
        return await _from_streams(conn, pairs)
    found: dict[Pair, dict[str, tm.Declared]] = {}
    for team_id, period, metric, unit, aggregation in zip(
            row["teams"] or (), row["periods"] or (), row["metrics"] or (), row["units"] or (),
            row["aggregations"] or (), strict=True):
        found.setdefault((team_id, period), {})[metric] = tm.Declared(unit, aggregation)
    # A month whose cycle the read model has not taken in yet (opened a moment ago).
    if any(cycles[stream] not in found for stream in row["opened"] or ()):
        return await _from_streams(conn, pairs)
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


async def _from_streams(conn: asyncpg.Connection, pairs: Collection[Pair]
                        ) -> dict[Pair, dict[str, tm.Declared]]:
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
