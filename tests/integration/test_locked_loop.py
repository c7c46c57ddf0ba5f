"""A loop on one replica at a time (``LockedLoop``) waits out a database that is away: it
keeps trying, with growing pauses, and stops cleanly when asked."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from service.store.database import Database
from service.store.locked_loop import LockedLoop, pause_after


class Probe(LockedLoop):
    """Counts its passes (none, while the database is away)."""

    passes = 0

    async def work(self, conn: asyncpg.Connection) -> None:
        """Count the pass."""
        self.passes += 1


async def test_a_loop_waits_for_an_absent_database_with_growing_pauses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Port 1: nothing listens, so every connection is refused at once.
    probe = Probe(Database("postgresql://nobody@127.0.0.1:1/none"), name="probe",
                  lock=(7215099, "probe"), interval_seconds=0.01, standby_seconds=4.0)
    with caplog.at_level(logging.WARNING):
        probe.start()
        await asyncio.sleep(1.3)
        await asyncio.wait_for(probe.stop(), 5)
    tries = [r for r in caplog.records if "probe cannot reach the database" in r.getMessage()]
    # Pauses of 0.5 s, then 1 s: two failed tries in 1.3 s (one more on a slow machine), not
    # one every 10 ms.
    assert 1 <= len(tries) <= 3
    assert probe.passes == 0 and not probe.holding


class FakeTime:
    """A monotonic clock that a pass moves on by its length, and a sleep that records its
    pause and moves the clock on by it (no time passes)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []
        self.done = asyncio.Event()

    def monotonic(self) -> float:
        """Now."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the pause; after the fourth, wait to be stopped."""
        self.pauses.append(seconds)
        self.now += seconds
        if len(self.pauses) == 4:
            self.done.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


class Timed(LockedLoop):
    """Passes that take the times given, on the fake clock."""

    def __init__(self, db: Database, time: FakeTime, takes: list[float]) -> None:
        super().__init__(db, name="timed", lock=(7215099, "timed"), interval_seconds=2.0,
                         standby_seconds=10.0, share=0.1, longest_seconds=20.0,
                         monotonic=time.monotonic,
                         sleep=time.sleep)
        self.time = time
        self.takes = takes

    async def work(self, conn: asyncpg.Connection) -> None:
        """Take the next pass's time."""
        self.time.now += self.takes.pop(0)


def test_the_pause_is_the_interval_or_long_enough_for_the_share() -> None:
    assert pause_after(0.05, 2.0, None, 10.0) == 2.0
    assert pause_after(5.0, 2.0, None, 10.0) == 2.0
    assert pause_after(0.05, 2.0, 0.1, 10.0) == 2.0
    assert pause_after(1.0, 2.0, 0.1, 10.0) == pytest.approx(9.0)
    assert pause_after(3.0, 2.0, 0.1, 10.0) == 10.0  # never longer than the longest
    # a pass and its pause: the pass is the share of the time
    assert 1.0 / (1.0 + pause_after(1.0, 2.0, 0.25, 10.0)) == pytest.approx(0.25)


async def test_a_loop_steps_back_after_long_passes_and_returns_to_its_interval(
    database_url: str,
) -> None:
    time = FakeTime()
    db = Database(database_url, pool_size=2)
    # A quick pass, two slow ones (a busy machine), a quick one again.
    loop = Timed(db, time, [0.1, 0.5, 3.0, 0.1])
    try:
        loop.start()
        await asyncio.wait_for(time.done.wait(), 30)
        await asyncio.wait_for(loop.stop(), 5)
    finally:
        await db.close()
    assert time.pauses == pytest.approx([2.0, 4.5, 20.0, 2.0])
