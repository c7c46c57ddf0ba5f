"""Cycle commands: open, evaluate, close (freezing every number), publish, reopen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.commands import schemes
from service.commands.base import Caller, execute, read_state
from service.commands.directory import find_agent, get_team
from service.commands.training import find_training
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain.directory import Team
from service.domain.errors import NotFound
from service.domain.events import decode
from service.domain.periods import (
    check_period,
    evaluation_deadline,
    month_start,
    next_period,
    parse_period,
    previous_period,
    zone,
)
from service.domain.results import consecutive_last_places, last_place_agents
from service.domain.scheme import Scheme
from service.projections.directory import Directory
from service.projections.freshness import wait_caught_up
from service.queries.metrics_source import agent_inputs
from service.queries.roster import team_agents, transfers_between
from service.store.event_store import read_stream


async def find_cycle(ctx: ServiceContext, team_id: str, period: str) -> c.Cycle | None:
    """Return the cycle from its stream, or None."""
    return await read_state(ctx, c.cycle_stream(team_id, period), c.evolve, c.evolve_all)


async def get_cycle(ctx: ServiceContext, team_id: str, period: str) -> c.Cycle:
    """Return the cycle; 404 when the team or the cycle does not exist."""
    parse_period(period)
    cycle = await find_cycle(ctx, team_id, period)
    if cycle is None:
        await get_team(ctx, team_id)
        raise NotFound(f"team {team_id} has no cycle for {period}")
    return cycle


async def open_cycle(
    ctx: ServiceContext, caller: Caller, team: Team, period: str, scheme_id: str | None
) -> c.Cycle:
    """Open a team's month pinned to the scheme version in force now."""
    now = ctx.clock()
    check_period(period, now)
    scheme = await schemes.get_scheme(ctx, scheme_id or team.scheme_id)
    deadline = evaluation_deadline(period, zone(team.timezone))
    cycle, _ = await execute(
        ctx, caller, c.cycle_stream(team.team_id, period), c.evolve,
        lambda state: c.decide_open(state, team.team_id, period, scheme, deadline, now),
        fold=c.evolve_all,
    )
    assert cycle is not None
    return cycle


async def cycle_scheme(ctx: ServiceContext, cycle: c.Cycle) -> Scheme:
    """Return the scheme version the cycle is pinned to."""
    return await schemes.get_scheme(ctx, cycle.scheme_id, cycle.scheme_version)


async def pinned_scheme(ctx: ServiceContext, team_id: str, period: str) -> Scheme:
    """Return the scheme version of a cycle from its first event alone (no full load)."""
    parse_period(period)
    async with ctx.db.connection() as conn:
        first = await read_stream(conn, c.cycle_stream(team_id, period), limit=1)
    if not first:
        await get_team(ctx, team_id)
        raise NotFound(f"team {team_id} has no cycle for {period}")
    opened = decode(first[0].type, first[0].schema_version, first[0].data)
    assert isinstance(opened, c.CycleOpened)
    return await schemes.get_scheme(ctx, opened.scheme_id, opened.scheme_version)


@dataclass(frozen=True)
class Evaluate:
    """Submit or revise an evaluation."""

    team_id: str
    period: str
    agent_id: str
    rater_role: str
    rater_id: str
    scores: Mapping[str, float]
    comment: str | None


async def evaluate(ctx: ServiceContext, caller: Caller, cmd: Evaluate) -> c.EvaluationSubmitted:
    """Record an evaluation; the last committed revision wins."""
    scheme = await pinned_scheme(ctx, cmd.team_id, cmd.period)
    agent = await find_agent(ctx, cmd.agent_id)
    in_team = agent is not None and agent.team_id == cmd.team_id
    # Only roles that need training pay for reading the rater's records.
    trained = (await find_training(ctx, cmd.rater_id)).records if (
        cmd.rater_role in scheme.requires_training) else None
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(cmd.team_id, cmd.period), c.evolve,
        lambda current: c.decide_evaluate(
            current, scheme, agent_id=cmd.agent_id, rater_role=cmd.rater_role,
            rater_id=cmd.rater_id, scores=cmd.scores, comment=cmd.comment,
            agent_in_team=in_team, now=now, rater_training=trained,
        ),
        fold=c.evolve_all,
    )
    assert state is not None
    return state.evaluations[(cmd.agent_id, cmd.rater_role, cmd.rater_id)]


async def roster(ctx: ServiceContext, team: Team, period: str) -> list[c.RosterEntry]:
    """Return the team's agents with their KPI inputs and transfers for the period."""
    await wait_caught_up(ctx.db, [Directory()])
    tz = zone(team.timezone)
    async with ctx.db.connection() as conn:
        agents = await team_agents(conn, team.team_id)
        ids = [a["agent_id"] for a in agents]
        inputs = await agent_inputs(conn, period, ids)
        moves = await transfers_between(
            conn, ids, month_start(period, tz), month_start(next_period(period), tz)
        )
    return [
        c.RosterEntry(
            agent_id=a["agent_id"], name=a["name"], position=a["position"],
            kpis=inputs[a["agent_id"]][1], totals=inputs[a["agent_id"]][0],
            transfers=moves.get(a["agent_id"], []),
        )
        for a in agents
    ]


@dataclass(frozen=True)
class Close:
    """Close a month, optionally forced with a reason and a policy for missing evaluations."""

    team_id: str
    period: str
    force: bool = False
    reason: str | None = None
    missing_policy: c.MissingPolicy | None = None


async def close(ctx: ServiceContext, caller: Caller, cmd: Close) -> c.Cycle:
    """Close the month, freezing KPIs, scores and ranking into the close event."""
    team = await get_team(ctx, cmd.team_id)
    scheme = await pinned_scheme(ctx, cmd.team_id, cmd.period)
    agents = await roster(ctx, team, cmd.period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(cmd.team_id, cmd.period), c.evolve,
        lambda current: c.decide_close(
            current, scheme, agents, force=cmd.force, reason=cmd.reason,
            missing_policy=cmd.missing_policy, now=now,
        ),
        fold=c.evolve_all,
    )
    assert state is not None
    return state


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
        last_by_period[month] = last_place_agents(
            c.frozen_ranking(earlier.closed), min_ranked_agents=policy.min_ranked_agents
        )
    agents = set().union(*last_by_period.values()) if last_by_period else set()
    return {a: consecutive_last_places(a, period, last_by_period) for a in sorted(agents)}


async def publish(ctx: ServiceContext, caller: Caller, team_id: str, period: str) -> c.Cycle:
    """Publish a closed month, deciding its rewards, deductions, plans and reviews."""
    parse_period(period)
    team = await get_team(ctx, team_id)
    policy = (await pinned_scheme(ctx, team_id, period)).results
    streaks = await previous_last_places(ctx, team_id, period, policy.streak_length - 1)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(team_id, period), c.evolve,
        lambda current: c.decide_publish(current, now, policy=policy, currency=team.currency,
                                         previous_last_places=streaks),
        fold=c.evolve_all,
    )
    assert state is not None
    return state


async def reopen(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, reason: str | None
) -> c.Cycle:
    """Reopen a closed or published month for a correction."""
    await get_cycle(ctx, team_id, period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(team_id, period), c.evolve,
        lambda current: c.decide_reopen(current, reason, now),
        fold=c.evolve_all,
    )
    assert state is not None
    return state
