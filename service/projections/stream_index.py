"""stream_index: one row per stream (type, version, event count, first and last event)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.projections.base import Projection, Tables
from service.store.event_store import DataOnly, RecordedEvent, stream_type


class StreamIndex(Projection):
    """Lets auditors and BI list streams without scanning the event table."""

    name = "stream_index"
    data_only = DataOnly(("*",))  # counts events, never reads them
    version = 1
    tables = {
        "stream_index": """(
            stream_id      text PRIMARY KEY,
            stream_type    text NOT NULL,
            version        integer NOT NULL,
            events         bigint NOT NULL,
            last_type      text NOT NULL,
            first_recorded timestamptz NOT NULL,
            last_recorded  timestamptz NOT NULL
        )"""
    }

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Fold the batch per stream, then upsert one row per stream touched."""
        folded: dict[str, list[object]] = {}
        for e in events:
            row = folded.get(e.stream_id)
            if row is None:
                folded[e.stream_id] = [e.version, 1, e.type, e.recorded_at, e.recorded_at]
            else:
                row[0], row[2], row[4] = e.version, e.type, e.recorded_at
                row[1] = int(str(row[1])) + 1
        await conn.executemany(
            f"""
            INSERT INTO {tables['stream_index']} AS s
                (stream_id, stream_type, version, events, last_type, first_recorded,
                 last_recorded)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (stream_id) DO UPDATE SET
                version = greatest(s.version, EXCLUDED.version),
                events = s.events + EXCLUDED.events,
                last_type = EXCLUDED.last_type,
                last_recorded = EXCLUDED.last_recorded
            """,
            [(sid, stream_type(sid), *row) for sid, row in folded.items()],
        )
