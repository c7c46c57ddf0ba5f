"""Read the release of results and their appeals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import directory as d
from service.domain import release as r
from service.domain.errors import NotFound
from service.domain.periods import parse_period
from service.domain.scheme import ResultsPolicy
from service.projections.releases import Releases
from service.queries import cycles
from service.queries.directory import no_team
from service.queries.streams import read_state, read_versions
from service.queries.wait import READ_TIMEOUT, wait


def month_of(cycle: c.Cycle, policy: ResultsPolicy) -> r.Month:
    """Return what the release rules need of a cycle: status, policy, its agents."""
    results = cycle.closed.not_ranked if cycle.closed is not None else {}
    return r.Month(cycle.team_id, cycle.period, cycle.status, policy,
                   cycle.first_published_at, results)


def release_document(month: r.Month, state: r.AgentResult | None, agent_id: str
                     ) -> dict[str, Any]:
    """Return whether an agent's result reached them, and the windows that follow."""
    at = r.released_at(state, month)
    event = state.released if state is not None else None
    due = (r.release_due_at(month.first_published_at, month.policy)
           if month.first_published_at is not None else None)
    return {
        "team_id": month.team_id, "period": month.period, "agent_id": agent_id,
        "released": at is not None, "released_at": at,
        "by": event.by if event else ("publication" if at else None),
        "released_by": event.released_by if event else None, "release_due_at": due,
        "appeal_until": r.appeal_until(at, month.policy) if at else None,
        "plan_due_at": event.plan_due_at if event else None,
        "not_ranked": month.results.get(agent_id),
    }


async def load_month(ctx: ServiceContext, team_id: str, period: str) -> r.Month:
    """Return the release view of a team's month (404 when there is no such cycle)."""
    return await month_view(ctx, team_id, period, await cycles.get_cycle(ctx, team_id, period))


async def month_view(ctx: ServiceContext, team_id: str, period: str, cycle: c.Cycle | None
                     ) -> r.Month:
    """Return the release view of a team's month from its cycle (404 when it has none)."""
    if cycle is None:
        raise cycles.no_cycle(team_id, period)
    policy = (await cycles.cycle_scheme(ctx, cycle)).results
    return month_of(cycle, policy)


async def release_reads(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                        ) -> tuple[d.Team, c.Cycle | None, tuple[r.AgentResult | None, int]]:
    """Return what an agent's release is checked and decided on, read in one round trip: the
    team (404 when there is none), the month's cycle (None when it has none) and the agent's
    result stream with its version, on which ``commands.release`` decides without reading it
    again (three round trips and pooled connections before)."""
    parse_period(period)
    (team, _), (cycle, _), result = await read_versions(
        ctx, (d.team_stream(team_id), d.evolve_team),
        (c.cycle_stream(team_id, period), c.evolve, c.evolve_all),
        (r.result_stream(team_id, period, agent_id), r.evolve))
    if team is None:
        raise no_team(team_id)
    return team, cycle, result


async def load_result(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                      ) -> r.AgentResult | None:
    """Return an agent's result stream state for a month, if anything was recorded."""
    return await read_state(ctx, r.result_stream(team_id, period, agent_id), r.evolve)


async def released_agents(ctx: ServiceContext, team_id: str, period: str) -> set[str]:
    """Return the agents of a month whose result was released to them (read model)."""
    await wait(ctx, Releases(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT agent_id FROM result_releases"
                                " WHERE team_id = $1 AND period = $2", team_id, period)
    return {row["agent_id"] for row in rows}


async def find_appeal(ctx: ServiceContext, appeal_id: str) -> tuple[str, str, str]:
    """Return (team_id, period, agent_id) of an appeal; 404 when there is none."""
    await wait(ctx, Releases(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        row = await conn.fetchrow("SELECT team_id, period, agent_id FROM appeals"
                                  " WHERE appeal_id = $1", appeal_id)
    if row is None:
        raise NotFound("no appeal %(appeal)s", values={"appeal": appeal_id})
    return row["team_id"], row["period"], row["agent_id"]


async def waiting_for_result(ctx: ServiceContext, cycle: c.Cycle
                             ) -> tuple[list[str], datetime | None]:
    """Return the agents of a published month still waiting for their result, and when they
    are released at the latest (none under on_publication)."""
    if cycle.status != "published" or cycle.closed is None:
        return [], None
    policy = (await cycles.cycle_scheme(ctx, cycle)).results
    month = month_of(cycle, policy)
    assert month.first_published_at is not None
    due = r.release_due_at(month.first_published_at, policy)
    if due is None:
        return [], None
    released = await released_agents(ctx, cycle.team_id, cycle.period)
    return sorted(a for a in month.results if a not in released), due


async def ranked_waiting(ctx: ServiceContext, team_id: str, period: str) -> list[str]:
    """Return the ranked agents of a published month whose result is still withheld."""
    await wait(ctx, Releases(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT a.agent_id FROM result_months m"
            " CROSS JOIN LATERAL unnest(m.ranked) AS a(agent_id)"
            " WHERE m.team_id = $1 AND m.period = $2 AND m.release_due_at IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM result_releases x WHERE x.team_id = m.team_id"
            " AND x.period = m.period AND x.agent_id = a.agent_id) ORDER BY 1",
            team_id, period)
    return [row["agent_id"] for row in rows]


async def withheld(ctx: ServiceContext, cycle: c.Cycle, agent_id: str) -> bool:
    """Tell whether the agent's own result of the month is still withheld from them."""
    if cycle.status != "published":
        return True
    policy = (await cycles.cycle_scheme(ctx, cycle)).results
    state = await load_result(ctx, cycle.team_id, cycle.period, agent_id)
    return not r.is_released(state, month_of(cycle, policy))
