"""Live metrics: ingestion, the quarantine, and live KPIs of agents and teams."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field, StrictInt

from service.api import metric_bodies as bodies
from service.api.access import ensure_team_member_or_manager
from service.api.auth import allow, ensure_manager_of, ensure_self_or_manager, ensure_source
from service.api.deps import service_context
from service.api.pagination import DEFAULT_LIMIT, LimitQuery, invalid, link
from service.api.params import PERIOD_QUERY, IdPath, IdQuery
from service.api.routing import Router
from service.api.schemas import Body
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.commands import metrics as commands
from service.context import ServiceContext
from service.domain import metrics as m
from service.domain.ids import ID_PATTERN
from service.domain.periods import PERIOD_PATTERN, check_period, period_of
from service.domain.principal import Principal
from service.domain.text import PRINTABLE_PATTERN
from service.projections.directory import Directory
from service.queries import kpis
from service.queries.cycles import month_scheme
from service.queries.directory import get_team
from service.queries.sanctions import managed_teams
from service.queries.wait import READ_TIMEOUT, wait
from service.store import metrics as store

router = Router(prefix="/v1", tags=["metrics"])


class RejectedOut(BaseModel):
    """A sample that was kept in the quarantine instead of counted."""

    index: int
    id: str
    reason: str = Field(description=f"One of {', '.join(m.REASONS)}.")
    detail: str


class IngestOut(BaseModel):
    """What became of a batch."""

    accepted: int
    duplicates: int
    rejected: list[RejectedOut]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.rsplit("/", 1)[1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


# The body is parsed by hand (one pass from bytes to models, and 413 for an oversized batch),
# so the document is told its shape here.
_INGEST_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(bodies.BATCH.json_schema())},
            "text/csv": {"schema": {
                "type": "string",
                "description": "a header row naming id, agent_id, metric, value, occurred_at"
                " (any order), then one sample a row; UTF-8 (a BOM is fine), LF or CRLF;"
                " decimals take a dot. Needs ?source=.",
                "example": "id,agent_id,metric,value,occurred_at\n"
                "conv-81723-r4,a-17,response_time_seconds,12.4,2026-11-03T09:15:02+09:00\n"}},
            "application/x-ndjson": {"schema": {
                "type": "string",
                "description": "one sample object a line, the fields of the JSON batch's"
                " samples. Needs ?source=."}},
        },
    },
}


@router.post(
    "/metrics", response_model=IngestOut, openapi_extra=_INGEST_DOC,
    responses={413: {"description": "more than 10,000 samples"},
               415: {"description": "a Content-Type other than JSON, CSV or NDJSON"},
               422: {"description": "a malformed body; `errors` names each bad field (and"
                     " line, for a file)"}},
)
async def post_metrics(
    request: Request, principal: Annotated[Principal, allow("ingest")],
    source: Annotated[str | None, Query(
        max_length=64, description="the sending system, for text/csv and"
        " application/x-ndjson bodies (a JSON batch names it in the body)")] = None,
) -> IngestOut:
    """Store a batch of samples once each; list those kept in the quarantine and why.

    The body is a JSON batch, a CSV file or NDJSON lines (see the request body); a file that
    cannot be read is refused whole with a 422 naming each bad line.
    """
    ctx = service_context(request)
    sender, samples = bodies.parse(request.headers.get("content-type"), await request.body(),
                                   source)
    ensure_source(principal, sender)
    outcome = await commands.ingest(ctx, sender, samples)
    return IngestOut(
        accepted=outcome.accepted,
        duplicates=outcome.duplicates,
        rejected=[RejectedOut(index=r.index, id=r.id, reason=r.reason, detail=r.detail)
                  for r in outcome.rejected],
    )


# -- quarantine ------------------------------------------------------------------------------


class QuarantinedOut(BaseModel):
    """A kept sample that was not counted, with its latest reason."""

    source: str
    id: str
    agent_id: str
    metric: str
    team_id: str | None = Field(default=None, description=(
        "The team the sample belongs to (the agent's team when it occurred); null when the"
        " agent is unknown."))
    period: str | None = Field(default=None, description="The team's month of the sample.")
    reason: str
    detail: str
    status: Literal["quarantined", "accepted"]
    attempts: int
    raw: dict[str, Any]
    first_received_at: datetime
    received_at: datetime
    replayed_at: datetime | None
    resolved_by: str | None


class QuarantineList(BaseModel):
    """A page of the quarantine, oldest first."""

    items: list[QuarantinedOut]
    next: str | None = Field(description="pass as `after` for the next page")


QUARANTINE_COLUMNS = ("source", "id", "agent_id", "metric", "team_id", "period", "reason",
                      "detail", "status",
                      "attempts", "first_received_at", "received_at", "replayed_at",
                      "resolved_by", "raw")


def _quarantined(row: Any) -> dict[str, Any]:
    item = dict(row)
    item["id"] = item.pop("sample_id")
    return item


@router.get("/metrics/quarantine", response_model=QuarantineList,
            responses=CSV_ANSWER)
async def list_quarantine(
    request: Request,
    response: Response,
    principal: Annotated[Principal, allow("manager")],
    source: IdQuery = None,
    agent_id: IdQuery = None,
    reason: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE_PATTERN)] = None,
    status: Literal["quarantined", "accepted", "all"] = "quarantined",
    team_id: IdQuery = None,
    period: Annotated[str | None, PERIOD_QUERY] = None,
    after: Annotated[str | None, Query(max_length=400, description="cursor from `next`")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> QuarantineList | Response:
    """List kept samples that were not counted, in arrival order: admins and readers see
    all, a manager the samples of the teams they manage (late ones of a closed month, say).

    Paged like every list (`limit`, `after`, `next`, `Link`); the quarantine is a queue, so its
    only order is arrival (no `sort`).
    """
    ctx = service_context(request)
    try:
        key = store.decode_after(after) if after else None
    except ValueError as exc:
        raise invalid("after", "not a cursor returned by this list") from exc
    if period is not None:
        check_period(period, ctx.clock())
    teams = await _readable_teams(ctx, principal, team_id)
    f = store.QuarantineFilter(source, agent_id, reason, None if status == "all" else status,
                               team_id=team_id, period=period, teams=teams)
    # A queue to work through, not a read of one's own writes: a replica may serve it.
    async with ctx.lag_tolerant().connection() as conn:
        rows = await store.list_quarantine(conn, f, limit, key)
    items = [_quarantined(r) for r in rows]
    next_cursor = store.encode_after(rows[-1]) if len(rows) == limit else None
    if wants_table(request):
        return link(table_response(request, items, QUARANTINE_COLUMNS, "metric-quarantine"),
                    request, next_cursor, csv=True)
    link(response, request, next_cursor)
    return QuarantineList(items=[QuarantinedOut(**i) for i in items], next=next_cursor)


async def _readable_teams(ctx: ServiceContext, principal: Principal, team_id: str | None
                          ) -> list[str] | None:
    """Return the teams whose quarantine a manager may read (None: every team); 403 others."""
    if principal.role != "manager":
        return None
    if team_id is not None:
        team = await get_team(ctx, team_id)
        ensure_manager_of(principal, team.manager_ids)
        return [team_id]
    # Samples of unknown agents belong to no team: only admins and readers see them.
    await wait(ctx, Directory(), timeout=READ_TIMEOUT)
    async with ctx.db.connection() as conn:
        return await managed_teams(conn, principal.subject)


class ReplayIn(Body):
    """POST /v1/metrics/quarantine/replay: which kept samples to try again (all by default)."""

    source: str | None = Field(default=None, pattern=ID_PATTERN)
    agent_id: str | None = Field(default=None, pattern=ID_PATTERN)
    reason: str | None = Field(default=None, max_length=64)
    ids: list[str] | None = Field(default=None, max_length=m.MAX_BATCH,
                                  description="sample ids (of any source unless one is given)")
    limit: StrictInt = Field(default=100_000, ge=1, le=1_000_000)


class StillRejectedOut(BaseModel):
    """A sample a replay could still not use."""

    source: str
    id: str
    reason: str
    detail: str


class ReplayOut(BaseModel):
    """What a replay did."""

    replayed: int = Field(description="samples now counted")
    already_stored: int = Field(description="samples that had been stored meanwhile")
    still_rejected: list[StillRejectedOut]


@router.post("/metrics/quarantine/replay", response_model=ReplayOut)
async def replay_quarantine(
    request: Request, principal: Annotated[Principal, allow()],
    body: ReplayIn | None = None,
) -> ReplayOut:
    """Try kept samples again with today's directory and cycles (admins)."""
    ctx = service_context(request)
    body = body or ReplayIn()
    f = store.QuarantineFilter(body.source, body.agent_id, body.reason, "quarantined", body.ids)
    result = await commands.replay(ctx, f, by=principal.subject, limit=body.limit)
    return ReplayOut(
        replayed=result.replayed,
        already_stored=result.already_stored,
        still_rejected=[StillRejectedOut(source=r.source, id=r.id, reason=r.reason,
                                         detail=r.detail) for r in result.still_rejected],
    )


# -- live KPIs ---------------------------------------------------------------------------------


class KpisOut(BaseModel):
    """Live KPI values and raw totals for a month (ratios are fractions; null is no data)."""

    period: str
    kpis: dict[str, float | None] = Field(
        description="the measured KPIs of the month's scheme version (for the agent's position),"
                    " by their formulas; a ratio with a zero denominator is null")
    totals: dict[str, float] = Field(description="sum of each raw metric (0 when none arrived)")
    observations: dict[str, int] = Field(description="samples of each raw metric")
    samples: int
    updated_at: datetime | None


class AgentKpisOut(KpisOut):
    """An agent's live KPIs: every sample of theirs in the month, whichever team it counted for."""

    agent_id: str
    team_id: str = Field(description="the agent's current team")
    by_team: list[dict[str, Any]] = Field(description="samples per team (after a transfer)")


class FeedOut(BaseModel):
    """When a source last sent a metric for the team."""

    metric: str
    source: str
    last_received_at: datetime
    last_occurred_at: datetime
    samples: int


class TeamKpisOut(KpisOut):
    """A team's live totals: samples of its agents while they were in the team."""

    team_id: str
    agents: int = Field(description="agents with samples counted for the team this month")
    feeds: list[FeedOut]


def _period(period: str | None, timezone: str, now: datetime) -> str:
    if period is None:
        return period_of(now, ZoneInfo(timezone))
    return check_period(period, now)


PeriodQuery = Annotated[
    str | None,
    Query(pattern=PERIOD_PATTERN, max_length=7, examples=["2026-11"],
          description="YYYY-MM in the team's time zone; the current month when left out"),
]


#: CSV of a month's KPIs: one row per KPI (the months before are reporting.kpi_history).
KPI_COLUMNS = ("period", "team_id", "agent_id", "kpi", "value", "samples", "updated_at")


def _kpi_table(request: Request, document: AgentKpisOut | TeamKpisOut, agent_id: str | None,
               name: str) -> Response:
    return table_response(
        request,
        ({"period": document.period, "team_id": document.team_id, "agent_id": agent_id,
          "kpi": kpi, "value": value, "samples": document.samples,
          "updated_at": document.updated_at} for kpi, value in document.kpis.items()),
        KPI_COLUMNS, name)


@router.get("/agents/{agent_id}/kpis", response_model=AgentKpisOut,
            responses=CSV_ANSWER)
async def agent_kpis(
    agent_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager", "agent")],
    period: PeriodQuery = None,
) -> AgentKpisOut | Response:
    """Return an agent's live KPIs for a month, or CSV (the agent, their team's managers,
    admins, readers)."""
    ctx = service_context(request)
    now = ctx.clock()
    # The month is read with the agent before the access check, unchecked (it is only a
    # guess, the team as held may change): nothing of it is answered until both pass.
    agent, team, read = await kpis.agent_and_team(
        ctx, agent_id, lambda held: period or period_of(now, ZoneInfo(held.timezone)))
    ensure_self_or_manager(principal, agent_id, team.manager_ids)
    month = _period(period, team.timezone, now)
    document = await kpis.agent_month(ctx, agent, team, month, read)
    out = AgentKpisOut(agent_id=agent_id, team_id=agent.team_id, period=month, **document)
    return (_kpi_table(request, out, agent_id, f"kpis-{agent_id}-{month}")
            if wants_table(request) else out)


@router.get("/teams/{team_id}/kpis", response_model=TeamKpisOut,
            responses=CSV_ANSWER)
async def team_kpis(
    team_id: IdPath, request: Request, principal: Annotated[Principal, allow("manager", "agent")],
    period: PeriodQuery = None,
) -> TeamKpisOut | Response:
    """Return a team's live totals and KPIs for a month, and when each feed last arrived (or
    CSV: the KPIs)."""
    ctx = service_context(request)
    team = await get_team(ctx, team_id)
    await ensure_team_member_or_manager(ctx, principal, team)
    month = _period(period, team.timezone, ctx.clock())
    scheme = await month_scheme(ctx, team, month)
    async with ctx.db.connection() as conn:
        document = await kpis.team_kpis(conn, team_id, month, scheme)
        feeds = await kpis.feeds(conn, team_id)
    out = TeamKpisOut(team_id=team_id, period=month, feeds=[FeedOut(**f) for f in feeds],
                      **document)
    return (_kpi_table(request, out, None, f"kpis-{team_id}-{month}")
            if wants_table(request) else out)
