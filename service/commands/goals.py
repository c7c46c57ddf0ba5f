"""Goal and invitation commands: acknowledge, dispute, resolve; invite raters.

All of them decide on the cycle stream, under its lock, so an acknowledgement, a resolution or
an invitation cannot slip in after the close that it would have changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import goals as g
from service.domain import invitations as inv
from service.domain.events import DomainEvent
from service.projections.directory import Directory
from service.queries import cycles
from service.queries.goals import goals_document, issued_targets_of
from service.queries.roster import team_agents
from service.queries.wait import READ_TIMEOUT, wait


async def acknowledge(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    comment: str | None,
) -> dict[str, Any]:
    """Acknowledge one's targets as issued."""
    scheme, agent = await issued_targets_of(ctx, team_id, period, agent_id)
    now = ctx.clock()

    def decide(state: c.Cycle | None) -> list[DomainEvent]:
        record = state.goals.get(agent_id) if state else None
        targets = g.issued_targets(scheme, agent.position, record.adjustments if record else {})
        return g.decide_acknowledge(state, agent_id, targets, member=True, comment=comment,
                                    now=now)

    state, _ = await execute(ctx, caller, c.cycle_stream(team_id, period), c.evolve, decide,
                             fold=c.evolve_all)
    assert state is not None
    return goals_document(state, scheme, agent_id, agent.position)


async def dispute(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    kpis: Sequence[str], comment: str,
) -> dict[str, Any]:
    """Dispute one's targets with a comment."""
    scheme, agent = await issued_targets_of(ctx, team_id, period, agent_id)
    now = ctx.clock()

    def decide(state: c.Cycle | None) -> list[DomainEvent]:
        record = state.goals.get(agent_id) if state else None
        targets = g.issued_targets(scheme, agent.position, record.adjustments if record else {})
        return g.decide_dispute(state, agent_id, targets, member=True, kpis=kpis,
                                comment=comment, now=now)

    state, _ = await execute(ctx, caller, c.cycle_stream(team_id, period), c.evolve, decide,
                             fold=c.evolve_all)
    assert state is not None
    return goals_document(state, scheme, agent_id, agent.position)


async def resolve(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str, *,
    decision: g.Decision, adjustments: Mapping[str, g.TargetAdjustment], reason: str,
    resolved_by: str,
) -> dict[str, Any]:
    """Resolve an agent's dispute: adjust their targets for this cycle, or keep them."""
    scheme, agent = await issued_targets_of(ctx, team_id, period, agent_id)
    now = ctx.clock()

    def decide(state: c.Cycle | None) -> list[DomainEvent]:
        record = state.goals.get(agent_id) if state else None
        targets = g.issued_targets(scheme, agent.position, record.adjustments if record else {})
        return g.decide_resolve(state, agent_id, targets, decision=decision,
                                adjustments=adjustments, reason=reason,
                                resolved_by=resolved_by, now=now)

    state, _ = await execute(ctx, caller, c.cycle_stream(team_id, period), c.evolve, decide,
                             fold=c.evolve_all)
    assert state is not None
    return goals_document(state, scheme, agent_id, agent.position)


@dataclass(frozen=True)
class Invite:
    """Invite a rater to evaluate agents of a cycle in a rater role."""

    team_id: str
    period: str
    rater_id: str
    rater_role: str
    agent_ids: Sequence[str]
    invited_by: str


async def invite(ctx: ServiceContext, caller: Caller, cmd: Invite) -> c.Cycle:
    """Invite a rater; inviting again for more agents adds them."""
    scheme = await cycles.pinned_scheme(ctx, cmd.team_id, cmd.period)
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        members = {a["agent_id"] for a in await team_agents(conn, cmd.team_id)}
    now = ctx.clock()
    state, _ = await execute(
        ctx, caller, c.cycle_stream(cmd.team_id, cmd.period), c.evolve,
        lambda current: inv.decide_invite(
            current, scheme, rater_id=cmd.rater_id, rater_role=cmd.rater_role,
            agent_ids=cmd.agent_ids, members=members, invited_by=cmd.invited_by, now=now),
        fold=c.evolve_all,
    )
    assert state is not None
    return state
