"""Participatory goals: each agent's issued targets, acknowledged or disputed, disputes resolved.

Acknowledging and disputing are the agent's own acts: nobody else, admins included, can do them
on the agent's behalf (an acknowledgement by someone else would say nothing about whether the
agent accepts the targets).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response

from service.api.auth import allow, ensure_manager_of, ensure_self_or_manager
from service.api.deps import caller, service_context
from service.api.params import IdPath, PeriodText
from service.api.problems import Problem
from service.api.routing import Router
from service.api.schemas import (
    AcknowledgeIn,
    DisputeIn,
    GoalsList,
    GoalsOut,
    ResolveIn,
)
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import goals as commands
from service.domain.goals import TargetAdjustment
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.queries import cycles
from service.queries import goals as reads
from service.queries.directory import get_team

router = Router(prefix="/v1/teams/{team_id}/cycles/{period}/goals", tags=["goals"])

#: CSV: one row per agent and target (a scheme's targets differ by position).
GOAL_COLUMNS = ("team_id", "period", "agent_id", "position", "scheme_id", "scheme_version",
                "issued_at", "status", "acknowledged_at", "target_name", "kind", "direction",
                "target", "floor", "weight", "unit", "adjusted")


def ensure_is_agent(principal: Principal, agent_id: str, what: str) -> None:
    """Refuse (403) anyone but the agent themself: some acts are personal."""
    if principal.role != "agent" or principal.subject != agent_id:
        raise Problem(403, f"only agent {agent_id} can {what}", kind="out-of-scope")


@router.get("", response_model=GoalsList, responses=CSV_ANSWER)
async def list_goals(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any] | Response:
    """Return every current agent's targets and whether they acknowledged them (or CSV)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    cycle = await cycles.get_cycle(ctx, team_id, period)
    items = await reads.list_goals(ctx, team, cycle)
    if wants_table(request):
        return table_response(
            request, ({**goals, **target, "target_name": name}
             for goals in items for name, target in goals["targets"].items()),
            GOAL_COLUMNS, f"goals-{team_id}-{period}")
    return {"team_id": team_id, "period": period, "items": items}


@router.get("/{agent_id}", response_model=GoalsOut)
async def get_goals(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> dict[str, Any]:
    """Return the targets issued to an agent (scheme version and position), and their status."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    return await reads.get_goals(ctx, team_id, period, agent_id)


@router.post("/{agent_id}/acknowledge", response_model=GoalsOut)
async def acknowledge(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("agent")], body: AcknowledgeIn | None = None,
) -> dict[str, Any]:
    """Acknowledge one's own targets as issued (the agent only)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await get_team(ctx, team_id)
    ensure_is_agent(principal, agent_id, "acknowledge their goals")
    return await commands.acknowledge(ctx, caller(principal, request), team_id, period,
                                      agent_id, body.comment if body else None)


@router.post("/{agent_id}/dispute", response_model=GoalsOut)
async def dispute(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: DisputeIn, request: Request,
    principal: Annotated[Principal, allow("agent")],
) -> dict[str, Any]:
    """Dispute one's own targets with a comment (the agent only); a manager resolves it."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await get_team(ctx, team_id)
    ensure_is_agent(principal, agent_id, "dispute their goals")
    return await commands.dispute(ctx, caller(principal, request), team_id, period, agent_id,
                                  kpis=body.kpis, comment=body.comment)


@router.post("/{agent_id}/resolve", response_model=GoalsOut)
async def resolve(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: ResolveIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Resolve an agent's dispute: adjust targets for this cycle's scoring, or keep them."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    adjustments = {k: TargetAdjustment(target=v.target, floor=v.floor)
                   for k, v in body.targets.items()}
    return await commands.resolve(ctx, caller(principal, request), team_id, period, agent_id,
                                  decision=body.decision, adjustments=adjustments,
                                  reason=body.reason, resolved_by=principal.subject)
