"""A projection whose code version changes is rebuilt beside the live one and swapped in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from service.projections import checkpoints
from service.projections.runner import ProjectionRunner
from service.store.database import Database
from service.store.event_store import NewEvent, append
from tests.support.projections import event_log

NOW = datetime(2026, 11, 3, tzinfo=UTC)


async def _live(db: Database, name: str) -> checkpoints.Generation | None:
    async with db.connection() as conn:
        return await checkpoints.current(conn, name, "live")


async def test_version_bump_rebuilds_beside_the_live_generation(db: Database, uid: str) -> None:
    name, stream = f"bump_{uid}", f"bump{uid}:s"
    async with db.connection() as conn:
        await append(conn, stream, [NewEvent("Tested", {"i": i}) for i in range(50)],
                     expected_version=0, metadata={}, recorded_at=NOW)

    first = ProjectionRunner(db, [event_log(name, version=1)], poll_seconds=0.02)
    first.start()
    try:
        for _ in range(600):
            live = await _live(db, name)
            if live is not None and live.events_applied and await _count(db, name, stream) == 50:
                break
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
    v1 = await _live(db, name)
    assert v1 is not None and v1.code_version == 1

    second = ProjectionRunner(db, [event_log(name, version=2)], poll_seconds=0.02)
    second.start()
    seen_counts = []
    try:
        for _ in range(600):
            # Readers keep seeing the whole old table until the new one takes over.
            seen_counts.append(await _count(db, name, stream))
            live = await _live(db, name)
            if live is not None and live.code_version == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        await second.stop()
    v2 = await _live(db, name)
    assert v2 is not None and v2.code_version == 2 and v2.generation > v1.generation
    assert set(seen_counts) == {50}, "a reader saw a half-built table"
    assert await _count(db, name, stream) == 50
    async with db.connection() as conn:
        old_table = await conn.fetchval("SELECT to_regclass($1)", f"{name}__g{v1.generation}")
    assert old_table is None, "the retired generation's table was not dropped"


async def _count(db: Database, name: str, stream: str) -> int:
    async with db.connection() as conn:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
            return 0
        count: int = await conn.fetchval(
            f"SELECT count(*) FROM {name} WHERE stream_id = $1", stream)
        return count
