"""The pages' "Download CSV" and "Download Excel" links (issue 21).

A link cannot send an ``Accept`` header, so the format is in the path. Each download runs the
checks of its API list (the route's roles, ``service.api.access``), reads through
``service/queries/`` and writes the rows with the API's one table writer
(``service.api.tabular``), the same columns and the same file for the same caller: like the
API's first page, a ledger or payroll download holds at most ``MAX_LIMIT`` rows.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from service.api import access
from service.api.deps import Ctx
from service.api.pagination import MAX_LIMIT
from service.api.params import IdQuery
from service.api.ranking_table import ranking_table
from service.api.tabular import table_answer
from service.queries import sanctions as ledger_reads
from service.queries.directory import team_locales
from service.ui.render import UiRoute
from service.ui.routes import Id, Manager, Month, MonthQuery, Viewer, month_read, team_of

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)
Kind = Literal["csv", "xlsx"]


@router.get("/teams/{team_id}/months/{period}/ranking.{kind}")
async def ranking_download(
    team_id: Id, period: Month, kind: Kind, ctx: Ctx, principal: Viewer,
) -> Response:
    """Download a month's ranking as CSV or Excel."""
    team = await team_of(ctx, principal, team_id)
    read = await month_read(ctx, principal, team, period)
    return ranking_table(ctx, kind, read.document)


@router.get("/sanctions.{kind}")
async def sanctions_download(
    kind: Kind, ctx: Ctx, principal: Viewer, team_id: IdQuery = None,
    period: MonthQuery = None,
) -> Response:
    """Download the ledger (a team's, a month's, or all one may read) as CSV or Excel."""
    filters = await access.sanction_filters(ctx, principal, team_id=team_id, period=period,
                                            agent_id=None)
    async with ctx.db.connection() as conn:
        items = await ledger_reads.list_items(conn, filters, ctx.clock())
    items = items[:MAX_LIMIT]
    return table_answer(kind, [ledger_reads.table_row(i) for i in items],
                        ledger_reads.SANCTION_COLUMNS, "sanctions", money=("amount",),
                        sheets_by="team_id", locales=await team_locales(ctx, items))


@router.get("/payroll/{period}.{kind}")
async def payroll_download(
    period: Month, kind: Kind, ctx: Ctx, principal: Manager, team_id: IdQuery = None,
) -> Response:
    """Download a month's payroll (a team's, or every team one manages) as CSV or Excel."""
    filters = await access.sanction_filters(ctx, principal, team_id=team_id, period=period,
                                            agent_id=None)
    async with ctx.db.connection() as conn:
        document = await ledger_reads.payroll(conn, filters, ctx.clock())
    suffix = f"-{team_id}" if team_id else ""
    lines = document["lines"][:MAX_LIMIT]
    return table_answer(kind, [ledger_reads.table_row(line) for line in lines],
                        ledger_reads.PAYROLL_COLUMNS, f"payroll-{period}{suffix}",
                        money=("amount", "effect"), sheets_by="team_id",
                        locales=await team_locales(ctx, lines))
