"""Read-your-writes waits (service.queries.wait): for a position a write returned, for a whole
projection, or only for the stream a read is about; and never longer than the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from service.context import ServiceContext
from service.projections.base import Projection, Tables
from service.projections.runner import ProjectionRunner
from service.queries.wait import wait
from service.store.database import Database
from service.store.event_store import NewEvent, RecordedEvent, append
from tests import conftest

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}}


def _ctx(db: Database, runner: ProjectionRunner | None = None) -> ServiceContext:
    return ServiceContext(settings=conftest.test_settings(), db=db, runner=runner)


def follower(uid: str) -> Projection:
    class Follower(Projection):
        name = f"follower_{uid}"
        version = 1
        stream_types = (f"fresh{uid}",)
        tables: dict[str, str] = {}

        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            """Apply nothing: this projection's checkpoint is set by hand."""

    return Follower()


async def test_a_stream_wait_ignores_other_streams_the_projection_has_not_reached(
    db: Database, uid: str
) -> None:
    projection = follower(uid)
    mine, other = f"fresh{uid}:mine", f"fresh{uid}:other"
    async with db.connection() as conn:
        await append(conn, mine, [NewEvent("Happened", {})], expected_version=0,
                     metadata=META, recorded_at=NOW)
        reached = await conn.fetchrow(
            "SELECT tx_id, position FROM event WHERE stream_id = $1", mine)
        await append(conn, other, [NewEvent("Happened", {})], expected_version=0,
                     metadata=META, recorded_at=NOW)
        # The projection has applied everything up to mine's event, not other's.
        await conn.execute(
            "INSERT INTO projection_checkpoint (name, generation, code_version, status, tx_id,"
            " position) VALUES ($1, 1, 1, 'live', $2, $3)",
            projection.name, reached["tx_id"], reached["position"])
    try:
        ctx = _ctx(db)
        assert await wait(ctx, projection, timeout=0.05, stream=mine)
        assert not await wait(ctx, projection, timeout=0.05, stream=other)
        assert not await wait(ctx, projection, timeout=0.05)
        assert await wait(ctx, projection, timeout=0.05, stream=f"fresh{uid}:no")
        # A projection with no live checkpoint has applied nothing.
        assert not await wait(ctx, follower(uid + "n"), timeout=0.05, stream=mine)
        # By position: mine's event is applied, other's (written after it) is not.
        assert await wait(ctx, projection, at=reached["position"], timeout=0.05)
        assert not await wait(ctx, projection, at=reached["position"] + 1, timeout=0.05)
    finally:
        async with db.connection() as conn:
            await conn.execute("DELETE FROM projection_checkpoint WHERE name = $1",
                               projection.name)


async def _append(db: Database, stream: str, version: int) -> int:
    async with db.connection() as conn:
        written = await append(conn, stream, [NewEvent("Happened", {})],
                               expected_version=version, metadata=META, recorded_at=NOW)
    return written.position


async def test_a_write_then_a_wait_returns_once_the_projection_has_the_position(
    db: Database, uid: str
) -> None:
    projection = follower(uid)
    runner = ProjectionRunner(db, [projection], poll_seconds=0.05)
    ctx = _ctx(db, runner)
    runner.start()
    try:
        position = await _append(db, f"fresh{uid}:a", 0)
        assert await wait(ctx, projection, at=position, timeout=10)
        async with db.connection() as conn:
            applied = await conn.fetchval(
                "SELECT position FROM projection_checkpoint WHERE name = $1 AND status = 'live'",
                projection.name)
        assert applied >= position
    finally:
        await runner.stop()
        async with db.connection() as conn:
            await conn.execute("DELETE FROM projection_checkpoint WHERE name = $1",
                               projection.name)


async def test_a_wait_on_a_stopped_runner_times_out_cleanly(db: Database, uid: str) -> None:
    projection = follower(uid)
    runner = ProjectionRunner(db, [projection], poll_seconds=0.05)
    ctx = _ctx(db, runner)
    runner.start()
    try:
        assert await wait(ctx, projection, at=await _append(db, f"fresh{uid}:b", 0), timeout=10)
        await runner.stop()
        position = await _append(db, f"fresh{uid}:b", 1)
        started = asyncio.get_running_loop().time()
        # Bounded from outside too: a hang fails here instead of stalling the suite.
        assert not await asyncio.wait_for(wait(ctx, projection, at=position, timeout=0.2), 5)
        assert asyncio.get_running_loop().time() - started < 2
    finally:
        await runner.stop()
        async with db.connection() as conn:
            await conn.execute("DELETE FROM projection_checkpoint WHERE name = $1",
                               projection.name)
