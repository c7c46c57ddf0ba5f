"""Background work that one replica at a time does: a loop under a session advisory lock.

The lock lives on a dedicated connection (``connect_single``): when the process or its
connection dies, PostgreSQL releases the lock and another replica's loop takes it within
``standby_seconds``. The scheduler, the live KPI values (which fold the metric totals too) and
the metric partitions' upkeep are such loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from service.background import Background
from service.retrying import reconnecting
from service.store.database import Database, database_away

log = logging.getLogger(__name__)


async def try_advisory_lock(conn: asyncpg.Connection, lock: tuple[int, str]) -> bool:
    """Take the session advisory lock ``lock`` (a namespace and a name) for the connection's
    lifetime, if it is free."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", *lock))


async def take_lock(db: Database, lock: tuple[int, str], *, first: float, cap: float,
                    name: str) -> asyncpg.Connection | None:
    """Connect and try the session advisory lock ``lock``; return the connection holding it,
    or None when another connection holds it. While the database is away, try again after
    ``first`` seconds, doubling up to ``cap`` (logged under ``name``)."""
    async for attempt in reconnecting(first=first, cap=cap, name=name):
        with attempt:
            conn = await db.connect_single()
            try:
                locked = await try_advisory_lock(conn, lock)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.close(timeout=2))
                raise
            if locked:
                return conn
            await conn.close()
    return None


def pause_after(took: float, interval: float, share: float | None, longest: float) -> float:
    """Return the pause after a pass that took ``took`` seconds: ``interval``, or, with a
    ``share`` (0 < share < 1), as long as it takes for the pass to be at most that share of the
    time from its start to the next one's, ``took * (1 - share) / share``, when that is longer,
    up to ``longest``.

    A pass's time grows with the machine's load (it waits for the CPU as well as working), so
    under heavy load such a loop steps back, and takes the interval again once passes are
    quick. One pass at a time on one connection, so its work is at most ``share`` of a core
    (its own process's and PostgreSQL's together, in turn) while the pause it asks is at most
    ``longest``; past that, what the loop keeps up to date is never more than ``longest``
    and a pass behind."""
    if share is None:
        return interval
    return min(longest, max(interval, took * (1 - share) / share))


class LockedLoop(Background):
    """Run ``work`` every ``interval`` seconds on the one replica that holds the lock (with
    ``share``, after a longer pause, up to ``longest``, when a pass took long: ``pause_after``)."""

    #: Errors that mean "not yet" (say, a table the migrations have not made): wait quietly.
    quiet: tuple[type[BaseException], ...] = ()

    def __init__(self, db: Database, *, name: str, lock: tuple[int, str],
                 interval_seconds: float, standby_seconds: float, share: float | None = None,
                 longest_seconds: float | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.db = db
        self.name = name
        self.lock = lock
        self.interval = interval_seconds
        self.standby = standby_seconds
        self.share = share
        self.longest = longest_seconds if longest_seconds is not None else interval_seconds
        self.monotonic = monotonic
        self.sleep = sleep
        self.holding = False
        self.task_name = lock[1]

    async def work(self, conn: asyncpg.Connection) -> None:
        """Do one pass; ``conn`` is the connection that holds the lock."""
        raise NotImplementedError

    async def run(self) -> None:
        """Take the lock and work; stopped, the connection closes and the lock goes with it."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                # While the database is away, try again after 0.5 s, doubling up to standby.
                conn = await take_lock(self.db, self.lock, first=0.5, cap=self.standby,
                                       name=self.name)
                if conn is None:
                    await asyncio.sleep(self.standby)
                    continue
                self.holding = True
                while True:
                    # A dead lock connection means another replica may hold the lock now.
                    await conn.fetchval("SELECT 1")
                    started = self.monotonic()
                    await self.work(conn)
                    await self.sleep(pause_after(self.monotonic() - started, self.interval,
                                                 self.share, self.longest))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if database_away(exc):
                    # Reconnecting backs off in take_lock, starting again from its first wait.
                    log.warning("%s lost the database (%s); retrying", self.name,
                                type(exc).__name__)
                else:
                    if not isinstance(exc, self.quiet):
                        log.exception("%s pass failed; retrying", self.name)
                    await asyncio.sleep(self.interval)
            finally:
                self.holding = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=2))
