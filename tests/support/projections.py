"""A projection that records every event it applies, for exactly-once and ordering checks, and
a projection's tables made apart from the live ones, for applying batches to it directly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from service.projections.base import Projection, Tables
from service.store.database import Database
from service.store.event_store import RecordedEvent


class EventLogBase(Projection):
    """Insert one row per applied event, in apply order (seq), with the applying process."""

    version = 1
    delay_seconds = 0.0

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        await conn.executemany(
            f"INSERT INTO {tables[self.name]} (position, stream_id, version, applied_by)"
            " VALUES ($1, $2, $3, $4)",
            [(e.position, e.stream_id, e.version, os.getpid()) for e in events],
        )
        if self.delay_seconds:
            # Holds the batch's transaction open, so a kill lands mid-batch.
            await asyncio.sleep(self.delay_seconds)


LOG_COLUMNS = """(
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    position   bigint NOT NULL,
    stream_id  text NOT NULL,
    version    integer NOT NULL,
    applied_by integer NOT NULL
)"""


def event_log(name: str, *, delay_seconds: float = 0.0, version: int = 1) -> Projection:
    """Return an event-log projection with its own name (and so its own tables)."""
    cls = type(
        f"EventLog_{name}",
        (EventLogBase,),
        {"name": name, "version": version, "tables": {name: LOG_COLUMNS},
         "delay_seconds": delay_seconds},
    )
    projection: Projection = cls()
    return projection


@asynccontextmanager
async def scratch_tables(db: Database, projection: Projection, uid: str) -> AsyncIterator[Tables]:
    """Make the projection's tables under a generation of the test's own, dropped afterwards."""
    made = Tables(list(projection.tables), 900_000 + int(uid, 16) % 99_999)
    async with db.connection() as conn:
        for logical, physical in made.items():
            await conn.execute(f"DROP TABLE IF EXISTS {physical}")
            await conn.execute(f"CREATE TABLE {physical} {projection.tables[logical]}")
    try:
        yield made
    finally:
        async with db.connection() as conn:
            for _, physical in made.items():
                await conn.execute(f"DROP TABLE IF EXISTS {physical}")
