"""The live feed as Server-Sent Events, over a real HTTP server: resume, filters, heartbeats,
and a clean end when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from service.api.stream import open_streams
from service.store.database import Database
from service.store.event_store import NewEvent, append, stream_version
from tests.support.scenario import ADMIN
from tests.support.server import free_port

NOW = datetime(2026, 11, 3, tzinfo=UTC)
SSE = {**ADMIN, "Accept": "text/event-stream"}


@pytest.fixture(scope="module")
async def live_url(app_client: httpx.AsyncClient) -> AsyncIterator[str]:
    """The session's app behind a real uvicorn server on a loopback port."""
    port = free_port()
    config = uvicorn.Config(app_client.app, host="127.0.0.1", port=port,  # type: ignore[attr-defined]
                            lifespan="off", log_config=None, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)


class Messages:
    """Parse an SSE response into messages: {"id", "data", "comment"}."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> dict[str, Any]:
        message: dict[str, Any] = {}
        async for line in self.lines:
            if line == "":
                if message:
                    return message
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                message["comment"] = value
            else:
                message[field] = value
        raise EOFError

    async def event(self, timeout: float = 10) -> dict[str, Any]:
        """Return the next message that carries data (skipping retry and heartbeats)."""
        while True:
            message = await self.next(timeout)
            if "data" in message:
                return message


@asynccontextmanager
async def stream(url: str, headers: dict[str, str] | None = None,
                 **params: Any) -> AsyncIterator[Messages]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=20)) as client, \
            client.stream("GET", f"{url}/v1/events/stream", params=params,
                          headers=headers or SSE) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Messages(response)


async def _append(db: Database, stream_id: str, n: int, start: int) -> None:
    async with db.connection() as conn, conn.transaction():
        version = await stream_version(conn, stream_id)
        await append(conn, stream_id, [NewEvent("SseTested", {"i": start + i}) for i in range(n)],
                     expected_version=version, metadata={}, recorded_at=NOW)


async def test_the_stream_resumes_from_last_event_id_without_gaps_or_repeats(
    live_url: str, db: Database, uid: str
) -> None:
    kind = f"sse{uid}"
    received: list[dict[str, Any]] = []
    async with stream(live_url, stream_type=kind) as messages:
        first = await messages.next()
        assert first == {"retry": "2000"}
        await _append(db, f"{kind}:1", 3, 0)
        await _append(db, f"{kind}:2", 2, 3)
        for _ in range(5):
            received.append(await messages.event())
    assert [orjson.loads(m["data"])["data"]["i"] for m in received] == [0, 1, 2, 3, 4]
    # Each message's id is the event's feed cursor.
    assert all(orjson.loads(m["data"])["cursor"] == m["id"] for m in received)

    # Disconnected; more events are committed meanwhile (and some of another stream type).
    await _append(db, f"{kind}:1", 2, 5)
    await _append(db, f"other{uid}:1", 2, 0)
    await _append(db, f"{kind}:3", 2, 7)
    resumed: list[int] = []
    # A reconnecting EventSource repeats its URL: Last-Event-ID wins over ?after=.
    async with stream(live_url, headers={**SSE, "Last-Event-ID": received[2]["id"]},
                      stream_type=kind, after=received[0]["id"]) as messages:
        for _ in range(6):
            resumed.append(orjson.loads((await messages.event())["data"])["data"]["i"])
    assert resumed == [3, 4, 5, 6, 7, 8]

    # ?after= starts a first connection after a cursor; empty means from the first event.
    async with stream(live_url, stream_type=kind, after=received[3]["id"]) as messages:
        after = [orjson.loads((await messages.event())["data"])["data"]["i"] for _ in range(5)]
    assert after == [4, 5, 6, 7, 8]
    async with stream(live_url, stream_type=kind, after="") as messages:
        assert orjson.loads((await messages.event())["data"])["data"]["i"] == 0


async def test_heartbeats_carry_the_position_and_a_disconnect_ends_the_stream(
    live_url: str, db: Database, uid: str, app_client: httpx.AsyncClient
) -> None:
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    await _no_open_streams(ctx)  # the other tests' streams end within a poll or two
    before = open_streams(ctx)
    async with stream(live_url, stream_type=f"quiet{uid}", heartbeat="0.5",
                      after="") as messages:
        await _append(db, f"noise{uid}:1", 1, 0)
        heartbeat = await messages.next()
        while "comment" not in heartbeat:
            heartbeat = await messages.next()
        assert heartbeat["comment"] == "heartbeat"
        # Filtered out events are passed: resuming from the heartbeat's id skips them.
        assert heartbeat["id"]
        assert open_streams(ctx) == before + 1
    await _no_open_streams(ctx)  # the server notices at its next poll or heartbeat


async def _no_open_streams(ctx: Any) -> None:
    for _ in range(200):
        if open_streams(ctx) == 0:
            return
        await asyncio.sleep(0.05)
    assert open_streams(ctx) == 0, "a stream went on after its client disconnected"


async def test_the_stream_is_only_for_clients_that_accept_it(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.get("/v1/events/stream", headers=ADMIN)
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    bad = await app_client.get("/v1/events/stream",
                               headers={**SSE, "Last-Event-ID": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "Last-Event-ID"
    assert (await app_client.get("/v1/events/stream?heartbeat=0", headers=SSE)
            ).status_code == 422
    assert (await app_client.get("/v1/events/stream")).status_code == 401
