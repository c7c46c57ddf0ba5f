"""Results of published months: the sanctions ledger, improvement plans, reviews, payroll."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from pydantic import Field

from service.api.access import ensure_released, sanction_filters
from service.api.auth import allow, ensure_manager_of, ensure_self, ensure_self_or_manager
from service.api.deps import caller, service_context
from service.api.pagination import Paging, link, paginate, paging
from service.api.params import PERIOD_QUERY, CompoundIdPath, IdPath, IdQuery, PeriodText
from service.api.routing import Router
from service.api.schemas import (
    PayrollOut,
    PlanIn,
    PlanOut,
    PlanReviewIn,
    ReviewDecisionIn,
    ReviewOut,
    SanctionKind,
    SanctionList,
    SanctionStatus,
)
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import sanctions as commands
from service.context import ServiceContext
from service.domain import sanctions as s
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.queries import ledger as reads
from service.queries import sanctions as queries
from service.queries.directory import get_team, team_locales

router = Router(prefix="/v1", tags=["results"])
PLAN = "/teams/{team_id}/cycles/{period}/improvement-plans/{agent_id}"

FINAL = ("true: only entries that are final (the agent's appeal window passed unused, or"
         " their appeal was decided); false: only those not final yet")


class SanctionPage(SanctionList):
    """A page of ledger entries."""

    next: str | None = Field(default=None, description="pass as `after` for the next page")


class PayrollPage(PayrollOut):
    """A month's payroll: a page of its lines, and the totals of all of them."""

    next: str | None = Field(default=None, description="pass as `after` for the next page"
                                                       " of lines; the totals cover every line")


# The default order is the ledger's: month, team, publication, then the entry's place in it.
_LEDGER_ORDER = "period,team_id,publication,ordinal"
_SANCTION_PAGING = paging(
    ("period", "team_id", "publication", "ordinal", "agent_id", "kind", "status", "amount",
     "due_at", "rank", "created_at", "id"),
    _LEDGER_ORDER, ("id",))
_PAYROLL_PAGING = paging(
    ("period", "team_id", "publication", "ordinal", "agent_id", "kind", "amount", "effect",
     "rank", "created_at", "sanction_id"),
    _LEDGER_ORDER, ("sanction_id",))


async def _ordinals(ctx: ServiceContext, ids: Sequence[str]) -> dict[str, int]:
    """Return each entry's place in its publication's ledger (for the default order)."""
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT id, ordinal FROM sanctions WHERE id = ANY($1::text[])",
                                list(ids))
    return {r["id"]: r["ordinal"] for r in rows}


@router.get("/sanctions", response_model=SanctionPage, responses=CSV_ANSWER)
async def list_sanctions(
    request: Request, response: Response,
    principal: Annotated[Principal, allow("manager", "agent")],
    page: Annotated[Paging, Depends(_SANCTION_PAGING)],
    team_id: IdQuery = None,
    period: Annotated[str | None, PERIOD_QUERY] = None,
    agent_id: IdQuery = None,
    kind: SanctionKind | None = None,
    status: SanctionStatus | None = None,
    final: Annotated[bool | None, Query(description=FINAL)] = None,
) -> Response | dict[str, Any]:
    """List ledger entries (JSON or CSV): managers see their teams, agents their own."""
    ctx = service_context(request)
    filters = await sanction_filters(ctx, principal, team_id=team_id, period=period,
                                     agent_id=agent_id, kinds=[kind] if kind else None,
                                     status=status, final=final)
    async with ctx.db.connection() as conn:
        items = await queries.list_items(conn, filters, ctx.clock())
    ordinals = await _ordinals(ctx, [i["id"] for i in items])
    found = paginate(items, page, lambda i, f: ordinals.get(i["id"]) if f == "ordinal" else i[f])
    if wants_table(request):
        return link(table_response(request, [queries.table_row(i) for i in found.items],
                                   queries.SANCTION_COLUMNS,
                                   "sanctions", money=("amount",), sheets_by="team_id",
                                   locales=await team_locales(ctx, found.items)),
                    request, found.next, csv=True)
    link(response, request, found.next)
    return {"items": found.items, "next": found.next}


@router.get("/payroll", response_model=PayrollPage, responses=CSV_ANSWER)
async def payroll(
    request: Request, response: Response, principal: Annotated[Principal, allow("manager")],
    page: Annotated[Paging, Depends(_PAYROLL_PAGING)],
    period: Annotated[str, PERIOD_QUERY],
    team_id: IdQuery = None,
    agent_id: IdQuery = None,
    final: Annotated[bool | None, Query(description=FINAL)] = None,
) -> Response | dict[str, Any]:
    """Export a month's rewards and deductions per agent, each line traced to its ranking."""
    ctx = service_context(request)
    filters = await sanction_filters(ctx, principal, team_id=team_id, period=period,
                                     agent_id=agent_id, final=final)
    async with ctx.db.connection() as conn:
        document = await queries.payroll(conn, filters, ctx.clock())
    lines = document["lines"]
    ordinals = await _ordinals(ctx, [line["sanction_id"] for line in lines])
    found = paginate(lines, page, lambda i, f: ordinals.get(i["sanction_id"])
                     if f == "ordinal" else i[f])
    if wants_table(request):
        suffix = f"-{team_id}" if team_id else ""
        return link(table_response(request, [queries.table_row(line) for line in found.items],
                                   queries.PAYROLL_COLUMNS, f"payroll-{period}{suffix}",
                                   money=("amount", "effect"), sheets_by="team_id",
                                   locales=await team_locales(ctx, found.items)),
                    request, found.next, csv=True)
    link(response, request, found.next)
    return {**document, "lines": found.items, "next": found.next}


@router.get(PLAN, response_model=PlanOut)
async def get_plan(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> dict[str, Any]:
    """Return the improvement plan an agent owes, with its submissions, reviews and status."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    await ensure_released(ctx, principal, team_id, period)
    return await reads.get_plan(ctx, team_id, period, agent_id)


@router.put(PLAN, response_model=PlanOut)
async def submit_plan(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: PlanIn, request: Request,
    principal: Annotated[Principal, allow("agent")],
) -> dict[str, Any]:
    """Submit (or, after a rejection, resubmit) one's improvement plan; late ones are marked."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    ensure_self(principal, agent_id)
    await ensure_released(ctx, principal, team_id, period)
    return await commands.submit_plan(ctx, caller(principal, request), commands.SubmitPlan(
        team_id=team_id, period=period, agent_id=agent_id, root_causes=body.root_causes,
        actions=[s.PlanAction(action=a.action, due_date=a.due_date) for a in body.actions],
    ))


@router.post(PLAN + "/review", response_model=PlanOut)
async def review_plan(
    team_id: IdPath, period: PeriodText, agent_id: IdPath, body: PlanReviewIn,
    request: Request, principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Approve or reject the latest submission of a plan (a rejection says why)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    return await commands.review_plan(
        ctx, caller(principal, request), team_id, period, agent_id, decision=body.decision,
        comment=body.comment, reviewer_id=principal.subject,
    )


@router.get("/reassignment-reviews/{review_id}", response_model=ReviewOut,
            responses={409: {"description": "the review id names more than one review"}})
async def get_review(
    review_id: CompoundIdPath, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
) -> dict[str, Any]:
    """Return a reassignment review (`{team_id}:{period}:{agent_id}`) and its decision."""
    ctx = service_context(request)
    team, ledger, agent_id = await reads.find_review(ctx, review_id)
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    review = await reads.load_review(ctx, ledger, agent_id)
    return reads.review_document(ledger, review, agent_id)


@router.post("/reassignment-reviews/{review_id}/decision", response_model=ReviewOut)
async def decide_review(
    review_id: CompoundIdPath, body: ReviewDecisionIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Decide a reassignment review once: reassign or retain, with a note."""
    ctx = service_context(request)
    team, ledger, agent_id = await reads.find_review(ctx, review_id)
    ensure_manager_of(principal, team.manager_ids)
    return await commands.decide_review(
        ctx, caller(principal, request), team, ledger, agent_id, decision=body.decision,
        note=body.note, decided_by=principal.subject,
    )
