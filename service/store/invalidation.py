"""Dropping cached copies in every process at once: ``NOTIFY csperf_cache`` and its listener.

A command that changes something processes cache (an API key's revocation; a month's close,
publication, reopening or correction, which change its ranking) calls ``announce`` in its own
transaction. PostgreSQL delivers a notification only when that transaction commits, and to
every listening connection, so each process drops its copy as the change becomes visible, and
never for a change that rolled back. Only those rare commands notify: a ``NOTIFY`` in every
append would serialise commits.

Each process keeps one dedicated connection listening (``CacheListener``). When it is lost
(the database restarted, the network went away), notifications may be missed, so the caches
are told (``on_listening(False)``) and serve nothing older than their short fallback
time-to-live; on reconnecting they are dropped (whatever was missed meanwhile) and trusted
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from service.background import Background, woken
from service.retrying import reconnecting
from service.store.database import Database

log = logging.getLogger(__name__)

CHANNEL = "csperf_cache"
#: How often the listening connection is checked, so a connection lost without a word (a
#: network gone quiet) is noticed within about this long.
PING_SECONDS = 0.5
#: Waits between attempts to listen again: from the first to the longest.
RETRY_SECONDS = (0.1, 5.0)


async def announce(conn: asyncpg.Connection, cache: str) -> None:
    """Drop ``cache`` in every process when the current transaction commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, cache)


def _any_error(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


class CacheListener(Background):
    """Listen for ``announce``; say which cache to drop, and whether notifications arrive."""

    def __init__(
        self, db: Database, *, on_change: Callable[[str], None],
        on_listening: Callable[[bool], None], ping_seconds: float = PING_SECONDS,
    ) -> None:
        self.db = db
        self.on_change = on_change
        self.on_listening = on_listening
        self.ping_seconds = ping_seconds
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    task_name = "cache-listener"

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_change(payload)

    async def run(self) -> None:
        """Listen (and again whenever the connection is lost)."""
        while True:
            # A fresh ``reconnecting`` per connection: after a connection that served, the
            # first wait is the shortest again. Any error is retried, not only the database
            # being away: a listener that gave up would leave every cache on its short
            # time-to-live for the rest of the process's life.
            async for attempt in reconnecting(first=RETRY_SECONDS[0], cap=RETRY_SECONDS[1],
                                              name="cache listener", on=_any_error):
                with attempt:
                    conn = await self._listen()
            try:
                await self._hold(conn)
            except Exception as exc:  # the database away: serve on the short time-to-live
                log.warning("not listening for cache invalidations (%s): cached entries now"
                            " live briefly", type(exc).__name__, extra={"reason": "cache-listener"})
            finally:
                self._drop(conn)

    async def _listen(self) -> asyncpg.Connection:
        """Connect and listen; from then on every change is heard."""
        self._conn = conn = await self.db.connect_single()
        try:
            # This connection's own event: an earlier one's late termination must not count.
            lost = self._lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._heard)
        except BaseException:
            self._drop(conn)
            raise
        # What was held before may have missed some changes.
        self.on_listening(True)
        return conn

    async def _hold(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost, or raise when it stops answering."""
        while not self._lost.is_set():
            if await woken(self._lost, self.ping_seconds):
                break
            async with asyncio.timeout(self.ping_seconds * 2):
                await conn.fetchval("SELECT 1")

    def _drop(self, conn: asyncpg.Connection) -> None:
        self.on_listening(False)
        with contextlib.suppress(Exception):
            conn.terminate()
        self._conn = None
