"""Read a team's month: its cycle, the scheme it is pinned to, and its roster."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import directory as d
from service.domain.directory import Agent, Team
from service.domain.errors import NotFound
from service.domain.events import decode
from service.domain.periods import (
    month_start,
    next_period,
    parse_period,
    previous_period,
    zone,
)
from service.domain.presence import DateRange, Span, period_dates
from service.domain.results import consecutive_last_places
from service.domain.scheme import Scheme
from service.projections.directory import Directory
from service.queries import schemes
from service.queries.directory import get_team, no_team
from service.queries.metrics_source import agent_inputs
from service.queries.roster import presence_inputs, team_agents, transfers_between
from service.queries.streams import Spec, held, held_versions, read_state, read_versions
from service.queries.wait import wait
from service.store.event_store import read_stream


async def find_cycle(ctx: ServiceContext, team_id: str, period: str) -> c.Cycle | None:
    """Return the cycle from its stream, or None."""
    return await read_state(ctx, c.cycle_stream(team_id, period), c.evolve, c.evolve_all)


def no_cycle(team_id: str, period: str) -> NotFound:
    """Return the 404 of a month its (existing) team has no cycle for."""
    return NotFound("team %(team)s has no cycle for %(period)s",
                    values={"team": team_id, "period": period})


async def get_cycle(ctx: ServiceContext, team_id: str, period: str) -> c.Cycle:
    """Return the cycle; 404 when the team or the cycle does not exist."""
    parse_period(period)
    cycle = await find_cycle(ctx, team_id, period)
    if cycle is None:
        await get_team(ctx, team_id)
        raise no_cycle(team_id, period)
    return cycle


async def cycle_scheme(ctx: ServiceContext, cycle: c.Cycle) -> Scheme:
    """Return the scheme version the cycle is pinned to."""
    return await schemes.get_scheme(ctx, cycle.scheme_id, cycle.scheme_version)


#: What an evaluation is checked and decided on: the team, the agent (None when there is
#: none), the month's cycle with its version, and the team's and the agent's stream versions.
EvaluationReads = tuple[Team, Agent | None, tuple[c.Cycle | None, int], dict[str, int]]


def _evaluation_streams(team_id: str, period: str, agent_id: str) -> tuple[Spec, Spec, Spec]:
    return ((d.team_stream(team_id), d.evolve_team), (d.agent_stream(agent_id), d.evolve_agent),
            (c.cycle_stream(team_id, period), c.evolve, c.evolve_all))


def _evaluation_reads(team_id: str, agent_id: str, read: list[tuple[Any, int]]
                      ) -> EvaluationReads:
    (team, team_version), (agent, agent_version), month = read
    return team, agent, month, {d.team_stream(team_id): team_version,
                                d.agent_stream(agent_id): agent_version}


async def evaluation_reads(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                           ) -> EvaluationReads:
    """Return what an evaluation is checked and decided on, read in one round trip: the team
    (404 when there is none), the agent (None when there is none), and the month's cycle with
    its version, on which ``commands.evaluate`` decides without reading its stream again."""
    parse_period(period)
    read = _evaluation_reads(team_id, agent_id, await read_versions(
        ctx, *_evaluation_streams(team_id, period, agent_id)))
    if read[0] is None:
        raise no_team(team_id)
    return read


def held_evaluation_reads(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                          ) -> EvaluationReads | None:
    """Return the same as this process holds it, without asking the database; None unless it
    holds the team, the agent and the month (an agent or a month that does not exist is never
    held). They may be stale: only for a decision whose append checks that none of the three
    moved (``execute(guards=...)`` with the versions returned)."""
    held = held_versions(ctx, *_evaluation_streams(team_id, period, agent_id))
    if held is None or held[0][0] is None or held[1][0] is None or held[2][0] is None:
        return None
    return _evaluation_reads(team_id, agent_id, held)


async def pinned_scheme(ctx: ServiceContext, team_id: str, period: str) -> Scheme:
    """Return the scheme version of a cycle from its first event alone (no full load)."""
    parse_period(period)
    # The pin is the opening's and never changes: any state of the month held here names it.
    cycle = held(ctx, c.cycle_stream(team_id, period), c.evolve, c.evolve_all)
    if cycle is not None:
        return await schemes.get_scheme(ctx, cycle.scheme_id, cycle.scheme_version)
    async with ctx.db.connection() as conn:
        first = await read_stream(conn, c.cycle_stream(team_id, period), limit=1)
    if not first:
        await get_team(ctx, team_id)
        raise no_cycle(team_id, period)
    return await opening_scheme(ctx, first[0].type, first[0].schema_version, first[0].data)


async def opening_scheme(ctx: ServiceContext, type_: str, schema_version: int,
                         data: Mapping[str, Any]) -> Scheme:
    """Return the scheme version a cycle's opening event (its stream's first, as stored)
    pins."""
    opened = decode(type_, schema_version, data)
    assert isinstance(opened, c.CycleOpened)
    return await schemes.get_scheme(ctx, opened.scheme_id, opened.scheme_version)


async def month_scheme(ctx: ServiceContext, team: Team, period: str) -> Scheme:
    """Return the scheme version that measures a team's month: its cycle's, or while the month
    has no cycle, the latest version of the team's scheme."""
    try:
        return await pinned_scheme(ctx, team.team_id, period)
    except NotFound:
        return await schemes.get_scheme(ctx, team.scheme_id)


async def roster(ctx: ServiceContext, team: Team, period: str, scheme: Scheme | None = None,
                 *, through: date | None = None) -> list[c.RosterEntry]:
    """Return the team's agents with their KPI inputs, transfers and presence for the period;
    with ``scheme``, their KPI values by its formulas too (``through``: per-active-day KPIs
    count the active days up to that day, for a month still running)."""
    await wait(ctx, Directory())
    tz = zone(team.timezone)
    first, last = period_dates(period)
    async with ctx.db.connection() as conn:
        agents = await team_agents(conn, team.team_id)
        ids = [a["agent_id"] for a in agents]
        inputs = await agent_inputs(conn, period, ids)
        moves = await transfers_between(
            conn, ids, month_start(period, tz), month_start(next_period(period), tz)
        )
        absences, memberships = await presence_inputs(conn, ids, first, last)
    entries = [
        c.RosterEntry(
            agent_id=a["agent_id"], name=a["name"], position=a["position"],
            totals=inputs[a["agent_id"]][0], observations=inputs[a["agent_id"]][1],
            transfers=moves.get(a["agent_id"], []),
            span=Span(a["hired_on"], a["left_on"]),
            absences=[DateRange(*r) for r in absences.get(a["agent_id"], [])],
            memberships=memberships.get(a["agent_id"], []),
        )
        for a in agents
    ]
    return c.measure(scheme, period, entries, through) if scheme is not None else entries


def presence_of(team: Team) -> c.Presence:
    """Return what fair months need of the team to place days: its id and time zone."""
    return c.Presence(team.team_id, zone(team.timezone), team.kpi_targets)


async def previous_last_places(
    ctx: ServiceContext, team_id: str, period: str, months: int
) -> dict[str, int]:
    """Count, per agent, the team's published months right before ``period`` they were last in.

    Only this team's cycles count (a streak does not follow an agent to another team), each
    month judged by its own frozen ranking and pinned policy; a month without a published
    cycle ends the look-back, and so does one reopened for a correction (its published ranking
    no longer stands). ``months`` bounds it: a longer streak decides nothing more.
    """
    last_by_period: dict[str, frozenset[str]] = {}
    month = period
    for _ in range(months):
        month = previous_period(month)
        earlier = await find_cycle(ctx, team_id, month)
        if earlier is None or earlier.status != "published" or earlier.closed is None:
            break
        policy = (await cycle_scheme(ctx, earlier)).results
        last_by_period[month] = c.last_in_month(earlier.closed, policy)
    agents = set().union(*last_by_period.values()) if last_by_period else set()
    return {a: consecutive_last_places(a, period, last_by_period) for a in sorted(agents)}
