"""Process monitoring and rater calibration for managers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response

from service.api.auth import allow, ensure_manager_of
from service.api.deps import service_context
from service.api.params import IdPath, PeriodText
from service.api.routing import Router
from service.api.schemas import CalibrationOut, OverviewOut
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.domain.periods import check_period
from service.domain.principal import Principal
from service.queries import calibration as calibration_query
from service.queries import monitoring
from service.queries.directory import get_team

router = Router(prefix="/v1/teams/{team_id}", tags=["monitoring"])

#: CSV: the raters (the self-vs-manager gaps are reporting.self_manager_gaps).
CALIBRATION_COLUMNS = ("team_id", "period", "rater_id", "rater_role", "count", "mean",
                       "stddev", "min", "max", "baseline", "deviation", "flag", "reason")


@router.get("/overview", response_model=OverviewOut)
async def overview(
    team_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager")],
    months: Annotated[int, Query(ge=1, le=36)] = monitoring.OVERVIEW_MONTHS,
) -> dict[str, Any]:
    """Return the team's latest months, newest first: status and what drifts from the plan."""
    ctx = service_context(request)
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    return await monitoring.team_overview(ctx, team, months)


@router.get("/cycles/{period}/calibration", response_model=CalibrationOut,
            responses=CSV_ANSWER)
async def calibration(
    team_id: IdPath, period: PeriodText, request: Request,
    principal: Annotated[Principal, allow("manager", reads=False)],
) -> dict[str, Any] | Response:
    """Return each rater's mean and spread against the others, flags for raters too lenient
    or too strict, and the self-vs-manager gap per agent (admins and the team's managers;
    CSV: the raters)."""
    ctx = service_context(request)
    check_period(period, ctx.clock())
    team = await get_team(ctx, team_id)
    ensure_manager_of(principal, team.manager_ids)
    document = await calibration_query.calibration(ctx, team_id, period)
    if wants_table(request):
        return table_response(request, ({"team_id": team_id, "period": period, **r}
                             for r in document["raters"]),
                            CALIBRATION_COLUMNS, f"calibration-{team_id}-{period}")
    return document
