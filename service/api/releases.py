"""Releases of agents' results and their appeals (feedback before results)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response

from service.api.access import appeal_filters, ensure_appellant
from service.api.auth import allow, ensure_manager_of, ensure_self_or_manager
from service.api.deps import caller, service_context
from service.api.params import PERIOD_QUERY, CompoundIdPath, IdPath, IdQuery, PeriodText
from service.api.routing import Router
from service.api.schemas import AppealDecisionIn, AppealIn, AppealList, AppealOut, ReleaseOut
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import release as commands
from service.domain import release as r
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.queries import appeals as queries
from service.queries import release as reads
from service.queries.directory import get_team

router = Router(tags=["feedback"])
APPEAL_COLUMNS = ("appeal_id", "team_id", "period", "agent_id", "status", "reason", "filed_at",
                  "appeal_until", "decision", "note", "decided_by", "decided_at")
CYCLE = "/v1/teams/{team_id}/cycles/{period}"


def release_out(month: r.Month, state: r.AgentResult | None, agent_id: str) -> ReleaseOut:
    """Render whether an agent's result reached them, and the windows that follow."""
    return ReleaseOut(**reads.release_document(month, state, agent_id))


@router.get(CYCLE + "/releases/{agent_id}", response_model=ReleaseOut)
async def get_release(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> ReleaseOut:
    """Tell whether an agent's result of the month has been released to them."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team, cycle, (state, _) = await reads.release_reads(ctx, team_id, period, agent_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    return release_out(await reads.month_view(ctx, team_id, period, cycle), state, agent_id)


@router.post(CYCLE + "/releases/{agent_id}", response_model=ReleaseOut,
             responses={409: {"description": "the month is not published"}})
async def release_result(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> ReleaseOut:
    """Release an agent's result to them now (a manager of the team or an admin); once."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team, cycle, result = await reads.release_reads(ctx, team_id, period, agent_id)
    ensure_manager_of(principal, team.manager_ids)
    month = await reads.month_view(ctx, team_id, period, cycle)
    state = await commands.release(ctx, caller(principal, request), team_id, period, agent_id,
                                   by="manager", released_by=principal.subject, month=month,
                                   read=result)
    return release_out(month, state, agent_id)


@router.post(CYCLE + "/appeals/{agent_id}", response_model=AppealOut, status_code=201,
             responses={409: {"description": "unreleased, already appealed, or the window"
                                             " closed (saying when)"}})
async def file_appeal(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: AppealIn, request: Request,
    principal: Annotated[Principal, allow("agent")],
) -> dict[str, Any]:
    """Appeal one's own month, once, within ``appeal_days`` of the release (the agent only)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await get_team(ctx, team_id)
    ensure_appellant(principal, agent_id)
    filed = await commands.appeal(ctx, caller(principal, request), team_id, period, agent_id,
                                  by=principal.subject, reason=body.reason)
    return queries.appeal_document(filed, None)


@router.get("/v1/appeals", response_model=AppealList, responses=CSV_ANSWER)
async def list_appeals(
    request: Request, principal: Annotated[Principal, allow("manager", "agent")],
    team_id: IdQuery = None,
    period: Annotated[str | None, PERIOD_QUERY] = None,
    status: queries.AppealStatus | None = None,
) -> dict[str, Any] | Response:
    """List appeals (managers: their teams'; agents: their own), oldest first (or CSV)."""
    ctx = service_context(request)
    filters = await appeal_filters(ctx, principal, team_id=team_id, period=period,
                                   status=status)
    items = await queries.list_appeals(ctx, filters)
    if wants_table(request):
        return table_response(request, items, APPEAL_COLUMNS, "appeals")
    return {"items": items}


@router.post("/v1/appeals/{appeal_id}/decision", response_model=AppealOut,
             responses={409: {"description": "already decided"}})
async def decide_appeal(
    appeal_id: CompoundIdPath, body: AppealDecisionIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Decide an appeal: uphold (with a note) or amend (reopens the month for a correction);
    a manager of the team who is not the appellant, or an admin."""
    ctx = service_context(request)
    team_id, _, _ = await reads.find_appeal(ctx, appeal_id)
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    decided = await commands.decide(ctx, caller(principal, request), appeal_id,
                                    decision=body.decision, note=body.note,
                                    decided_by=principal.subject)
    state = await reads.load_result(ctx, decided.decision.team_id, decided.decision.period,
                                       decided.decision.agent_id)
    assert state is not None and state.appeal is not None
    return queries.appeal_document(state.appeal, decided.decision,
                                   decided.cycle.status if decided.cycle else None)
