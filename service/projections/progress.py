"""How far this process's projection runner has got: waiters wake when a batch commits.

A read that must see a write (``service.queries.wait``) asks the database whether the
projection has applied it; this tells it when asking again is worth it. The runner of this
process reports each committed batch here, so a reader here wakes at once; a projection advanced
by another process is seen by the reader's short poll instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from service.background import woken
from service.projections.base import Projection


class Progress:
    """A wake-up per projection, fired each time this process commits a batch of it."""

    def __init__(self) -> None:
        # One event per projection that someone waits on; fired and replaced at each batch,
        # so a waiter only ever sees a batch committed after it started waiting.
        self._next: dict[str, asyncio.Event] = {}
        #: Set when a reader starts waiting on the projection (cuts a runner's pause short).
        self._asked: dict[str, asyncio.Event] = {}

    def advanced(self, projection: Projection) -> None:
        """Note that a batch of ``projection`` committed (called by the runner)."""
        fired = self._next.pop(projection.name, None)
        if fired is not None:
            fired.set()

    async def pause(self, projection: Projection, seconds: float) -> None:
        """Let up to ``seconds`` pass (a runner letting its next batch gather), but none while
        a reader here waits for ``projection``: a read after a write never waits for the pause."""
        if projection.name in self._next:
            return
        asked = self._asked.setdefault(projection.name, asyncio.Event())
        asked.clear()
        await woken(asked, seconds)

    async def changed(self, projections: Iterable[Projection], timeout: float) -> None:  # noqa: ASYNC109
        """Return when any of ``projections`` advances here, or after ``timeout`` seconds."""
        events = [self._next.setdefault(p.name, asyncio.Event()) for p in projections]
        for p in projections:
            if (asked := self._asked.get(p.name)) is not None:
                asked.set()
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w
