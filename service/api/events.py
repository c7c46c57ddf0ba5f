"""The audit trail: the global event feed and one stream's history."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from service.api.auth import allow
from service.api.deps import service_context
from service.api.pagination import DEFAULT_LIMIT, LimitQuery, invalid, link
from service.api.problems import Problem
from service.api.routing import Router
from service.api.tabular import CSV_ANSWER, table_response, wants_table
from service.domain.principal import Principal
from service.store.event_store import Cursor, RecordedEvent, read_stream
from service.store.feed import event_document, read_feed

router = Router(prefix="/v1", tags=["audit"])

_NAME = r"^[A-Za-z0-9._:-]{1,100}$"
MAX_BIGINT = 2**63 - 1
StreamTypes = Annotated[
    list[str] | None,
    Query(max_length=20, description="only events of these stream types (`cycle`, `agent`, ..;"
                                     " repeat the parameter for several)"),
]
EventTypes = Annotated[
    list[str] | None,
    Query(alias="type", max_length=50,
          description="only events of these types (`CycleClosed`, ..; repeat for several)"),
]


def event_out(e: RecordedEvent) -> dict[str, Any]:
    """Render a stored event for the feed."""
    return event_document(e)


FEED_COLUMNS = ("position", "cursor", "event_id", "stream_id", "version", "type",
                "schema_version", "recorded_at", "data", "metadata")


def csv_row(item: dict[str, Any]) -> dict[str, Any]:
    """Render an event for CSV: its data and metadata as JSON text."""
    return {**item, "data": orjson.dumps(item["data"]).decode(),
            "metadata": orjson.dumps(item["metadata"]).decode()}


def parse_cursor(text: str | None, parameter: str, location: str = "query") -> Cursor:
    """Decode a feed cursor; refuse (422) text that is not one, naming the parameter."""
    try:
        cursor = Cursor.decode(text)
    except ValueError as exc:
        raise invalid(parameter, "not a cursor returned by this feed", location) from exc
    if max(cursor.tx_id, cursor.position) > MAX_BIGINT:
        raise invalid(parameter, "not a cursor returned by this feed", location)
    return cursor


def check_names(values: list[str] | None, parameter: str) -> list[str] | None:
    """Refuse (422) a filter value that cannot be a stream or event type name."""
    for value in values or ():
        if not re.fullmatch(_NAME, value):
            raise invalid(parameter, "a type name: 1 to 100 letters, digits, . _ : or -")
    return values or None


class EventOut(BaseModel):
    """A stored event."""

    position: int
    cursor: str = Field(description="resume the feed just after this event (`after=`)")
    event_id: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: str


class FeedOut(BaseModel):
    """A page of the global feed."""

    items: list[EventOut]
    next: str = Field(description="the cursor to pass as `after` for what follows; the feed "
                                  "never ends, so poll it again later (or use the SSE stream)")


class StreamOut(BaseModel):
    """A page of one stream's history."""

    stream_id: str
    version: int = Field(description="the stream's current version")
    items: list[EventOut]
    next: str | None = Field(description="pass as `after` for the next page; null at the end")


@router.get("/events", response_model=FeedOut, responses=CSV_ANSWER)
async def event_feed(
    request: Request,
    principal: Annotated[Principal, allow()],
    after: Annotated[str | None, Query(max_length=200, description="cursor from `next`")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    stream_type: StreamTypes = None,
    event_type: EventTypes = None,
) -> Response | dict[str, Any]:
    """Return events in global order after a cursor; `next` resumes without skips or repeats.

    Filtered by stream type and event type. The order is the feed's contract (the commit
    order), so it has no `sort`.
    """
    ctx = service_context(request)
    cursor = parse_cursor(after, "after")
    async with ctx.db.connection() as conn:
        page = await read_feed(conn, cursor, limit,
                               stream_types=check_names(stream_type, "stream_type"),
                               event_types=check_names(event_type, "type"))
    items = [event_out(e) for e in page.events]
    next_cursor = page.next.encode()
    if wants_table(request):
        response: Response = table_response(request, [csv_row(i) for i in items],
                                            FEED_COLUMNS, "events")
        return link(response, request, next_cursor, csv=True)
    return link(Response(orjson.dumps({"items": items, "next": next_cursor}),
                         media_type="application/json"), request, next_cursor)


@router.get("/streams/{stream_id}/events", response_model=StreamOut,
            responses=CSV_ANSWER)
async def stream_events(
    stream_id: Annotated[str, Path(max_length=300)], request: Request,
    principal: Annotated[Principal, allow()],
    after: Annotated[str | None, Query(max_length=20, pattern=r"^\d{1,9}$",
                                       description="the version of `next`")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Response | dict[str, Any]:
    """Return one stream's history in version order: who decided what, when and why."""
    ctx = service_context(request)
    if "\x00" in stream_id:
        raise Problem(404, "no such stream")
    after_version = int(after) if after else 0
    async with ctx.db.connection() as conn:
        events = await read_stream(conn, stream_id, after_version=after_version,
                                   limit=limit + 1)
        current = events[-1].version if events else None
        if len(events) > limit or not events:
            current = await conn.fetchval(
                "SELECT version FROM stream WHERE stream_id = $1", stream_id)
    if current is None:
        raise Problem(404, f"no stream {stream_id}")
    more = len(events) > limit
    events = events[:limit]
    next_cursor = str(events[-1].version) if more else None
    items = [event_out(e) for e in events]
    if wants_table(request):
        response: Response = table_response(request, [csv_row(i) for i in items],
                                            FEED_COLUMNS, "stream-events")
        return link(response, request, next_cursor, csv=True)
    return link(Response(orjson.dumps({"stream_id": stream_id, "version": current,
                                       "items": items, "next": next_cursor}),
                         media_type="application/json"), request, next_cursor)
