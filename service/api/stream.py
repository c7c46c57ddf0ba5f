"""The live feed as Server-Sent Events: GET /v1/events/stream.

Each event goes out as one SSE message whose ``id`` is the event's feed cursor, so a client
that reconnects (browsers' ``EventSource`` do so by themselves) sends it back as
``Last-Event-ID`` and resumes right after the last event it received: the cursor is the feed's,
so nothing is skipped or repeated. ``?after=`` does the same for a first connection (empty:
from the first event); with neither, the stream starts at the current end of the feed.

Heartbeats (an SSE comment) go out when nothing else has for ``heartbeat`` seconds; they carry
the current position as ``id``, so a filtered stream that saw nothing for a while still resumes
past the events it skipped. Database connections are borrowed per poll, never held while
waiting.

The response is sse-starlette's ``EventSourceResponse`` (BSD, kept current): it watches for the
client's disconnect and for the server's shutdown and ends the stream at once on either, which
a hand-made streaming response only noticed between polls. Its own pings are turned off
(``ping=0``): they would carry no ``id`` and go out on a fixed beat, where ours go out only in
silence and carry the position.

The response never ends by itself, so a client must ask for it: ``Accept: text/event-stream``
(what ``EventSource`` sends); other clients get 406 rather than a request that never returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import orjson
from fastapi import Header, Query, Request
from prometheus_client import Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent

from service import observability
from service.api.auth import allow
from service.api.deps import service_context
from service.api.events import EventTypes, StreamTypes, check_names, event_out, parse_cursor
from service.api.problems import Problem
from service.api.routing import Router
from service.background import woken
from service.context import ServiceContext
from service.domain.principal import Principal
from service.store.database import DATABASE_AWAY
from service.store.event_store import Cursor, head
from service.store.feed import CommitSignal, FeedPage, read_feed

router = Router(prefix="/v1", tags=["audit"])

MEDIA_TYPE = "text/event-stream"
BATCH = 500
#: The client's reconnection delay, sent once at the start (milliseconds).
RETRY_MS = 2000
#: Lines end in a bare newline (SSE allows three endings; this is the shortest).
SEP = "\n"
MIN_POLL = 0.02
MAX_POLL = 1.0

OPEN_STREAMS = Gauge("csperf_sse_streams", "Open Server-Sent Events streams.",
                     registry=observability.REGISTRY)


def commit_signal(ctx: ServiceContext) -> CommitSignal | None:
    """Return the process's commit signal, if the app installed one."""
    return ctx.extras.commit_signal


def open_streams(ctx: ServiceContext) -> int:
    """Return how many SSE streams this process is serving."""
    return ctx.extras.open_streams


@contextlib.contextmanager
def _counted(ctx: ServiceContext) -> Iterator[None]:
    ctx.extras.open_streams += 1
    OPEN_STREAMS.inc()
    try:
        yield
    finally:
        ctx.extras.open_streams -= 1
        OPEN_STREAMS.dec()


async def _messages(
    ctx: ServiceContext, cursor: Cursor, stream_types: list[str] | None,
    event_types: list[str] | None, heartbeat: float,
) -> AsyncIterator[ServerSentEvent | bytes]:
    loop = asyncio.get_running_loop()
    signal = commit_signal(ctx) or CommitSignal()
    with _counted(ctx), signal.listen() as wake:
        yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
        quiet_since = loop.time()
        idle = MIN_POLL
        while True:
            wake.clear()
            try:
                async with ctx.db.connection() as conn:
                    page = await read_feed(conn, cursor, BATCH, stream_types=stream_types,
                                           event_types=event_types)
            except DATABASE_AWAY:
                # Keep the client: heartbeats go on, and the stream resumes where it was.
                page = FeedPage([], cursor)
                idle = MAX_POLL
            cursor = page.next
            if page.events:
                # A page goes out as one write, not one per event.
                yield b"".join(
                    ServerSentEvent(orjson.dumps(event_out(e)).decode(), id=e.cursor.encode(),
                                    sep=SEP).encode()
                    for e in page.events
                )
                quiet_since = loop.time()
                idle = MIN_POLL
                if len(page.events) == BATCH:
                    continue
            elif loop.time() - quiet_since >= heartbeat:
                yield ServerSentEvent(comment="heartbeat", id=cursor.encode(), sep=SEP)
                quiet_since = loop.time()
            wait = min(idle, max(heartbeat - (loop.time() - quiet_since), 0.0))
            await woken(wake, wait)
            idle = min(idle * 2, MAX_POLL)


@router.get(
    "/events/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
                     "description": "an endless stream of `id:`/`data:` messages, one per"
                                    " event (data: the event as in GET /v1/events)"},
               406: {"description": "the client did not accept text/event-stream"}},
)
async def event_stream(
    request: Request,
    principal: Annotated[Principal, allow()],
    last_event_id: Annotated[str | None, Header(max_length=200,
                                                description="resume after this event")] = None,
    after: Annotated[str | None, Query(max_length=200, description=(
        "start after this feed cursor (empty: from the first event); without it and without"
        " Last-Event-ID, the stream starts at the current end of the feed"))] = None,
    stream_type: StreamTypes = None,
    event_type: EventTypes = None,
    heartbeat: Annotated[float, Query(ge=0.5, le=300,
                                      description="seconds of silence before a heartbeat")] = 15,
) -> EventSourceResponse:
    """Stream events live as Server-Sent Events, resuming from Last-Event-ID (the cursor)."""
    ctx = service_context(request)
    if MEDIA_TYPE not in request.headers.get("accept", ""):
        raise Problem(406, f"this endpoint streams {MEDIA_TYPE}; send Accept: {MEDIA_TYPE}",
                      kind="not-acceptable")
    stream_types = check_names(stream_type, "stream_type")
    event_types = check_names(event_type, "type")
    if last_event_id:  # a reconnection: the header wins over the URL's first position
        cursor = parse_cursor(last_event_id.strip(), "Last-Event-ID", "header")
    elif after is not None:
        cursor = parse_cursor(after, "after")
    else:
        async with ctx.db.connection() as conn:
            cursor = await head(conn)
    return EventSourceResponse(
        _messages(ctx, cursor, stream_types, event_types, heartbeat),
        headers={"Cache-Control": "no-cache"}, ping=0, sep=SEP,
    )
