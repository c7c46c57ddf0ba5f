"""A projection that names the events it applies (``Projection.applies``): the runner reads past
the others without a transaction, stores its checkpoint with the next batch it applies (or once
a batch's worth was read past), wakes it only for commits that hold one, and readers wait for
those events alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import pytest

from service.context import ServiceContext
from service.projections import checkpoints
from service.projections import runner as runner_module
from service.projections.admin import status_rows
from service.projections.base import Only, Projection, Tables
from service.projections.lag import lags_events
from service.projections.registry import all_projections
from service.projections.runner import ProjectionRunner, Worker
from service.queries.wait import wait
from service.store.database import Database
from service.store.event_store import NewEvent, RecordedEvent, append
from tests import conftest

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}}


def counting(uid: str) -> Projection:
    class Counting(Projection):
        name = f"counting_{uid}"
        version = 1
        stream_types = (f"month{uid}", f"other{uid}")
        # Of the month's events only the openings count; every event of the other type does.
        applies = Only((f"month{uid}",), frozenset({"Opened"}))
        tables: dict[str, str] = {}
        batches: list[list[str]] = []

        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            """Remember each batch applied, by event type."""
            self.batches.append([e.type for e in events])

    return Counting()


async def _append(db: Database, stream: str, version: int, *types: str) -> int:
    async with db.connection() as conn:
        written = await append(conn, stream, [NewEvent(t, {}) for t in types],
                               expected_version=version, metadata=META, recorded_at=NOW)
    return written.position


async def _step(worker: Worker) -> int:
    """Step until the worker reads something: a transaction of another test still running
    keeps later commits out of sight for a moment (read_all's rule)."""
    async with asyncio.timeout(10):
        while not (read := await worker.run_once()):
            await asyncio.sleep(0.01)
    return read


async def _stored(db: Database, name: str) -> tuple[int, int]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT position, events_applied FROM projection_checkpoint"
            " WHERE name = $1 AND status = 'live'", name)
    return row["position"], row["events_applied"]


async def _lag(db: Database, projection: Projection) -> int:
    """The lag `csperf projections status` and /metrics show for the live generation."""
    async with db.connection() as conn:
        live = await checkpoints.current(conn, projection.name, "live")
        assert live is not None
        (lag,) = await lags_events(conn, [(projection, live)])
        return lag


async def _forget(db: Database, name: str) -> None:
    async with db.connection() as conn:
        await conn.execute("DELETE FROM projection_checkpoint WHERE name = $1", name)


async def test_events_it_does_not_apply_are_read_past_and_counted_with_the_next_batch(
    db: Database, uid: str
) -> None:
    projection = counting(uid)
    conn = await db.connect_single()
    ctx = ServiceContext(settings=conftest.test_settings(), db=db)
    try:
        worker = Worker(conn, projection)
        await worker.run_once()  # starts the live generation
        month = f"month{uid}:2026-11"
        opened = await _append(db, month, 0, "Opened")
        assert await _step(worker) == 1
        assert projection.batches == [["Opened"]]  # type: ignore[attr-defined]
        assert await _stored(db, projection.name) == (opened, 1)

        evaluated = await _append(db, month, 1, "Evaluated", "Evaluated")
        assert await _step(worker) == 2
        # Read past without a transaction: nothing applied, the stored checkpoint not moved...
        assert projection.batches == [["Opened"]]  # type: ignore[attr-defined]
        assert await _stored(db, projection.name) == (opened, 1)
        # ...and no reader waits for it, for the position or for everything.
        assert await wait(ctx, projection, at=evaluated, timeout=0.05)
        assert await wait(ctx, projection, timeout=0.05)
        # Nor does it show as behind: the stored checkpoint trails, the lag counts none.
        assert await _lag(db, projection) == 0
        # Nor is the worker behind the heads it read past.
        assert not worker.behind({None: worker._known[0].cursor})  # type: ignore[index]

        other = await _append(db, f"other{uid}:x", 0, "Anything")
        # An event that counts and is not applied yet is waited for, and the skipped ones
        # before it do not make the wait return early.
        assert not await wait(ctx, projection, at=other, timeout=0.05)
        assert not await wait(ctx, projection, timeout=0.05)
        assert await _lag(db, projection) == 1
        assert await _step(worker) == 1
        assert await _lag(db, projection) == 0
        assert projection.batches[-1] == ["Anything"]  # type: ignore[attr-defined]
        # The checkpoint stored with that batch counts the events read past before it.
        assert await _stored(db, projection.name) == (other, 4)
        assert await wait(ctx, projection, at=other, timeout=0.05)
    finally:
        await conn.close()
        await _forget(db, projection.name)


async def test_a_batch_read_past_is_stored_once_a_batch_of_them_accumulates(
    db: Database, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "UNSTORED_AT_MOST", 3)
    projection = counting(uid)
    conn = await db.connect_single()
    try:
        worker = Worker(conn, projection)
        await worker.run_once()
        month = f"month{uid}:2026-11"
        start = await _stored(db, projection.name)
        await _append(db, month, 0, "Evaluated", "Evaluated")
        assert await _step(worker) == 2
        assert await _stored(db, projection.name) == start  # two read past: not stored yet
        last = await _append(db, month, 2, "Evaluated", "Evaluated")
        assert await _step(worker) == 2
        # Four read past, more than the three allowed: stored, so a restart or a reader's
        # check never scans far.
        assert await _stored(db, projection.name) == (last, 4)
        assert projection.batches == []  # type: ignore[attr-defined]
    finally:
        await conn.close()
        await _forget(db, projection.name)


def test_a_commit_wakes_only_the_projections_that_apply_one_of_its_events(uid: str) -> None:
    projection = counting(uid)

    class Everything(Projection):
        name = f"everything_{uid}"
        version = 1
        stream_types = (f"month{uid}",)
        tables: dict[str, str] = {}

        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            """Apply nothing."""

    everything = Everything()
    runner = ProjectionRunner(Database("postgresql://unused/none"), [projection, everything])

    def woken(*commit: tuple[str, ...] | None) -> set[str]:
        for event in runner._wake.values():
            event.clear()
        runner.wake(*commit)
        return {name for name, event in runner._wake.items() if event.is_set()}

    assert woken((f"month{uid}",), ("Evaluated",)) == {everything.name}
    assert woken((f"month{uid}",), ("Evaluated", "Opened")) == {everything.name, projection.name}
    assert woken((f"other{uid}",), ("Evaluated",)) == {projection.name}
    # A commit of unknown types wakes every projection that reads the stream type.
    assert woken((f"month{uid}",)) == {everything.name, projection.name}
    assert woken() == {everything.name, projection.name}


async def test_a_batch_that_would_write_nothing_stores_its_checkpoint_alone(
    db: Database, uid: str
) -> None:
    class Quiet(Projection):
        """Applies every event, but a batch of Quiet ones writes nothing (the webhook
        dispatch with no subscription that wants them)."""

        name = f"quiet_{uid}"
        version = 1
        stream_types = (f"month{uid}",)
        tables: dict[str, str] = {}
        batches: list[list[str]] = []

        async def writes(self, conn: asyncpg.Connection,
                         events: Sequence[RecordedEvent]) -> bool:
            return any(e.type != "Quiet" for e in events)

        async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                        tables: Tables) -> None:
            self.batches.append([e.type for e in events])

    projection = Quiet()
    conn = await db.connect_single()
    try:
        worker = Worker(conn, projection)
        await worker.run_once()
        month = f"month{uid}:2026-11"
        quiet = await _append(db, month, 0, "Quiet", "Quiet")
        assert await _step(worker) == 2
        # Not applied, yet stored at once (it applies every event: no reader skips these).
        assert projection.batches == []
        assert await _stored(db, projection.name) == (quiet, 2)
        assert await _lag(db, projection) == 0
        loud = await _append(db, month, 2, "Quiet", "Loud")
        assert await _step(worker) == 2
        assert projection.batches == [["Quiet", "Loud"]]
        assert await _stored(db, projection.name) == (loud, 4)
    finally:
        await conn.close()
        await _forget(db, projection.name)


async def test_the_events_it_reads_past_are_counted_not_sent(db: Database, uid: str) -> None:
    projection = counting(uid)
    conn = await db.connect_single()
    try:
        worker = Worker(conn, projection)
        await worker.run_once()
        month = f"month{uid}:2026-11"
        await _append(db, month, 0, "Opened")
        await _step(worker)
        live = (await worker.ensure_live())[0]
        evaluated = await _append(db, month, 1, "Evaluated", "Evaluated", "Evaluated")
        async with asyncio.timeout(10):
            while not (batch := await worker._read(live, 500))[2]:
                await asyncio.sleep(0.01)
        events, cursor, read = batch
        # None of the three comes back; the cursor passes them all and counts them.
        assert (events, cursor.position, read) == ([], evaluated, 3)
        other = await _append(db, f"other{uid}:x", 0, "Anything")
        reopened = await _append(db, month, 4, "Evaluated", "Opened")
        async with asyncio.timeout(10):
            while (batch := await worker._read(live, 500))[2] < 6:
                await asyncio.sleep(0.01)
        events, cursor, read = batch
        assert [(e.type, e.position) for e in events] == [("Anything", other),
                                                          ("Opened", reopened)]
        assert (cursor.position, read) == (reopened, 6)
        # Under a limit the batch ends where read_all's would, applied or not.
        events, cursor, read = await worker._read(live, 2)
        assert (events, cursor.position, read) == ([], evaluated - 1, 2)
    finally:
        await conn.close()
        await _forget(db, projection.name)


async def test_the_lags_of_many_projections_are_counted_in_one_statement_each_as_alone(
    db: Database, uid: str
) -> None:
    skipping, other = counting(uid), counting(f"{uid}b")
    conn = await db.connect_single()
    try:
        workers = [Worker(conn, skipping), Worker(conn, other)]
        for worker in workers:
            await worker.run_once()
        await _append(db, f"month{uid}:2026-11", 0, "Evaluated", "Opened", "Evaluated")
        await _append(db, f"other{uid}:x", 0, "Anything")
        await _append(db, f"other{uid}b:x", 0, "Anything", "Anything")
        live = [(w.projection, (await w.ensure_live())[0]) for w in workers]
        assert await lags_events(conn, live) == [2, 2]
        assert [await lags_events(conn, [one]) for one in live] == [[2], [2]]
        assert await lags_events(conn, live[1:]) == [2]
        assert await lags_events(conn, []) == []
        # `csperf projections status` lists the service's projections with their lags so.
        rows = await status_rows(db)
        assert {r["projection"] for r in rows} <= {p.name for p in all_projections()}
        assert all(isinstance(r["lag_events"], int) and r["lag_events"] >= 0
                            for r in rows)
    finally:
        await conn.close()
        await _forget(db, skipping.name)
        await _forget(db, f"counting_{uid}b")
