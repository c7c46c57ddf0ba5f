"""Work that runs beside the requests, in one asyncio task from ``start`` until ``stop``.

The notifier, the cache listener, the locked loops (scheduler, KPI values, partition upkeep)
and the mail and webhook senders are such work: each writes ``run``; starting and stopping are
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from service.store.database import database_away


class Background:
    """One background task running ``run``; ``stop`` cancels it and waits for its cleanup."""

    #: The asyncio task's name (shown in task dumps and debuggers).
    task_name = "background"
    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Do the work until cancelled."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the task."""
        self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        """Cancel the task and return once it has finished (its ``finally`` blocks ran)."""
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; tell whether it was set.

    asyncio.timeout, not wait_for: 3.11's wait_for can swallow the cancel that a ``stop``
    sends when the event is set at the same moment, and the task would never end."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def poll(work: Callable[[], Awaitable[int]], wake: asyncio.Event, *, first: float,
               cap: float, name: str, log: logging.Logger) -> None:
    """Run ``work`` for ever: again at once while it does something (returns a count above
    zero); otherwise after a pause that doubles from ``first`` up to ``cap``, cut short by
    ``wake``. A failed pass is logged (as ``name``) and tried again after ``cap``."""
    idle = first
    while True:
        wake.clear()
        try:
            done = await work()
        except Exception as exc:
            if database_away(exc):
                log.warning("%s lost the database (%s)", name, type(exc).__name__)
            else:
                log.exception("%s failed; retrying", name)
            done, idle = 0, cap
        if done:
            idle = first
            continue
        await woken(wake, idle)
        idle = min(idle * 2, cap)
