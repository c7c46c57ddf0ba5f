"""Release commands: release an agent's result (interview, manager, scheduler), appeal it and
decide the appeal.

Each agent-month's release and appeal live on one stream (``service.domain.release``); commands
on it queue on its advisory lock (``execute``), so concurrent releases record one event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from service.commands import cycles
from service.commands.base import Caller, execute, read_state
from service.commands.directory import get_team
from service.commands.sanctions import SCHEDULER
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import release as r
from service.domain.errors import NotFound
from service.domain.scheme import ResultsPolicy
from service.projections.freshness import wait_caught_up
from service.projections.releases import Releases

log = logging.getLogger(__name__)


def month_of(cycle: c.Cycle, policy: ResultsPolicy) -> r.Month:
    """Return what the release rules need of a cycle: status, policy, its agents."""
    results: dict[str, str | None] = {}
    if cycle.closed is not None:
        for x in cycle.closed.results:
            not_ranked = x.eligibility.reason if (
                x.eligibility is not None and not x.eligibility.ranked) else None
            results[x.agent_id] = not_ranked
    return r.Month(cycle.team_id, cycle.period, cycle.status, policy,
                   cycle.first_published_at, results)


async def load_month(ctx: ServiceContext, team_id: str, period: str) -> r.Month:
    """Return the release view of a team's month (404 when there is no such cycle)."""
    cycle = await cycles.get_cycle(ctx, team_id, period)
    policy = (await cycles.cycle_scheme(ctx, cycle)).results
    return month_of(cycle, policy)


async def load_result(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                      ) -> r.AgentResult | None:
    """Return an agent's result stream state for a month, if anything was recorded."""
    return await read_state(ctx, r.result_stream(team_id, period, agent_id), r.evolve)


def _step(caller: Caller, suffix: str) -> Caller:
    key = caller.idempotency_key
    return Caller(caller.metadata, f"{key}:{suffix}" if key else None)


async def release(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    by: r.ReleasedBy, released_by: str | None, month: r.Month | None = None,
) -> r.AgentResult:
    """Release an agent's result once (a second release records nothing)."""
    month = month or await load_month(ctx, team_id, period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, r.result_stream(team_id, period, agent_id), r.evolve,
        lambda current: r.decide_release(current, month, agent_id, by=by,
                                         released_by=released_by, now=now),
    )
    return state or r.AgentResult()


async def release_after_interview(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    recorded_by: str,
) -> None:
    """Release the agent's result now that their interview is recorded as held."""
    month = await load_month(ctx, team_id, period)
    if month.status != "published" or agent_id not in month.results:
        # A month reopened for a correction is released at its next publication's scan.
        return
    await release(ctx, _step(caller, "release"), team_id, period, agent_id, by="interview",
                  released_by=recorded_by, month=month)


_DUE = """
SELECT m.team_id, m.period, a.agent_id
FROM result_months m CROSS JOIN LATERAL unnest(m.agents) AS a(agent_id)
WHERE m.status = 'published' AND m.release_due_at IS NOT NULL AND m.release_due_at <= $1
  AND NOT EXISTS (SELECT 1 FROM result_releases x WHERE x.team_id = m.team_id
                  AND x.period = m.period AND x.agent_id = a.agent_id)
ORDER BY m.team_id, m.period, a.agent_id
"""


async def release_pass(ctx: ServiceContext) -> int:
    """Release every result whose latest release passed (at ctx.clock()); count them.

    Run by the scheduler: a service that was down at the due time releases at its next start,
    once (each release is decided again on its stream, which refuses a second one).
    """
    now = ctx.clock()
    await wait_caught_up(ctx.db, [Releases()], timeout=2.0)
    async with ctx.db.connection() as conn:
        due = await conn.fetch(_DUE, now)
    caller = SCHEDULER
    released = 0
    months: dict[tuple[str, str], r.Month] = {}
    for row in due:
        key = (row["team_id"], row["period"])
        if key not in months:
            months[key] = await load_month(ctx, *key)
        state = await release(ctx, caller, *key, row["agent_id"], by="automatic",
                              released_by=None, month=months[key])
        if state.released is not None and state.released.by == "automatic" \
                and state.released.released_at == now:
            released += 1
    if released:
        log.info("released %d result(s) automatically", released)
    return released


async def released_agents(ctx: ServiceContext, team_id: str, period: str) -> set[str]:
    """Return the agents of a month whose result was released to them (read model)."""
    await wait_caught_up(ctx.db, [Releases()], timeout=2.0)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT agent_id FROM result_releases"
                                " WHERE team_id = $1 AND period = $2", team_id, period)
    return {row["agent_id"] for row in rows}


# --- appeals ------------------------------------------------------------------------------


async def appeal(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    by: str, reason: str | None,
) -> r.AppealFiled:
    """File the agent's appeal of their month."""
    month = await load_month(ctx, team_id, period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, r.result_stream(team_id, period, agent_id), r.evolve,
        lambda current: r.decide_appeal(current, month, agent_id, by=by, reason=reason,
                                        now=now),
    )
    assert state is not None and state.appeal is not None
    return state.appeal


async def find_appeal(ctx: ServiceContext, appeal_id: str) -> tuple[str, str, str]:
    """Return (team_id, period, agent_id) of an appeal; 404 when there is none."""
    await wait_caught_up(ctx.db, [Releases()], timeout=2.0)
    async with ctx.db.connection() as conn:
        row = await conn.fetchrow("SELECT team_id, period, agent_id FROM appeals"
                                  " WHERE appeal_id = $1", appeal_id)
    if row is None:
        raise NotFound(f"no appeal {appeal_id}")
    return row["team_id"], row["period"], row["agent_id"]


@dataclass(frozen=True)
class Decided:
    """An appeal's decision and, for amend, the reopened month."""

    decision: r.AppealDecided
    cycle: c.Cycle | None


async def decide(
    ctx: ServiceContext, caller: Caller, appeal_id: str, *, decision: r.AppealDecision,
    note: str | None, decided_by: str,
) -> Decided:
    """Decide an appeal; ``amend`` reopens the month through the correction path.

    Amend only reopens: the manager then revises the evaluations and closes and publishes
    again, and that publication re-derives every consequence (``cycles.publish``), later
    months' included. The reopening names the appeal as its reason.
    """
    team_id, period, agent_id = await find_appeal(ctx, appeal_id)
    team = await get_team(ctx, team_id)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, r.result_stream(team_id, period, agent_id), r.evolve,
        lambda current: r.decide_appeal_decision(
            current, decision=decision, note=note, decided_by=decided_by,
            manager_ids=team.manager_ids, now=now),
    )
    assert state is not None and state.decision is not None and state.appeal is not None
    reopened = None
    if state.decision.decision == "amend":
        cycle = await cycles.get_cycle(ctx, team_id, period)
        if cycle.status != "open":
            reopened = await cycles.reopen(ctx, _step(caller, "reopen"), team_id, period,
                                           r.correction_reason(state.appeal, note))
    return Decided(state.decision, reopened)


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
    await wait_caught_up(ctx.db, [Releases()], timeout=2.0)
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
