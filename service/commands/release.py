"""Release commands: release an agent's result (interview, manager, scheduler), appeal it and
decide the appeal.

Each agent-month's release and appeal live on one stream (``service.domain.release``); commands
on it queue on its advisory lock (``execute``), so concurrent releases record one event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.commands import cycles
from service.commands.base import Caller, execute
from service.commands.sanctions import SCHEDULER
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import release as r
from service.projections.releases import Releases
from service.queries import cycles as cycles_reads
from service.queries.directory import get_team
from service.queries.release import find_appeal, load_month
from service.queries.wait import READ_TIMEOUT, wait

log = logging.getLogger(__name__)


def _step(caller: Caller, suffix: str) -> Caller:
    key = caller.idempotency_key
    return Caller(caller.metadata, f"{key}:{suffix}" if key else None)


async def release(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    by: r.ReleasedBy, released_by: str | None, month: r.Month | None = None,
    read: tuple[r.AgentResult | None, int] | None = None,
) -> r.AgentResult:
    """Release an agent's result once (a second release records nothing).

    ``read`` is the result stream's state and version as the caller just read it
    (``queries.release.release_reads``), decided on without reading the stream again.
    """
    month = month or await load_month(ctx, team_id, period)
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, r.result_stream(team_id, period, agent_id), r.evolve,
        lambda current: r.decide_release(current, month, agent_id, by=by,
                                         released_by=released_by, now=now),
        read=read,
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
    await wait(ctx, Releases(), timeout=READ_TIMEOUT)
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
        cycle = await cycles_reads.get_cycle(ctx, team_id, period)
        if cycle.status != "open":
            reopened = await cycles.reopen(ctx, _step(caller, "reopen"), team_id, period,
                                           r.correction_reason(state.appeal, note))
    return Decided(state.decision, reopened)


