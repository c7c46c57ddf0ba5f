"""Feedback communication after publication: classification grid and interviews."""

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
    ClassificationOut,
    InterviewIn,
    InterviewList,
    InterviewOut,
    InterviewRecordIn,
    OutlineIn,
)
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import feedback as commands
from service.domain import feedback as f
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.queries import cycles
from service.queries import feedback as reads
from service.queries import release as release_reads
from service.queries.directory import get_team

router = Router(prefix="/v1/teams/{team_id}/cycles/{period}", tags=["feedback"])
INTERVIEW = "/interviews/{agent_id}"

CLASSIFICATION_COLUMNS = ("team_id", "period", "agent_id", "name", "rank", "score", "band",
                          "trend", "previous_score", "delta", "category", "focus")
#: CSV: the interviews, then the evaluated agents with none planned ("unscheduled").
INTERVIEW_COLUMNS = ("team_id", "period", "agent_id", "manager_id", "status", "starts_at",
                     "ends_at", "place", "participants", "outline", "recorded_at",
                     "acknowledged_at")


@router.get("/feedback/classification", response_model=ClassificationOut,
            responses={**CSV_ANSWER, 409: {"description": "the month is not published yet"}})
async def classification(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any] | Response:
    """Classify a published month's agents by result band and trend (or CSV; 409 before
    publication)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    document = await reads.classification(ctx, team_id, period)
    if wants_table(request):
        return table_response(request, ({"team_id": team_id, "period": period, **i}
                             for i in document["items"]),
                            CLASSIFICATION_COLUMNS, f"classification-{team_id}-{period}")
    return document


@router.get("/interviews", response_model=InterviewList, responses=CSV_ANSWER)
async def list_interviews(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any] | Response:
    """Return the month's interviews and the evaluated agents still without one held (or
    CSV)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    cycle = await cycles.get_cycle(ctx, team_id, period)
    rows = await reads.interview_rows(ctx, team_id, period)
    items = [dict(r) for r in rows]
    missing = reads.missing_interviews(cycle, rows)
    waiting, due = await release_reads.waiting_for_result(ctx, cycle)
    if wants_table(request):
        planned = {i["agent_id"] for i in items}
        return table_response(
            request, [{"team_id": team_id, "period": period, **r} for r in items
             + [m for m in missing if m["agent_id"] not in planned]],
            INTERVIEW_COLUMNS, f"interviews-{team_id}-{period}")
    return {"team_id": team_id, "period": period, "items": items, "missing": missing,
            "waiting_for_result": waiting, "release_due_at": due}


@router.get(INTERVIEW, response_model=InterviewOut)
async def get_interview(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> dict[str, Any]:
    """Return an agent's interview: plan, outline, record, acknowledgement."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    return await reads.get_interview(ctx, team_id, period, agent_id)


@router.post(INTERVIEW, response_model=InterviewOut,
             responses={201: {"model": InterviewOut, "description": "scheduled"}})
async def schedule_interview(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: InterviewIn, request: Request,
    response: Response, principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Schedule (201) or move (200) an interview; 409 naming the clash when the manager is
    already in another interview then."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    manager_id = body.manager_id or principal.subject
    if principal.role == "manager" and manager_id != principal.subject:
        raise Problem(403, "a manager schedules their own interviews", kind="out-of-scope")
    if manager_id not in team.manager_ids:
        raise Problem(422, f"{manager_id} is not a manager of team {team_id}",
                      errors=[{"field": "manager_id", "reason": "not a manager of this team"}])
    document, created = await commands.schedule(ctx, caller(principal, request), f.Schedule(
        team_id=team_id, period=period, agent_id=agent_id, manager_id=manager_id,
        starts_at=body.starts_at, ends_at=body.ends_at, place=body.place,
        participants=body.participants,
    ))
    response.status_code = 201 if created else 200
    return document


@router.put(INTERVIEW + "/outline", response_model=InterviewOut)
async def prepare_outline(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: OutlineIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Prepare the interview outline: objective, sub-objectives, questions in order."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    return await commands.outline(
        ctx, caller(principal, request), team_id, period, agent_id,
        commands.Outline(body.objective, tuple(body.sub_objectives), tuple(body.questions)),
        principal.subject,
    )


@router.put(INTERVIEW + "/record", response_model=InterviewOut)
async def record_interview(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: InterviewRecordIn,
    request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Record the held interview: the four questions, agreed actions, next cycle's plan."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    record = f.Record(
        expectations=body.expectations, achievements=body.achievements, reasons=body.reasons,
        improvements=body.improvements, next_cycle_plan=body.next_cycle_plan, notes=body.notes,
        agreed_actions=[f.AgreedAction(action=a.action, due_date=a.due_date)
                        for a in body.agreed_actions],
    )
    return await commands.record(ctx, caller(principal, request), team_id, period, agent_id,
                                 record, principal.subject)


@router.post(INTERVIEW + "/acknowledge", response_model=InterviewOut)
async def acknowledge_interview(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("agent")], body: AcknowledgeIn | None = None,
) -> dict[str, Any]:
    """Acknowledge the record of one's own interview (the agent only)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await get_team(ctx, team_id)
    if principal.role != "agent" or principal.subject != agent_id:
        raise Problem(403, f"only agent {agent_id} can acknowledge their interview",
                      kind="out-of-scope")
    return await commands.acknowledge(ctx, caller(principal, request), team_id, period,
                                      agent_id, principal.subject,
                                      body.comment if body else None)
