"""Run a slow event-log projection in its own process (URL and name as arguments)."""

from __future__ import annotations

import asyncio
import sys

from service.projections.runner import ProjectionRunner
from service.store.database import Database
from tests.support.projections import event_log


async def main(url: str, name: str) -> None:
    db = Database(url, pool_size=2)
    runner = ProjectionRunner(
        db, [event_log(name, delay_seconds=0.05)], poll_seconds=0.02, lease_retry_seconds=0.1
    )
    runner.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.stop()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
