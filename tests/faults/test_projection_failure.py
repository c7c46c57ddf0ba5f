"""A projection that raises on one event stops there, says so, and resumes once fixed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import pytest

from service.projections import checkpoints
from service.projections.base import Projection, Tables
from service.projections.runner import ProjectionRunner
from service.store.database import Database
from service.store.event_store import NewEvent, RecordedEvent, append
from tests.support.projections import event_log

pytestmark = pytest.mark.faults
NOW = datetime(2026, 11, 3, tzinfo=UTC)


def picky(name: str, poison: str, *, broken: bool) -> Projection:
    """An event log that raises on events whose data names the poison, while broken."""
    base = type(event_log(name))

    class Picky(base):  # type: ignore[valid-type,misc]
        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            if broken and any(e.data.get("poison") == poison for e in events):
                raise RuntimeError("cannot handle this event")
            await super().apply(conn, events, tables)

    return Picky()


async def _wait(predicate, seconds: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_failing_projection_stops_at_the_event_and_resumes_when_fixed(
    db: Database, uid: str
) -> None:
    poison = f"p-{uid}"
    name, healthy_name = f"picky_{uid}", f"healthy_{uid}"
    stream = f"fail{uid}:s"
    async with db.connection() as conn:
        result = await append(
            conn, stream,
            [NewEvent("Tested", {"i": 0}), NewEvent("Tested", {"poison": poison}),
             NewEvent("Tested", {"i": 2})],
            expected_version=0, metadata={}, recorded_at=NOW,
        )
    bad_position = result.positions[1]
    healthy = event_log(healthy_name)
    runner = ProjectionRunner(db, [picky(name, poison, broken=True), healthy], poll_seconds=0.02)
    runner.start()
    try:
        async def stopped() -> bool:
            async with db.connection() as conn:
                live = await checkpoints.current(conn, name, "live")
            return live is not None and live.error_position == bad_position

        await _wait(stopped)

        async def healthy_done() -> bool:
            async with db.connection() as conn:
                return bool(await conn.fetchval(
                    f"SELECT count(*) = 3 FROM {healthy_name} WHERE stream_id = $1", stream))

        await _wait(healthy_done)
        async with db.connection() as conn:
            applied = await conn.fetch(f"SELECT position FROM {name} WHERE stream_id = $1", stream)
            live = await checkpoints.current(conn, name, "live")
        # Stopped exactly at the poison: the event before it applied, nothing after it.
        assert [r["position"] for r in applied] == [result.positions[0]]
        assert live is not None and "cannot handle" in (live.error or "")
    finally:
        await runner.stop()

    fixed = ProjectionRunner(db, [picky(name, poison, broken=False)], poll_seconds=0.02)
    fixed.start()
    try:
        async def resumed() -> bool:
            async with db.connection() as conn:
                count = await conn.fetchval(
                    f"SELECT count(*) FROM {name} WHERE stream_id = $1", stream)
                live = await checkpoints.current(conn, name, "live")
            return bool(count == 3 and live is not None and live.error is None)

        await _wait(resumed)
    finally:
        await fixed.stop()
