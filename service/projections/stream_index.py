"""stream_index: one row per stream (type, version, event count, first and last event)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
        """Fold the batch per stream, then upsert one row per stream touched, in one statement."""
        folded: dict[str, dict[str, Any]] = {}
        for e in events:
            row = folded.get(e.stream_id)
            if row is None:
                folded[e.stream_id] = {
                    "stream_id": e.stream_id, "stream_type": stream_type(e.stream_id),
                    "version": e.version, "events": 1, "last_type": e.type,
                    "first_recorded": e.recorded_at, "last_recorded": e.recorded_at}
            else:
                row["version"], row["last_type"], row["last_recorded"] = (
                    e.version, e.type, e.recorded_at)
                row["events"] += 1
        # One JSON document rather than a statement a stream (executemany): a batch of
        # evaluations touches nearly as many months' streams as it holds evaluations, and each
        # statement costs PostgreSQL a bind and an execution and the process a row's encoding.
        await conn.execute(
            f"""
            INSERT INTO {tables['stream_index']} AS s
                (stream_id, stream_type, version, events, last_type, first_recorded,
                 last_recorded)
            SELECT * FROM json_to_recordset($1::json) AS r (stream_id text, stream_type text,
                version integer, events bigint, last_type text, first_recorded timestamptz,
                last_recorded timestamptz)
            ON CONFLICT (stream_id) DO UPDATE SET
                version = greatest(s.version, EXCLUDED.version),
                events = s.events + EXCLUDED.events,
                last_type = EXCLUDED.last_type,
                last_recorded = EXCLUDED.last_recorded
            """,
            list(folded.values()),
        )
