"""The runner's wake-ups: one poll of the store's heads per process wakes only the workers
behind a head of a stream type they read; an idle worker asks the database nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from service.projections.base import Projection, Tables
from service.projections.runner import GENERATIONS_SECONDS, ProjectionRunner, Worker
from service.store.database import Database
from service.store.event_store import NewEvent, RecordedEvent, append

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}}


class Counting(Worker):
    """A worker that counts its steps (each one a read of the store)."""

    steps = 0

    async def run_once(self) -> int:
        """Count, then step as every worker does."""
        self.steps += 1
        return await super().run_once()


def counted(name: str, stream_type: str, workers: dict[str, Counting]) -> Projection:
    class Applied(Projection):
        version = 1
        stream_types = (stream_type,)
        tables: dict[str, str] = {}
        applied: list[str] = []

        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            """Remember the streams of the events applied."""
            self.applied.extend(e.stream_id for e in events)

        def make_worker(self, conn: asyncpg.Connection) -> Worker:
            worker = workers[self.name] = Counting(conn, self)
            return worker

    Applied.name = name
    return Applied()


async def test_a_commit_elsewhere_wakes_only_the_worker_that_reads_it(
    db: Database, uid: str
) -> None:
    workers: dict[str, Counting] = {}
    busy = counted(f"busy_{uid}", f"busy{uid}", workers)
    idle = counted(f"idle_{uid}", f"idle{uid}", workers)
    runner = ProjectionRunner(db, [busy, idle], poll_seconds=0.02)
    runner.start()
    try:
        async with asyncio.timeout(10):
            while set(runner.holding) != {busy.name, idle.name} or len(workers) < 2:
                await asyncio.sleep(0.01)
            # Both have read their (empty) start, and the heads' task has read the generations
            # after both workers stored theirs: its first reading may predate them, and a change
            # in the generations (once a GENERATIONS_SECONDS) has every worker read again.
            await asyncio.sleep(GENERATIONS_SECONDS + 0.3)
        idle_steps = workers[idle.name].steps
        # Appended as another process would: nothing in this process wakes the runner.
        for n in range(5):
            async with db.connection() as conn:
                await append(conn, f"busy{uid}:{n}", [NewEvent("Happened", {})],
                             expected_version=0, metadata=META, recorded_at=NOW)
            await asyncio.sleep(0.05)
        async with asyncio.timeout(10):
            while len(busy.applied) < 5:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # two dozen polls of the heads, at 20 ms
        # The worker of the other stream type never read the store meanwhile.
        assert workers[idle.name].steps == idle_steps
        assert workers[busy.name].steps >= 2
    finally:
        await runner.stop()
        async with db.connection() as conn:
            await conn.execute("DELETE FROM projection_checkpoint WHERE name = ANY($1)",
                               [busy.name, idle.name])
