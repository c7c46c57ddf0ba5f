"""Operator commands: projection status and rebuilds with a progress bar."""

from __future__ import annotations

import asyncio

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from service.projections import checkpoints
from service.projections.base import Projection
from service.projections.lag import lags_events
from service.projections.registry import all_projections, by_name
from service.projections.runner import try_lock, worker_for
from service.store.database import Database

console = Console(stderr=True)


async def relevant_events(conn: asyncpg.Connection, projection: Projection) -> int:
    """Count the stored events a projection reads (a rebuild's progress bar)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM event WHERE $1::text[] IS NULL OR stream_type = ANY($1::text[])",
        list(projection.stream_types) if projection.stream_types else None,
    )
    return count


async def status_rows(db: Database) -> list[dict[str, object]]:
    """Return each projection's generations with position, lag and error."""
    async with db.connection() as conn:
        generations = {(g.name, g.status): g for g in await checkpoints.all_generations(conn)}
        listed = [(projection, g) for projection in all_projections()
                  for status in ("live", "building")
                  if (g := generations.get((projection.name, status))) is not None]
        lags = await lags_events(conn, listed)
    rows: list[dict[str, object]] = [
        {
            "projection": projection.name,
            "status": g.status,
            "generation": g.generation,
            "code_version": g.code_version,
            "position": g.cursor.position,
            "events_applied": g.events_applied,
            "lag_events": lag,
            "error": g.error,
            "error_position": g.error_position,
        }
        for (projection, g), lag in zip(listed, lags, strict=True)
    ]
    return rows


async def print_status(db: Database) -> int:
    """Print a table of projection status; exit 1 when one is stopped at an error."""
    rows = await status_rows(db)
    table = Table("projection", "status", "gen", "version", "position", "applied", "lag", "error")
    for r in rows:
        table.add_row(
            *(str(r[k]) for k in ("projection", "status", "generation", "code_version",
                                  "position", "events_applied", "lag_events")),
            f"at {r['error_position']}: {r['error']}" if r["error"] else "",
        )
    Console().print(table)
    return 1 if any(r["error"] for r in rows) else 0


async def rebuild(db: Database, name: str) -> int:
    """Rebuild a projection beside the live one and swap it in when caught up."""
    try:
        projection = by_name(name)
    except KeyError:
        names = ", ".join(p.name for p in all_projections())
        console.print(f"[red]no projection {name!r}[/red]; known: {names}")
        return 2
    conn = await db.connect_single()
    try:
        building = await checkpoints.current(conn, name, "building")
        if building is None:
            building = await checkpoints.start(conn, projection, "building")
        total = await relevant_events(conn, projection)
        with _progress() as progress:
            task = progress.add_task(f"rebuilding {name}", total=total)
            if await try_lock(conn, name):
                worker = worker_for(conn, projection)
                await worker.catch_up(building, 5000, lambda n: progress.advance(task, n))
                await worker.finish_build(building)
                progress.update(task, completed=total)
            else:
                # A running service holds the lease: it builds; we watch.
                while (await checkpoints.current(conn, name, "building")) is not None:
                    applied = await conn.fetchval(
                        "SELECT events_applied FROM projection_checkpoint"
                        " WHERE name = $1 AND generation = $2",
                        name,
                        building.generation,
                    )
                    progress.update(task, completed=applied)
                    await asyncio.sleep(0.2)
                progress.update(task, completed=total)
    finally:
        await conn.close()
    console.print(f"{name}: generation {building.generation} is live")
    return 0


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
