"""The pages' "Download CSV" and "Download Excel" links (issue 21).

A link cannot send an ``Accept`` header, so each download is a page route that calls the API
handler of the list, as the pages do, with the request asking for the chosen format: the API's
one negotiation (``service.api.tabular``) and the route's own rule decide the answer, exactly
as for a client of the JSON API.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from service.api import cycles as cycles_api
from service.api import sanctions as sanctions_api
from service.api.deps import Ctx
from service.api.pagination import MAX_LIMIT
from service.api.problems import Problem
from service.api.tabular import TABLE_MEDIA
from service.domain.ids import ID_PATTERN
from service.ui import api
from service.ui.render import UiRoute
from service.ui.routes import Id, Manager, Month, MonthQuery, Viewer

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)
Kind = Literal["csv", "xlsx"]
TeamQuery = Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)]


def asking(request: Request, kind: Kind) -> Request:
    """Return the request as if it had asked for the table format ``kind``."""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"accept"]
    headers.append((b"accept", TABLE_MEDIA[kind].encode()))
    return Request({**request.scope, "headers": headers}, request.receive)


def _table(result: object) -> Response:
    """Return a list handler's table answer (a handler asked for a table answers one)."""
    if not isinstance(result, Response):
        raise Problem(406, "the list answered JSON where a table was asked for")
    return result


@router.get("/teams/{team_id}/months/{period}/ranking.{kind}")
async def ranking_download(
    request: Request, team_id: Id, period: Month, kind: Kind, ctx: Ctx, principal: Viewer,
) -> Response:
    """Download a month's ranking as CSV or Excel."""
    response: Response = await api.call(
        principal, cycles_api.get_ranking, team_id=team_id, period=period,
        request=asking(request, kind), ctx=ctx, principal=principal)
    return response


@router.get("/sanctions.{kind}")
async def sanctions_download(
    request: Request, kind: Kind, ctx: Ctx, principal: Viewer,
    team_id: TeamQuery = None, period: MonthQuery = None,
) -> Response:
    """Download the ledger (a team's, a month's, or all one may read) as CSV or Excel."""
    return _table(await api.call(
        principal, sanctions_api.list_sanctions, request=asking(request, kind),
        response=Response(), ctx=ctx, principal=principal,
        page=sanctions_api._SANCTION_PAGING(limit=MAX_LIMIT, after=None, sort=None),
        team_id=team_id, period=period, agent_id=None, kind=None, status=None))


@router.get("/payroll/{period}.{kind}")
async def payroll_download(
    request: Request, period: Month, kind: Kind, ctx: Ctx, principal: Manager,
    team_id: TeamQuery = None,
) -> Response:
    """Download a month's payroll (a team's, or every team one manages) as CSV or Excel."""
    return _table(await api.call(
        principal, sanctions_api.payroll, request=asking(request, kind), response=Response(),
        ctx=ctx, principal=principal,
        page=sanctions_api._PAYROLL_PAGING(limit=MAX_LIMIT, after=None, sort=None),
        period=period, team_id=team_id, agent_id=None))
