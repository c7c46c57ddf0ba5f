"""A loop on one replica at a time (``LockedLoop``) waits out a database that is away: it
keeps trying, with growing pauses, and stops cleanly when asked."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from service.store.database import Database
from service.store.locked_loop import LockedLoop


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
