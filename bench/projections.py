"""Bench-only projections: an event log (exactly-once checks), a no-op, and a timing wrapper."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar

import asyncpg

from service.projections.base import Projection, Tables
from service.store.event_store import RecordedEvent


class BenchEventLog(Projection):
    """Insert one row per applied event, in apply order, so skips and repeats show."""

    name = "bench_event_log"
    version = 1
    tables = {
        "bench_event_log": """(
            seq       bigint GENERATED ALWAYS AS IDENTITY,
            position  bigint NOT NULL,
            stream_id text NOT NULL,
            version   integer NOT NULL
        )"""
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Append the batch to the log with one COPY."""
        await conn.copy_records_to_table(
            tables["bench_event_log"],
            records=[(e.position, e.stream_id, e.version) for e in events],
            columns=["position", "stream_id", "version"],
        )


class BenchNoop(Projection):
    """Apply nothing: what the runner itself costs (read, decode, checkpoint)."""

    name = "bench_noop"
    version = 1
    tables: ClassVar[dict[str, str]] = {}

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Do nothing."""


class Timed(Projection):
    """Wrap a projection and add up the time its apply takes."""

    def __init__(self, inner: Projection) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.version = inner.version  # type: ignore[misc]
        self.tables = inner.tables  # type: ignore[misc]
        self.stream_types = inner.stream_types  # type: ignore[misc]
        self.seconds = 0.0
        self.batches = 0

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply through the wrapped projection, timing it."""
        start = time.perf_counter()
        try:
            await self.inner.apply(conn, events, tables)
        finally:
            self.seconds += time.perf_counter() - start
            self.batches += 1
