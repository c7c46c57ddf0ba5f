"""Goal and invitation commands: acknowledge, dispute, resolve; invite raters.

All of them decide on the cycle stream, under its lock, so an acknowledgement, a resolution or
an invitation cannot slip in after the close that it would have changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.commands import cycles
from service.commands.base import Caller, execute
from service.commands.directory import find_agent, get_team
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import goals as g
from service.domain import invitations as inv
from service.domain.directory import Agent, Team
from service.domain.errors import NotFound
from service.domain.events import DomainEvent
from service.domain.scheme import Scheme, with_team_targets
from service.projections.directory import Directory
from service.projections.freshness import wait_caught_up
from service.queries.roster import team_agents


def goals_document(
    cycle: c.Cycle, scheme: Scheme, agent_id: str, position: str | None
) -> dict[str, Any]:
    """Render an agent's issued targets, their status, and what was said about them."""
    record = cycle.goals.get(agent_id)
    adjustments = record.adjustments if record else {}
    targets = g.issued_targets(scheme, position, adjustments)
    status = g.goal_status(record, targets)
    acknowledged = record.acknowledged if record else None
    dispute = record.dispute if record else None
    return {
        "team_id": cycle.team_id, "period": cycle.period, "agent_id": agent_id,
        "position": position, "scheme_id": scheme.scheme_id,
        "scheme_version": scheme.version, "issued_at": cycle.opened_at, "status": status,
        "targets": {name: t.model_dump(exclude={"kpi"}) for name, t in targets.items()},
        "acknowledged_at": acknowledged.acknowledged_at if acknowledged else None,
        "dispute": None if dispute is None else {
            "kpis": list(dispute.kpis), "comment": dispute.comment,
            "disputed_at": dispute.disputed_at,
        },
        "history": [
            {"type": e.type, **e.model_dump(mode="json", exclude={"type", "agent_id"})}
            for e in (record.history if record else ())
        ],
    }


async def _member(ctx: ServiceContext, team_id: str, agent_id: str) -> Agent:
    agent = await find_agent(ctx, agent_id)
    if agent is None or agent.team_id != team_id:
        raise NotFound(f"agent {agent_id} is not in team {team_id}")
    return agent


async def get_goals(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                    ) -> dict[str, Any]:
    """Return an agent's goals for a team's month."""
    cycle = await cycles.get_cycle(ctx, team_id, period)
    agent = await _member(ctx, team_id, agent_id)
    scheme = await _issued_scheme(ctx, team_id, await cycles.cycle_scheme(ctx, cycle))
    return goals_document(cycle, scheme, agent_id, agent.position)


async def list_goals(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> list[dict[str, Any]]:
    """Return every current agent's goals for the month (status and targets)."""
    scheme = with_team_targets(await cycles.cycle_scheme(ctx, cycle), team.kpi_targets)
    await wait_caught_up(ctx.db, [Directory()], timeout=2.0)
    async with ctx.db.connection() as conn:
        agents = await team_agents(conn, team.team_id)
    return [goals_document(cycle, scheme, a["agent_id"], a["position"]) for a in agents]


async def _issued_scheme(ctx: ServiceContext, team_id: str, scheme: Scheme) -> Scheme:
    # Agents are issued the targets they are scored against: the team's own over the scheme's.
    return with_team_targets(scheme, (await get_team(ctx, team_id)).kpi_targets)


async def _targets(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                   ) -> tuple[Scheme, Agent]:
    scheme = await cycles.pinned_scheme(ctx, team_id, period)
    return (await _issued_scheme(ctx, team_id, scheme),
            await _member(ctx, team_id, agent_id))


async def acknowledge(
    ctx: ServiceContext, caller: Caller, team_id: str, period: str, agent_id: str,
    comment: str | None,
) -> dict[str, Any]:
    """Acknowledge one's targets as issued."""
    scheme, agent = await _targets(ctx, team_id, period, agent_id)
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
    scheme, agent = await _targets(ctx, team_id, period, agent_id)
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
    scheme, agent = await _targets(ctx, team_id, period, agent_id)
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


def invitations_document(cycle: c.Cycle, rater_id: str | None = None) -> list[dict[str, Any]]:
    """Render the cycle's invitations (one rater's only, when named) with what they rated."""
    return [
        {"rater_id": rater, "rater_role": role, "agent_ids": sorted(agents),
         "submitted": sorted(a for a in agents if (a, role, rater) in cycle.evaluations)}
        for (rater, role), agents in sorted(cycle.invitations.items())
        if rater_id is None or rater == rater_id
    ]


async def invite(ctx: ServiceContext, caller: Caller, cmd: Invite) -> c.Cycle:
    """Invite a rater; inviting again for more agents adds them."""
    scheme = await cycles.pinned_scheme(ctx, cmd.team_id, cmd.period)
    await wait_caught_up(ctx.db, [Directory()], timeout=2.0)
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
