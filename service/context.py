"""What a running service holds: settings, database, clock, runners."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.caching import LRU
from service.config import Settings
from service.notifier import Notifier
from service.projections.runner import ProjectionRunner
from service.queries.documents import DocumentCache, document_cache
from service.store.database import Database

Clock = Callable[[], datetime]

#: Aggregates by (stream, evolve, fold): the state folded so far and the stream version it is
#: at. Loading reads only the events after that version (service.commands.base.load).
StreamStates = LRU[tuple[object, ...], tuple[object, int]]

#: How many folded events the held aggregates may stand for in all (a 1,000-agent month is
#: about 2,000).
STATE_CAPACITY = 50_000


def stream_states(capacity: int = STATE_CAPACITY) -> StreamStates:
    """Return an empty cache of aggregates, weighed by the events folded into each."""
    return LRU(capacity, lambda held: held[1] + 1)


def system_clock() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass
class ServiceContext:
    """Shared by every request; nothing here is per-process state two replicas could disagree on."""

    settings: Settings
    db: Database
    clock: Clock = system_clock
    runner: ProjectionRunner | None = None
    notifier: Notifier | None = None
    #: checked against the database on every read (see the module), so replicas agree
    documents: DocumentCache = field(default_factory=document_cache)
    states: StreamStates = field(default_factory=stream_states)
    extras: dict[str, object] = field(default_factory=dict)

    def committed(self) -> None:
        """Wake projections after a command's events committed."""
        if self.notifier is not None:
            self.notifier.poke()
