"""The audit trail: the global event feed and one stream's history."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from service.api.auth import allow
from service.api.deps import context
from service.api.problems import Problem
from service.api.tabular import csv_response, wants_csv
from service.context import ServiceContext
from service.domain.principal import Principal
from service.store.event_store import Cursor, RecordedEvent, read_all, read_stream

router = APIRouter(prefix="/v1", tags=["audit"])
Ctx = Annotated[ServiceContext, Depends(context)]


def event_out(e: RecordedEvent) -> dict[str, Any]:
    """Render a stored event for the feed."""
    return {
        "position": e.position, "cursor": e.cursor.encode(), "event_id": str(e.event_id),
        "stream_id": e.stream_id, "version": e.version, "type": e.type,
        "schema_version": e.schema_version, "data": e.data, "metadata": e.metadata,
        "recorded_at": e.recorded_at.isoformat(),
    }


FEED_COLUMNS = ("position", "cursor", "event_id", "stream_id", "version", "type",
                "schema_version", "recorded_at", "data", "metadata")


@router.get("/events", response_model=None, responses={200: {"content": {"text/csv": {}}}})
async def event_feed(
    request: Request,
    ctx: Ctx,
    principal: Annotated[Principal, allow()],
    after: Annotated[str | None, Query(max_length=200, description="cursor from `next`")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    stream_type: Annotated[list[str] | None, Query(max_length=20)] = None,
) -> dict[str, Any] | Response:
    """Return events in global order after a cursor; `next` resumes without skips or repeats."""
    try:
        cursor = Cursor.decode(after)
    except ValueError as exc:
        raise Problem(422, "after is not a cursor returned by this feed",
                      errors=[{"field": "after", "reason": "not a valid cursor"}]) from exc
    async with ctx.db.connection() as conn:
        events = await read_all(conn, cursor, limit, stream_types=stream_type)
    next_cursor = events[-1].cursor if events else cursor
    items = [event_out(e) for e in events]
    if wants_csv(request):
        rows = [{**i, "data": orjson.dumps(i["data"]).decode(),
                 "metadata": orjson.dumps(i["metadata"]).decode()} for i in items]
        response = csv_response(rows, FEED_COLUMNS, "events")
        response.headers["X-Next-Cursor"] = next_cursor.encode()
        return response
    return {"items": items, "next": next_cursor.encode()}


@router.get("/streams/{stream_id}/events")
async def stream_events(
    stream_id: str, ctx: Ctx, principal: Annotated[Principal, allow()],
) -> dict[str, Any]:
    """Return one stream's history in version order: who decided what, when and why."""
    async with ctx.db.connection() as conn:
        events = await read_stream(conn, stream_id)
    if not events:
        raise Problem(404, f"no stream {stream_id}")
    return {"stream_id": stream_id, "version": events[-1].version,
            "items": [event_out(e) for e in events]}
