"""The event store's contract on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from service.domain import directory as d
from service.domain.events import decode
from service.projections import decoded as memo
from service.store.database import Database
from service.store.errors import ConcurrencyError
from service.store.event_store import (
    Cursor,
    DataOnly,
    NewEvent,
    RecordedEvent,
    StreamAppend,
    append,
    append_many,
    read_all,
    read_stream,
    stream_version,
)

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}, "request_id": "r1"}


def events(*types: str) -> list[NewEvent]:
    return [NewEvent(t, {"n": i}) for i, t in enumerate(types)]


async def cursor_after_new_event(conn: asyncpg.Connection, stream: str) -> Cursor:
    """Append one event to a new stream; return the cursor just past it."""
    await append(conn, stream, events("warm"), expected_version=0, metadata=META,
                 recorded_at=NOW)
    row = await conn.fetchrow("SELECT tx_id, position FROM event WHERE stream_id = $1", stream)
    return Cursor(row["tx_id"], row["position"])


async def test_append_and_read_back_in_version_order(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    async with db.connection() as conn:
        first = await append(conn, stream, events("A", "B"), expected_version=0,
                             metadata=META, recorded_at=NOW)
        second = await append(conn, stream, events("C"), expected_version=2,
                              metadata=META, recorded_at=NOW)
        stored = await read_stream(conn, stream)
    assert first.version == 2 and second.version == 3
    assert [e.type for e in stored] == ["A", "B", "C"]
    assert [e.version for e in stored] == [1, 2, 3]
    assert stored[0].metadata["actor"]["subject"] == "tester"
    assert stored[0].recorded_at == NOW
    assert first.positions[0] < first.positions[1] < second.positions[0]


async def test_conflicting_append_is_refused_whole(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    async with db.connection() as conn:
        await append(conn, stream, events("A"), expected_version=0, metadata=META,
                     recorded_at=NOW)
        with pytest.raises(ConcurrencyError) as refused:
            await append(conn, stream, events("X", "Y", "Z"), expected_version=0,
                         metadata=META, recorded_at=NOW)
        assert refused.value.current == 1
        assert [e.type for e in await read_stream(conn, stream)] == ["A"]
        assert await stream_version(conn, stream) == 1


async def test_expected_version_on_a_missing_stream_conflicts(db: Database, uid: str) -> None:
    async with db.connection() as conn:
        with pytest.raises(ConcurrencyError) as refused:
            await append(conn, f"test:{uid}", events("A"), expected_version=3,
                         metadata=META, recorded_at=NOW)
    assert refused.value.current == 0


async def test_losers_of_a_race_burn_no_position(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    async with db.connection() as conn:
        await append(conn, stream, events("A"), expected_version=0, metadata=META,
                     recorded_at=NOW)

    async def contender() -> bool:
        async with db.connection() as conn:
            try:
                await append(conn, stream, events("B"), expected_version=1, metadata=META,
                             recorded_at=NOW)
                return True
            except ConcurrencyError:
                return False

    outcomes = await asyncio.gather(*[contender() for _ in range(10)])
    assert outcomes.count(True) == 1
    async with db.connection() as conn:
        before = await conn.fetchval("SELECT max(position) FROM event")
        result = await append(conn, f"test:{uid}-next", events("C"), expected_version=0,
                              metadata=META, recorded_at=NOW)
    # Nine refused appends drew no identity values: the next event follows directly.
    assert result.positions[0] == before + 1


async def test_idempotent_retry_returns_the_first_result(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    async with db.connection() as conn:
        first = await append(conn, stream, events("A", "B"), expected_version=0,
                             metadata=META, recorded_at=NOW, idempotency_key="req-1")
        retried = await append(conn, stream, events("A", "B"), expected_version=0,
                               metadata=META, recorded_at=NOW, idempotency_key="req-1")
        unversioned = await append(conn, stream, events("A", "B"), expected_version=None,
                                   metadata=META, recorded_at=NOW, idempotency_key="req-1")
        assert await stream_version(conn, stream) == 2
    assert not first.duplicate and retried.duplicate and unversioned.duplicate
    assert retried.positions == first.positions == unversioned.positions


async def test_concurrent_identical_retries_append_once(db: Database, uid: str) -> None:
    stream = f"test:{uid}"

    async def send() -> bool:
        async with db.connection() as conn:
            result = await append(conn, stream, events("A"), expected_version=None,
                                  metadata=META, recorded_at=NOW, idempotency_key="same")
            return result.duplicate

    duplicates = await asyncio.gather(*[send() for _ in range(8)])
    assert duplicates.count(False) == 1
    async with db.connection() as conn:
        assert len(await read_stream(conn, stream)) == 1


async def test_caller_supplied_event_ids_are_idempotency_keys(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    event_id = uuid.uuid4()
    async with db.connection() as conn:
        await append(conn, stream, [NewEvent("A", {}, event_id=event_id)],
                     expected_version=None, metadata=META, recorded_at=NOW)
        again = await append(conn, stream, [NewEvent("A", {}, event_id=event_id)],
                             expected_version=None, metadata=META, recorded_at=NOW)
        assert again.duplicate
        assert len(await read_stream(conn, stream)) == 1


async def test_append_many_is_atomic(db: Database, uid: str) -> None:
    ok, stale = f"test:{uid}-ok", f"test:{uid}-stale"
    async with db.connection() as conn:
        await append(conn, stale, events("A"), expected_version=0, metadata=META,
                     recorded_at=NOW)
        with pytest.raises(ConcurrencyError):
            async with conn.transaction():
                await append_many(
                    conn,
                    [StreamAppend(ok, events("B"), 0), StreamAppend(stale, events("C"), 0)],
                    metadata=META,
                    recorded_at=NOW,
                )
        assert await read_stream(conn, ok) == []
        assert len(await read_stream(conn, stale)) == 1


async def test_event_table_refuses_edits(db: Database, uid: str) -> None:
    stream = f"test:{uid}"
    async with db.connection() as conn:
        await append(conn, stream, events("A"), expected_version=0, metadata=META,
                     recorded_at=NOW)
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("UPDATE event SET type = 'B' WHERE stream_id = $1", stream)
        with pytest.raises(Exception, match="append-only"):
            await conn.execute("DELETE FROM event WHERE stream_id = $1", stream)


async def test_global_read_waits_for_a_transaction_that_commits_late(
    db: Database, uid: str
) -> None:
    async with db.connection() as conn:
        cursor = await cursor_after_new_event(conn, f"test:{uid}-0")
    slow = await db.connect_single()
    try:
        tx = slow.transaction()
        await tx.start()
        late = await append(slow, f"test:{uid}-late", events("late"), expected_version=0,
                            metadata=META, recorded_at=NOW)
        async with db.connection() as conn:
            early = await append(conn, f"test:{uid}-early", events("early"),
                                 expected_version=0, metadata=META, recorded_at=NOW)
            # The late transaction drew the smaller position but has not committed: a reader
            # must not move past it.
            assert late.positions[0] < early.positions[0]
            seen = await read_all(conn, cursor, 100)
            assert all(e.position != early.positions[0] for e in seen)
            await tx.commit()
            # Once it commits, both come, the late one first. The test server is shared by
            # every test run on the machine, and any run's open transaction holds the
            # cluster-wide snapshot horizon back too: wait (bounded) for the horizon to pass.
            ours: list[str] = []
            for _ in range(200):
                seen = await read_all(conn, cursor, 100)
                ours = [e.stream_id for e in seen if e.stream_id.startswith(f"test:{uid}")]
                if len(ours) == 2:
                    break
                await asyncio.sleep(0.05)
        assert ours == [f"test:{uid}-late", f"test:{uid}-early"]
    finally:
        await slow.close()


def test_cursor_round_trips_and_rejects_garbage() -> None:
    cursor = Cursor(123456, 789)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(None) == Cursor()
    for bad in ("???", "bm90LWEtY3Vyc29y", "LTEuNQ"):
        with pytest.raises(ValueError):
            Cursor.decode(bad)


async def test_a_global_read_leaves_out_only_the_data_its_reader_does_not_need(
    db: Database, uid: str
) -> None:
    async with db.connection() as conn:
        start = await cursor_after_new_event(conn, f"warm:{uid}")
        await append(conn, f"kept:{uid}", events("Wanted", "Counted"), expected_version=0,
                     metadata=META, recorded_at=NOW)
        await append(conn, f"other:{uid}", events("Counted"), expected_version=0,
                     metadata=META, recorded_at=NOW)

        async def read(only: DataOnly | None) -> list[tuple[str, str, dict[str, object]]]:
            # A transaction of the service's background work that began between the appends
            # holds the later one back a moment (readers pass only rows older than every
            # running transaction), and the session app's scheduler may append meanwhile
            # (automatic releases fall due in bursts when a test moves the shared clock
            # forward): read far enough, and wait for all three rather than race it.
            ours: list[tuple[str, str, dict[str, object]]] = []
            for _ in range(250):
                seen = await read_all(conn, start, 5000, data_only=only)
                ours = [(e.stream_id.split(":")[0], e.type, e.data) for e in seen
                        if e.stream_id.endswith(uid)]
                if len(ours) == 3:
                    break
                await asyncio.sleep(0.02)
            return ours

        everything = await read(None)
        some = await read(DataOnly(("kept",), frozenset({"Wanted"})))
        none = await read(DataOnly(("*",)))
        asked = await read(DataOnly((), on_demand=frozenset({"Wanted"})))
    assert everything == [("kept", "Wanted", {"n": 0}), ("kept", "Counted", {"n": 1}),
                          ("other", "Counted", {"n": 0})]
    # Every event still arrives, in order (the reader's checkpoint passes all of them).
    assert some == [("kept", "Wanted", {"n": 0}), ("kept", "Counted", {}),
                    ("other", "Counted", {"n": 0})]
    assert none == [("kept", "Wanted", {}), ("kept", "Counted", {}), ("other", "Counted", {})]
    # On demand: that type's data is left out whatever the stream, the rest all arrive.
    assert asked == [("kept", "Wanted", {}), ("kept", "Counted", {"n": 1}),
                     ("other", "Counted", {"n": 0})]


async def test_a_batch_read_without_a_large_events_data_borrows_its_held_model_or_reads_it(
    db: Database, uid: str
) -> None:
    written = [d.decide_put_agent(None, d.PutAgent(agent_id=f"a{i}-{uid}", name="Ana",
                                                   team_id="t-1"), NOW)[0] for i in range(2)]
    kind = written[0].type
    async with db.connection() as conn:
        start = await cursor_after_new_event(conn, f"warm:{uid}")
        for i, e in enumerate(written):
            await append(conn, f"agent:a{i}-{uid}", [NewEvent(e.type, e.data())],
                         expected_version=0, metadata=META, recorded_at=NOW)
        seen: list[RecordedEvent] = []
        for _ in range(250):  # as above: a running transaction may hold the later one back
            seen = [e for e in await read_all(conn, start, 5000,
                                              data_only=DataOnly((), on_demand=frozenset({kind})))
                    if e.stream_id.endswith(uid) and e.type == kind]
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
        held, other = seen
        assert held.data == {} and other.data == {}
        # This process wrote the first (a command holds what it wrote); not the second.
        model = decode(kind, held.schema_version, written[0].data())
        memo.remember(held.event_id, held.tx_id, held.position, model, 0.01)
        async with memo.with_data(conn, seen, {kind}) as ready:
            assert ready[0].data == {} and memo.decoded(ready[0]) is model
            assert ready[1].data == written[1].data()
            assert memo.decoded(ready[1]) == written[1]
            # lent for the batch even once the cache lets it go
            memo._held.discard((held.event_id, held.tx_id, held.position))
            assert memo.decoded(ready[0]) is model
