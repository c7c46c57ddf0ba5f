"""stream_index keeps one row per stream: its type, last version, how many events it holds,
its last event's type and its first and last recording times, whatever the batches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from service.projections.base import Tables
from service.projections.stream_index import StreamIndex
from service.store.database import Database
from service.store.event_store import RecordedEvent
from tests.support.projections import scratch_tables

T0 = datetime(2026, 11, 3, 9, 15, 0, 123456, tzinfo=UTC)
_positions = count(1)


def _recorded(stream_id: str, version: int, event_type: str, minutes: int) -> RecordedEvent:
    position = next(_positions)
    return RecordedEvent(position, 1, stream_id, version, uuid.uuid4(), event_type, 1, {}, {},
                         T0 + timedelta(minutes=minutes))


@pytest.fixture
async def tables(db: Database, uid: str) -> AsyncIterator[Tables]:
    projection = StreamIndex()
    async with scratch_tables(db, projection, uid) as made:
        yield made


async def test_a_streams_row_counts_its_events_over_batches(
    db: Database, uid: str, tables: Tables
) -> None:
    month, agent, team = f"cycle:t{uid}:2026-11", f"agent:a{uid}", f"team:t{uid}"
    batches = [
        [_recorded(month, 1, "CycleOpened", 0), _recorded(agent, 1, "AgentChanged", 1),
         _recorded(month, 2, "EvaluationSubmitted", 2),
         _recorded(month, 3, "EvaluationSubmitted", 3)],
        [_recorded(team, 1, "TeamChanged", 4), _recorded(month, 4, "CycleClosed", 5)],
        [_recorded(agent, 2, "AgentChanged", 6)],
    ]
    projection = StreamIndex()
    async with db.connection() as conn:
        for batch in batches:
            async with conn.transaction():
                await projection.apply(conn, batch, tables)
        rows = {r["stream_id"]: dict(r) for r in await conn.fetch(
            f"SELECT * FROM {tables['stream_index']}")}
    assert rows == {
        month: {"stream_id": month, "stream_type": "cycle", "version": 4, "events": 4,
                "last_type": "CycleClosed", "first_recorded": T0,
                "last_recorded": T0 + timedelta(minutes=5)},
        agent: {"stream_id": agent, "stream_type": "agent", "version": 2, "events": 2,
                "last_type": "AgentChanged", "first_recorded": T0 + timedelta(minutes=1),
                "last_recorded": T0 + timedelta(minutes=6)},
        team: {"stream_id": team, "stream_type": "team", "version": 1, "events": 1,
               "last_type": "TeamChanged", "first_recorded": T0 + timedelta(minutes=4),
               "last_recorded": T0 + timedelta(minutes=4)},
    }
