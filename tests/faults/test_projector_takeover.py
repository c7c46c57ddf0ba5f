"""Two projector processes on one projection: one at a time, and a SIGKILL hands over cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.store.database import Database
from service.store.event_store import NewEvent, append

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 3000


def _start(url: str, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.projector_process", url, name],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _applied(db: Database, table: str) -> list[tuple[int, int]]:
    async with db.connection() as conn:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            return []
        rows = await conn.fetch(f"SELECT position, applied_by FROM {table} ORDER BY seq")
    return [(r["position"], r["applied_by"]) for r in rows]


async def test_sigkill_of_the_active_projector_hands_over_without_loss(
    db: Database, database_url: str, uid: str
) -> None:
    name = f"takeover_{uid}"
    prefix = f"kill{uid}"
    now = datetime(2026, 11, 3, tzinfo=UTC)
    async with db.connection() as conn:
        for batch in range(EVENTS // 100):
            await append(
                conn, f"{prefix}:{batch}", [NewEvent("Tested", {"i": i}) for i in range(100)],
                expected_version=0, metadata={}, recorded_at=now,
            )
        total = await conn.fetchval("SELECT count(*) FROM event")

    first, second = _start(database_url, name), _start(database_url, name)
    processes = {first.pid: first, second.pid: second}
    try:
        # Wait until one of them is working, then kill it in the middle of a batch.
        for _ in range(400):
            applied = await _applied(db, name)
            if len(applied) > 500:
                break
            await asyncio.sleep(0.05)
        active = {by for _, by in applied}
        assert len(active) == 1, "two processes advanced the projection at once"
        victim = active.pop()
        processes[victim].send_signal(signal.SIGKILL)
        processes[victim].wait(timeout=10)

        for _ in range(2400):
            applied = await _applied(db, name)
            if len(applied) >= total:
                break
            await asyncio.sleep(0.05)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()

    positions = [p for p, _ in applied]
    assert len(positions) == len(set(positions)), "an event was applied twice"
    assert len(positions) == total, "an event was lost in the hand-over"
    appliers = [by for _, by in applied]
    survivor = next(pid for pid in processes if pid != victim)
    # One hand-over: the victim's rows, then only the survivor's.
    switch = appliers.index(survivor)
    assert set(appliers[:switch]) == {victim} and set(appliers[switch:]) == {survivor}
    assert os.getpid() not in appliers
