"""Multi-rater evaluation: invitations per cycle, and the evaluations of a cycle.

Peer ratings are anonymous toward the evaluatee: an agent sees peers' scores without their ids
(here and on the scorecard); the team's managers, admins and readers see who rated whom.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Request, Response

from service.api.auth import allow, ensure_manager_of, ensure_self_or_manager
from service.api.deps import caller, service_context
from service.api.params import IdPath, IdQuery, PeriodText
from service.api.routing import Router
from service.api.schemas import EvaluationList, InvitationIn, InvitationList
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import goals as commands
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.domain.reports import evaluation_document
from service.queries import cycles, release
from service.queries import goals as reads
from service.queries.directory import get_team

router = Router(prefix="/v1/teams/{team_id}/cycles/{period}", tags=["raters"])

#: CSV: one row per invited agent, and one row per score (criteria differ between schemes,
#: so a column per criterion would change a BI tool's table from one month to the next).
INVITATION_COLUMNS = ("team_id", "period", "rater_id", "rater_role", "agent_id", "submitted")
EVALUATION_COLUMNS = ("team_id", "period", "agent_id", "rater_role", "rater_id", "revision",
                      "submitted_at", "criterion", "score", "comment")


@router.post("/invitations", response_model=InvitationList)
async def invite(
    team_id: IdPath, period: PeriodText, body: InvitationIn, request: Request,
    principal: Annotated[Principal, allow("manager")],
) -> dict[str, Any]:
    """Invite a peer, subordinate, customer or expert to rate agents of the cycle."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    cycle = await commands.invite(ctx, caller(principal, request), commands.Invite(
        team_id=team_id, period=period, rater_id=body.rater_id, rater_role=body.rater_role,
        agent_ids=body.agent_ids, invited_by=principal.subject,
    ))
    return {"team_id": team_id, "period": period,
            "items": reads.invitations_document(cycle, body.rater_id)}


@router.get("/invitations", response_model=InvitationList, responses=CSV_ANSWER)
async def list_invitations(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager", "rater")],
) -> dict[str, Any] | Response:
    """Return the cycle's invitations (or CSV): all for its managers, a rater's own for a
    rater."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    own = principal.subject if principal.role == "rater" else None
    if own is None:
        ensure_manager_of(principal, team.manager_ids)
    cycle = await cycles.get_cycle(ctx, team_id, period)
    items = reads.invitations_document(cycle, own)
    if wants_table(request):
        return table_response(
            request, ({"team_id": team_id, "period": period, **i, "agent_id": agent,
              "submitted": agent in i["submitted"]} for i in items for agent in i["agent_ids"]),
            INVITATION_COLUMNS, f"invitations-{team_id}-{period}")
    return {"team_id": team_id, "period": period, "items": items}


@router.get("/evaluations", response_model=EvaluationList, responses=CSV_ANSWER)
async def list_evaluations(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager", "agent")],
    agent_id: IdQuery = None,
) -> dict[str, Any] | Response:
    """Return the cycle's evaluations (or CSV): an agent sees their own, peers anonymous."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    if principal.role == "agent":
        agent_id = agent_id or principal.subject
    if agent_id is None:
        ensure_manager_of(principal, team.manager_ids)
    else:
        ensure_self_or_manager(principal, agent_id, team.manager_ids)
    cycle = await cycles.get_cycle(ctx, team_id, period)
    anonymous = principal.role == "agent"
    # Until their result is released (while open, too) an agent sees their self-evaluation
    # only: no anchoring on the manager's scores, nothing of the result given away.
    own_only = anonymous and await release.withheld(ctx, cycle, principal.subject)
    items = [
        evaluation_document(team_id, period, e,
                            anonymous=anonymous and e.rater_role == "peer")
        for (agent, role, rater), e in sorted(cycle.evaluations.items())
        if (agent_id is None or agent == agent_id) and not (own_only and role != "self")
    ]
    if wants_table(request):
        return table_response(
            request, ({**e, "criterion": criterion, "score": score}
             for e in items for criterion, score in sorted(e["scores"].items())),
            EVALUATION_COLUMNS, f"evaluations-{team_id}-{period}")
    return {"team_id": team_id, "period": period, "items": items}
