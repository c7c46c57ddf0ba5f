"""Monthly cycles, evaluations, rankings and scorecards."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from service.api.access import (
    ensure_may_see_ranking,
    ensure_ranking_released,
    ensure_team_member_or_manager,
)
from service.api.auth import (
    allow,
    ensure_manager_of,
    ensure_rates_as,
    ensure_self_or_manager,
    rater_admission,
)
from service.api.deps import caller, service_context
from service.api.params import IdPath, PeriodText
from service.api.problems import Problem
from service.api.ranking_table import ranking_table
from service.api.routing import Router
from service.api.schemas import (
    CloseIn,
    CycleIn,
    CycleOut,
    EvaluationIn,
    EvaluationOut,
    MissingOut,
    RankingOut,
    ReopenIn,
    ScorecardOut,
)
from service.api.tabular import CSV_ANSWER, table_format
from service.commands import cycles as commands
from service.context import ServiceContext
from service.domain import cycle as c
from service.domain import policy
from service.domain.errors import NotFound
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.domain.reports import evaluation_document
from service.domain.scheme import RATER_ROLES
from service.queries import cycles as reads
from service.queries import monitoring, results
from service.queries.directory import get_team
from service.queries.documents import Document

router = Router(prefix="/v1/teams/{team_id}/cycles", tags=["cycles"])


def cycle_out(cycle: c.Cycle) -> CycleOut:
    """Render a cycle from its stream state."""
    closed = cycle.closed
    return CycleOut(
        team_id=cycle.team_id, period=cycle.period, status=cycle.status,
        scheme_id=cycle.scheme_id, scheme_version=cycle.scheme_version,
        deadline=cycle.deadline, opened_at=cycle.opened_at,
        closed_at=closed.closed_at if closed else None, published_at=cycle.published_at,
        publications=cycle.publications, revisions=cycle.revisions,
        forced=closed.forced if closed else None,
        close_reason=closed.reason if closed else None,
        missing_policy=closed.missing_policy if closed else None,
        missing_at_close=[MissingOut(**m.summary()) for m in closed.missing] if closed else [],
        evaluations_submitted=len(cycle.evaluations),
    )


def _json(document: Any) -> Response:
    return Response(orjson.dumps(document), media_type="application/json")


def _ranking(ctx: ServiceContext, request: Request, document: Document | dict[str, Any]
             ) -> Response:
    table = table_format(request)
    condition = request.headers.get("if-none-match", "")
    if not isinstance(document, Document):
        if _none_match_fails(condition, None):
            return Response(status_code=304)
        return ranking_table(ctx, table, document) if table else _json(document)
    # A frozen ranking changes only with its revision: pollers revalidate for a 304.
    etag = f'"{document.revision}{"-" + table if table else ""}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _none_match_fails(condition, etag):
        return Response(status_code=304, headers=headers)
    if not table:
        return Response(document.body, media_type="application/json", headers=headers)
    response = ranking_table(ctx, table, document)
    response.headers.update(headers)
    return response


def _none_match_fails(header: str, etag: str | None) -> bool:
    """Tell whether If-None-Match matches a current representation, so a GET answers 304.

    RFC 9110 13.1.2: "*" matches whenever a representation exists (this one, even with no
    ETag); otherwise the weak comparison, so W/ tags compare as strong ones.
    """
    if not header:  # no condition: most reads, nothing to split
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
    return "*" in tags or (etag is not None and etag in tags)


# The reads come first: FastAPI tries a router's routes in order (twice, through an included
# router), and a published ranking is the hottest request of all.
@router.get("/{period}/ranking", response_model=RankingOut,
            responses={**CSV_ANSWER,
                       304: {"description": "A closed month's ranking, unchanged since the"
                                            " ETag sent in If-None-Match"}})
async def get_ranking(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> Response:
    """Return the ranking, best first: frozen once closed, provisional while open (or CSV)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = None
    if not policy.unscoped(principal):
        team = await get_team(ctx, team_id)
        await ensure_team_member_or_manager(ctx, principal, team)
    read = await results.ranking(
        ctx, team_id, period, team=team,
        admit=lambda status: ensure_may_see_ranking(principal, status))
    if read is None:
        raise Problem(503, "the ranking is still being built; retry shortly",
                      headers={"Retry-After": "1"})
    await ensure_ranking_released(ctx, principal, team_id, period)
    return _ranking(ctx, request, read.document)


@router.get("/{period}/scorecards/{agent_id}", response_model=ScorecardOut)
async def get_scorecard(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> JSONResponse | Response:
    """Return every number of an agent's month and how it was computed."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    cycle = await reads.get_cycle(ctx, team_id, period)
    cards = await results.scorecards(
        ctx, team, [cycle], [agent_id],
        withhold=policy.sees_own_result_only_when_released(principal))
    card = cards.get((period, agent_id))
    if card is None:
        if cycle.status == "open":
            raise NotFound(f"agent {agent_id} is not in team {team.team_id}")
        raise Problem(404, f"agent {agent_id} has no scorecard in {team_id}/{period}")
    return _json(card)


async def _manager(ctx: ServiceContext, principal: Principal, team_id: str) -> None:
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)


@router.post("", response_model=CycleOut, status_code=201)
async def open_cycle(
    team_id: IdPath, body: CycleIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> CycleOut:
    """Open a team's month, pinned to the scheme version in force (409 if it exists)."""
    ctx = service_context(request)
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    cycle = await commands.open_cycle(ctx, caller(principal, request), team, body.period,
                                      body.scheme_id, body.scheme_version)
    return cycle_out(cycle)


@router.get("/{period}", response_model=CycleOut)
async def get_cycle(
    team_id: IdPath, period: PeriodText,
    request: Request, principal: Annotated[Principal, allow("manager", "agent")],
) -> CycleOut:
    """Return a cycle: status, scheme version, deadline, progress, and what drifts from the
    plan (missing evaluations, goals not acknowledged, interviews not held, quiet feeds...)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    await ensure_team_member_or_manager(ctx, principal, team)
    cycle = await reads.get_cycle(ctx, team_id, period)
    out = cycle_out(cycle)
    process = await monitoring.month_process(ctx, team, cycle)
    out.warnings = process.warnings
    out.goals_unacknowledged = process.goals_unacknowledged
    out.goals_disputed = process.goals_disputed
    out.interviews_missing = process.interviews_missing
    out.late_samples = process.late_samples
    return out


@router.put("/{period}/evaluations/{agent_id}/{rater_role}", response_model=EvaluationOut)
async def put_evaluation(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, rater_role: str, body: EvaluationIn,
    request: Request, principal: Annotated[Principal, allow("manager", "agent", "rater")],
) -> EvaluationOut:
    """Submit or revise an evaluation: self by the agent, manager by a team manager."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    if rater_role not in RATER_ROLES:
        raise Problem(422, f"unknown rater role {rater_role!r}",
                      errors=[{"field": "rater_role", "reason": f"one of {list(RATER_ROLES)}"}])
    ensure_rates_as(principal, rater_role, agent_id)
    command = commands.Evaluate(
        team_id=team_id, period=period, agent_id=agent_id, rater_role=rater_role,
        rater_id=principal.subject, scores=body.scores, comment=body.comment,
    )
    evaluation = await commands.evaluate(ctx, caller(principal, request), command,
                                         rater_admission(principal, rater_role))
    return EvaluationOut.model_validate(evaluation_document(team_id, period, evaluation))


@router.post("/{period}/close", response_model=CycleOut)
async def close_cycle(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager")], body: CloseIn | None = None,
) -> CycleOut:
    """Close the month (409 listing missing evaluations unless forced with a reason)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await _manager(ctx, principal, team_id)
    body = body or CloseIn()
    cycle = await commands.close(ctx, caller(principal, request), commands.Close(
        team_id, period, body.force, body.reason, body.missing_policy))
    out = cycle_out(cycle)
    # Fair months: what the manager should look at (empty under version 1).
    out.warnings = (c.fairness_warnings(cycle.closed.results) + c.goal_warnings(cycle.closed)
                    if cycle.closed else [])
    return out


@router.post("/{period}/publish", response_model=CycleOut)
async def publish_cycle(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> CycleOut:
    """Publish a closed month's ranking."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await _manager(ctx, principal, team_id)
    return cycle_out(await commands.publish(ctx, caller(principal, request), team_id, period))


@router.post("/{period}/reopen", response_model=CycleOut)
async def reopen_cycle(
    team_id: IdPath, period: PeriodText, body: ReopenIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> CycleOut:
    """Reopen a closed or published month for a correction (recorded with its reason)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    await _manager(ctx, principal, team_id)
    return cycle_out(await commands.reopen(ctx, caller(principal, request), team_id, period,
                                           body.reason))
