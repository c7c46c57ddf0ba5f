"""Monthly partitions of metric_sample: made ahead of time, archived whole (migration 0006).

Archiving a month (``csperf metrics archive --before YYYY-MM``), for each live month before the
given one whose every team cycle with samples is published:

1. the month is marked ``archiving``: ingestion refuses its samples from then on (kept in the
   quarantine, never lost), and the archive waits for every transaction that was running at
   that moment to end, so no batch that judged the month live is still writing to it;
2. the partition is copied (``COPY ... TO``) into ``metric_sample_YYYY-MM.csv.gz.part``, its
   rows counted and checked against the table, then renamed, with a ``.sha256`` file beside it
   in ``sha256sum`` format;
3. in one transaction: quarantine entries that were resolved by a resend of a sample of that
   month are marked accepted (the listing used to see it through a join with the samples),
   the partition is dropped, and the month is marked ``archived`` with its file, checksum and
   count.

Totals, rankings and scorecards are untouched: they are stored apart from the samples. A run
stopped at any point is completed by running it again: a month left ``archiving`` is exported
again from its partition, which is only ever dropped with the row that says where it went.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from service.store.database import Database
from service.store.locked_loop import LockedLoop
from service.store.metrics import cycle_status_sql

#: Months prepared ahead of the current one, and kept ready behind it for late samples.
AHEAD = 3
BEHIND = 12
#: How often one replica makes the coming months' partitions (``Upkeep``), under this lock.
EVERY_SECONDS = 3600.0
LOCK_NAMESPACE = 7215003
LOCK_NAME = "metric-partitions"

_MISSING = """
SELECT p FROM unnest($1::text[]) p
WHERE NOT EXISTS (SELECT 1 FROM metric_partition m WHERE m.period = p)
"""


def months(first: str, last: str) -> list[str]:
    """Return every month from first to last (YYYY-MM), both included."""
    year, month = int(first[:4]), int(first[5:7])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def shift(period: str, by: int) -> str:
    """Return the month ``by`` months after period (before, when negative)."""
    index = int(period[:4]) * 12 + int(period[5:7]) - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


async def ensure(conn: asyncpg.Connection, now: datetime, *, behind: int = BEHIND,
                 ahead: int = AHEAD) -> list[str]:
    """Make the partitions of the months around now that were never made; return them."""
    current = f"{now.year:04d}-{now.month:02d}"
    wanted = months(shift(current, -behind), shift(current, ahead))
    missing: list[str] = [r["p"] for r in await conn.fetch(_MISSING, wanted)]
    made = []
    for period in missing:
        if await make(conn, period):
            made.append(period)
    return made


class Upkeep(LockedLoop):
    """Make the coming months' partitions ahead of them, hourly, on one replica at a time:
    months keep coming while a service runs (it makes them at start too)."""

    quiet = (asyncpg.UndefinedTableError,)  # not migrated yet

    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        super().__init__(db, name="metric partitions", lock=(LOCK_NAMESPACE, LOCK_NAME),
                         interval_seconds=EVERY_SECONDS, standby_seconds=60.0)
        self.clock = clock

    async def work(self, conn: asyncpg.Connection) -> None:
        """Make the partitions missing around now."""
        await ensure(conn, self.clock())


# CREATE TABLE IF NOT EXISTS is not safe against a concurrent creation of the same table (the
# second one fails on the catalog's unique index): replicas and requests that make the same
# month at once take turns on this lock, and the later one finds the month made.
_MAKING = "SELECT pg_advisory_xact_lock(hashtextextended('metric-partitions', 0))"


async def make(conn: asyncpg.Connection, period: str) -> bool:
    """Make one month's partition; False when it exists or existed (archived)."""
    async with conn.transaction():
        await conn.execute(_MAKING)
        made: bool = await conn.fetchval("SELECT metric_make_partition($1)", period)
    return made


def partition_name(period: str) -> str:
    """Return the table that holds a month's samples."""
    return "metric_sample_" + period.replace("-", "_")


@dataclass(frozen=True)
class Archived:
    """A month written to its archive file and dropped."""

    period: str
    file: Path
    sha256: str
    samples: int


@dataclass(frozen=True)
class Skipped:
    """A month before the limit that was left alone, and why."""

    period: str
    reason: str


# Months before the limit still stored, each with the cycles of its samples that are not
# published yet (a team's latest status event), so only fully published months are archived.
_CANDIDATES = f"""
SELECT p.period, p.state,
       coalesce((
           SELECT array_agg(k.team_id ORDER BY k.team_id)
           FROM (SELECT DISTINCT team_id FROM metric_sample s WHERE s.period = p.period) k
           WHERE coalesce({cycle_status_sql("k.team_id", "p.period")}, '')
                 <> 'CyclePublished'
       ), '{{}}') AS unpublished
FROM metric_partition p
WHERE p.period < $1 AND p.state IN ('live', 'archiving')
ORDER BY p.period
"""

_RUNNING = """
SELECT coalesce(bool_and(pg_xact_status(x) <> 'in progress'), true)
FROM unnest($1::xid8[]) x
"""


async def _wait_for_writers(conn: asyncpg.Connection) -> None:
    """Wait until every transaction running now (call outside a transaction) has ended."""
    running = await conn.fetchval(
        "SELECT array_agg(x) FROM pg_snapshot_xip(pg_current_snapshot()) x")
    if not running:
        return
    while not await conn.fetchval(_RUNNING, running):  # noqa: ASYNC110 (polling the server)
        await asyncio.sleep(0.05)


class _Export:
    """Compress COPY's output into a file, counting lines and hashing the compressed bytes."""

    def __init__(self, path: Path) -> None:
        self.lines = 0
        self.digest = hashlib.sha256()
        self._out = path.open("wb")
        # Level 1: about a fifth of the CSV's size, and zlib keeps up with COPY.
        self._packer = gzip.GzipFile(filename="", mode="wb", fileobj=self, compresslevel=1,
                                     mtime=0)

    async def chunk(self, data: bytes) -> None:
        """Take a chunk of COPY's output."""
        self.lines += data.count(b"\n")
        self._packer.write(data)

    def write(self, data: bytes) -> int:
        """Take compressed bytes from gzip."""
        self.digest.update(data)
        return self._out.write(data)

    def flush(self) -> None:
        """Flush the file (gzip calls it)."""
        self._out.flush()

    def close(self) -> None:
        """Finish the gzip stream and make the file durable."""
        self._packer.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()


async def archive_month(conn: asyncpg.Connection, period: str, directory: Path,
                        now: datetime) -> Archived:
    """Export one month's samples to directory, check them, then drop the partition."""
    await conn.execute("UPDATE metric_partition SET state = 'archiving' WHERE period = $1",
                       period)
    await _wait_for_writers(conn)
    table = partition_name(period)
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a command-line tool)
    final = directory / f"metric_sample_{period}.csv.gz"
    part = final.with_name(final.name + ".part")
    export = _Export(part)
    try:
        await conn.copy_from_table(table, output=export.chunk, format="csv", header=True)
    finally:
        export.close()
    rows = export.lines - 1  # the header; no value holds a newline (refused on input)
    stored: int = await conn.fetchval(f'SELECT count(*) FROM "{table}"')
    if rows != stored:
        raise RuntimeError(f"{period}: wrote {rows} rows of {stored}; nothing dropped")
    checksum = export.digest.hexdigest()
    os.replace(part, final)
    final.with_name(final.name + ".sha256").write_text(f"{checksum}  {final.name}\n")
    async with conn.transaction():
        await conn.execute(
            f"""
            UPDATE metric_quarantine q
            SET status = 'accepted', replayed_at = s.received_at, resolved_by = 'resent'
            FROM "{table}" s
            WHERE q.source = s.source AND q.sample_id = s.sample_id
              AND q.status = 'quarantined'
            """)
        await conn.execute(f'DROP TABLE "{table}"')
        await conn.execute(
            "UPDATE metric_partition SET state = 'archived', archived_at = $2, file = $3,"
            " sha256 = $4, samples = $5 WHERE period = $1",
            period, now, str(final), checksum, rows)
    return Archived(period, final, checksum, rows)


async def archive(conn: asyncpg.Connection, before: str, directory: Path, now: datetime,
                  progress: Callable[[Archived | Skipped], None] | None = None,
                  ) -> list[Archived | Skipped]:
    """Archive every fully published month before ``before``; return what became of each."""
    done: list[Archived | Skipped] = []
    for row in await conn.fetch(_CANDIDATES, before):
        result: Archived | Skipped
        if row["unpublished"] and row["state"] == "live":
            result = Skipped(row["period"], "not published for "
                             + ", ".join(row["unpublished"][:5])
                             + (" and others" if len(row["unpublished"]) > 5 else ""))
        else:
            result = await archive_month(conn, row["period"], directory, now)
        done.append(result)
        if progress is not None:
            progress(result)
    return done
