"""Read-your-writes waits: for a whole projection, or only for the stream a read is about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from service.projections.base import Projection, Tables
from service.projections.freshness import wait_caught_up
from service.store.database import Database
from service.store.event_store import NewEvent, RecordedEvent, append

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}}


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
        assert await wait_caught_up(db, [projection], timeout=0.05, stream_id=mine)
        assert not await wait_caught_up(db, [projection], timeout=0.05, stream_id=other)
        assert not await wait_caught_up(db, [projection], timeout=0.05)
        assert await wait_caught_up(db, [projection], timeout=0.05, stream_id=f"fresh{uid}:no")
        # A projection with no live checkpoint has applied nothing.
        assert not await wait_caught_up(db, [follower(uid + "n")], timeout=0.05, stream_id=mine)
    finally:
        async with db.connection() as conn:
            await conn.execute("DELETE FROM projection_checkpoint WHERE name = $1",
                               projection.name)
