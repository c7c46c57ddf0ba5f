"""Concurrent appenders with random rollbacks against a live projector, then a rebuild."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import UTC, datetime

from service.projections import checkpoints
from service.projections.runner import ProjectionRunner, Worker, try_lock
from service.store.database import Database
from service.store.errors import ConcurrencyError
from service.store.event_store import NewEvent, append, stream_version
from tests.support.projections import event_log

NOW = datetime(2026, 11, 3, tzinfo=UTC)
APPENDERS = 50
STREAMS = 200
TRANSACTIONS_EACH = 30


class RolledBack(Exception):
    """Raised on purpose to abandon a transaction."""


async def _appender(db: Database, prefix: str, seed: int) -> int:
    rng = random.Random(seed)
    committed = 0
    for _ in range(TRANSACTIONS_EACH):
        stream = f"{prefix}:{rng.randrange(STREAMS)}"
        count = rng.randint(1, 3)
        try:
            async with db.connection() as conn, conn.transaction():
                version = await stream_version(conn, stream)
                await append(
                    conn, stream, [NewEvent("Tested", {"i": i}) for i in range(count)],
                    expected_version=version, metadata={}, recorded_at=NOW,
                )
                # Commit late and out of position order now and then.
                await asyncio.sleep(rng.random() * 0.02)
                if rng.random() < 0.2:
                    raise RolledBack
            committed += count
        except (RolledBack, ConcurrencyError):
            pass
    return committed


async def _log(db: Database, table: str) -> list[tuple[int, str, int]]:
    async with db.connection() as conn:
        rows = await conn.fetch(f"SELECT position, stream_id, version FROM {table} ORDER BY seq")
    return [(r["position"], r["stream_id"], r["version"]) for r in rows]


async def test_live_projector_sees_every_committed_event_once_in_stream_order(
    db: Database, uid: str
) -> None:
    prefix = f"conc{uid}"
    projection = event_log(f"log_{uid}")
    runner = ProjectionRunner(db, [projection], poll_seconds=0.01)
    runner.start()
    try:
        committed = await asyncio.gather(
            *[_appender(db, prefix, seed) for seed in range(APPENDERS)]
        )
        async with db.connection() as conn:
            stored = await conn.fetch(
                "SELECT position, stream_id, version FROM event WHERE stream_type = $1",
                prefix,
            )
        assert len(stored) == sum(committed) > 0
        for _ in range(1200):  # generous: the machine may be busy with other work
            seen = [r for r in await _log(db, projection.name) if r[1].startswith(prefix)]
            if len(seen) >= len(stored):
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()

    expected = {(r["position"], r["stream_id"], r["version"]) for r in stored}
    assert len(seen) == len(set(seen)), "an event was applied twice"
    assert set(seen) == expected, "the projector missed or invented events"
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version in seen:
        versions[stream].append(version)
    for stream, applied in versions.items():
        assert applied == list(range(1, len(applied) + 1)), f"{stream} applied out of order"

    # A rebuild from zero into a new generation gives the same read model.
    conn = await db.connect_single()
    try:
        assert await try_lock(conn, projection.name)
        building = await checkpoints.start(conn, projection, "building")
        worker = Worker(conn, projection)
        await worker.catch_up(building, 5000)
        await worker.finish_build(building)
        live = await checkpoints.current(conn, projection.name, "live")
        assert live is not None and live.generation == building.generation
    finally:
        await conn.close()
    rebuilt = [r for r in await _log(db, projection.name) if r[1].startswith(prefix)]
    assert sorted(rebuilt) == sorted(seen)
