"""Read agents' goals and the cycle's invitations."""

from __future__ import annotations

from typing import Any

from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import goals as g
from service.domain.directory import Agent, Team
from service.domain.errors import NotFound
from service.domain.scheme import Scheme, with_team_targets
from service.projections.directory import Directory
from service.queries import cycles
from service.queries.directory import find_agent, get_team
from service.queries.roster import team_agents
from service.queries.wait import READ_TIMEOUT, wait


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


async def member(ctx: ServiceContext, team_id: str, agent_id: str) -> Agent:
    agent = await find_agent(ctx, agent_id)
    if agent is None or agent.team_id != team_id:
        raise NotFound("agent %(agent)s is not in team %(team)s",
                       values={"agent": agent_id, "team": team_id})
    return agent


async def get_goals(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                    ) -> dict[str, Any]:
    """Return an agent's goals for a team's month."""
    cycle = await cycles.get_cycle(ctx, team_id, period)
    agent = await member(ctx, team_id, agent_id)
    scheme = await issued_scheme(ctx, team_id, await cycles.cycle_scheme(ctx, cycle))
    return goals_document(cycle, scheme, agent_id, agent.position)


async def list_goals(ctx: ServiceContext, team: Team, cycle: c.Cycle) -> list[dict[str, Any]]:
    """Return every current agent's goals for the month (status and targets)."""
    scheme = with_team_targets(await cycles.cycle_scheme(ctx, cycle), team.kpi_targets)
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        agents = await team_agents(conn, team.team_id)
    return [goals_document(cycle, scheme, a["agent_id"], a["position"]) for a in agents]


async def issued_scheme(ctx: ServiceContext, team_id: str, scheme: Scheme) -> Scheme:
    # Agents are issued the targets they are scored against: the team's own over the scheme's.
    return with_team_targets(scheme, (await get_team(ctx, team_id)).kpi_targets)


async def issued_targets_of(ctx: ServiceContext, team_id: str, period: str, agent_id: str
                   ) -> tuple[Scheme, Agent]:
    scheme = await cycles.pinned_scheme(ctx, team_id, period)
    return (await issued_scheme(ctx, team_id, scheme),
            await member(ctx, team_id, agent_id))


def invitations_document(cycle: c.Cycle, rater_id: str | None = None) -> list[dict[str, Any]]:
    """Render the cycle's invitations (one rater's only, when named) with what they rated."""
    return [
        {"rater_id": rater, "rater_role": role, "agent_ids": sorted(agents),
         "submitted": sorted(a for a in agents if (a, role, rater) in cycle.evaluations)}
        for (rater, role), agents in sorted(cycle.invitations.items())
        if rater_id is None or rater == rater_id
    ]
