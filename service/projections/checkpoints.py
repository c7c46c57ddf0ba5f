"""Generations of a projection: their checkpoints, tables and the swap to a rebuilt one."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from service.projections.base import Projection, Tables
from service.store import reporting
from service.store.event_store import Cursor


@dataclass(frozen=True)
class Generation:
    """One build of a projection's tables and how far it has read."""

    name: str
    generation: int
    code_version: int
    status: str
    cursor: Cursor
    events_applied: int
    error: str | None
    error_position: int | None


_SELECT = """
SELECT name, generation, code_version, status, tx_id, position, events_applied, error,
       error_position
FROM projection_checkpoint
"""


def _generation(row: asyncpg.Record) -> Generation:
    return Generation(
        name=row["name"],
        generation=row["generation"],
        code_version=row["code_version"],
        status=row["status"],
        cursor=Cursor(row["tx_id"], row["position"]),
        events_applied=row["events_applied"],
        error=row["error"],
        error_position=row["error_position"],
    )


async def current(conn: asyncpg.Connection, name: str, status: str) -> Generation | None:
    """Return the projection's generation in a status ('live' or 'building'), if any."""
    row = await conn.fetchrow(
        _SELECT + " WHERE name = $1 AND status = $2 ORDER BY generation DESC LIMIT 1",
        name,
        status,
    )
    return _generation(row) if row else None


async def live_and_building(
    conn: asyncpg.Connection, name: str
) -> tuple[Generation | None, Generation | None]:
    """Return the projection's live and building generations in one round trip."""
    rows = await conn.fetch(
        _SELECT + " WHERE name = $1 AND status IN ('live', 'building')"
        " ORDER BY generation DESC",
        name,
    )
    newest: dict[str, Generation] = {}
    for row in rows:
        newest.setdefault(row["status"], _generation(row))
    return newest.get("live"), newest.get("building")


async def all_generations(conn: asyncpg.Connection) -> list[Generation]:
    """Return every projection's live and building generations."""
    rows = await conn.fetch(
        _SELECT + " WHERE status <> 'retired' ORDER BY name, generation"
    )
    return [_generation(r) for r in rows]


async def start(conn: asyncpg.Connection, projection: Projection, status: str) -> Generation:
    """Create the next generation's tables and checkpoint in one transaction."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('projection-generation:' || $1, 0))",
            projection.name,
        )
        number = await conn.fetchval(
            "SELECT coalesce(max(generation), 0) + 1 FROM projection_checkpoint WHERE name = $1",
            projection.name,
        )
        tables = projection.table_names(number)
        for logical, physical in tables.items():
            await conn.execute(f"DROP TABLE IF EXISTS {physical}")
            await conn.execute(f"CREATE TABLE {physical} {projection.tables[logical]}")
        await conn.execute(
            "INSERT INTO projection_checkpoint (name, generation, code_version, status)"
            " VALUES ($1, $2, $3, $4)",
            projection.name,
            number,
            projection.version,
            status,
        )
        if status == "live":
            await _point_views(conn, tables)
    found = await current(conn, projection.name, status)
    assert found is not None
    return found


async def advance(
    conn: asyncpg.Connection, generation: Generation, cursor: Cursor, applied: int
) -> None:
    """Record how far a generation has read; call inside the batch's transaction."""
    await conn.execute(
        """
        UPDATE projection_checkpoint
        SET tx_id = $3, position = $4, events_applied = events_applied + $5,
            error = NULL, error_position = NULL, updated_at = now()
        WHERE name = $1 AND generation = $2
        """,
        generation.name,
        generation.generation,
        cursor.tx_id,
        cursor.position,
        applied,
    )


async def record_failure(
    conn: asyncpg.Connection, generation: Generation, position: int, error: str
) -> None:
    """Record the event a generation is stuck at and why."""
    await conn.execute(
        "UPDATE projection_checkpoint SET error = $3, error_position = $4, updated_at = now()"
        " WHERE name = $1 AND generation = $2",
        generation.name,
        generation.generation,
        error[:2000],
        position,
    )


async def swap(
    conn: asyncpg.Connection, projection: Projection, live: Generation | None, built: Generation
) -> None:
    """Make a caught-up generation live and drop the old one; call inside a transaction."""
    await _point_views(conn, projection.table_names(built.generation))
    if live is not None:
        await conn.execute(
            "UPDATE projection_checkpoint SET status = 'retired', updated_at = now()"
            " WHERE name = $1 AND generation = $2",
            projection.name,
            live.generation,
        )
        for _, physical in projection.table_names(live.generation).items():
            await conn.execute(f"DROP TABLE IF EXISTS {physical}")
    await conn.execute(
        "UPDATE projection_checkpoint SET status = 'live', updated_at = now()"
        " WHERE name = $1 AND generation = $2",
        projection.name,
        built.generation,
    )


async def _point_views(conn: asyncpg.Connection, tables: Tables) -> None:
    # Taken first by every view change (here and in ensure_reporting), so two projections'
    # swaps and the reporting views over them never wait on each other in opposite orders.
    await reporting.lock(conn)
    fresh = False
    for logical, physical in tables.items():
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", logical)
        if exists:
            try:
                async with conn.transaction():
                    await conn.execute(
                        f"CREATE OR REPLACE VIEW {logical} AS SELECT * FROM {physical}"
                    )
                continue
            except asyncpg.PostgresError:
                # The columns changed shape: the reporting views over this one go with it
                # and are made again below.
                await conn.execute(f"DROP VIEW {logical} CASCADE")
        await conn.execute(f"CREATE VIEW {logical} AS SELECT * FROM {physical}")
        fresh = fresh or logical in reporting.relations_used()
    if fresh:
        # A new read model, or one whose view was dropped with the reporting views over it:
        # (re)make those in this same transaction, so BI tools never see them missing.
        await reporting.ensure_reporting(conn)
