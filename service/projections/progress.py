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

from service.projections.base import Projection


class Progress:
    """A wake-up per projection, fired each time this process commits a batch of it."""

    def __init__(self) -> None:
        # One event per projection that someone waits on; fired and replaced at each batch,
        # so a waiter only ever sees a batch committed after it started waiting.
        self._next: dict[str, asyncio.Event] = {}

    def advanced(self, projection: Projection) -> None:
        """Note that a batch of ``projection`` committed (called by the runner)."""
        fired = self._next.pop(projection.name, None)
        if fired is not None:
            fired.set()

    async def changed(self, projections: Iterable[Projection], timeout: float) -> None:  # noqa: ASYNC109
        """Return when any of ``projections`` advances here, or after ``timeout`` seconds."""
        events = [self._next.setdefault(p.name, asyncio.Event()) for p in projections]
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w
