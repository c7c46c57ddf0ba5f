"""What a running service holds: settings, database, clock, runners."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.config import Settings
from service.notifier import Notifier
from service.projections.runner import ProjectionRunner
from service.queries.documents import DocumentCache
from service.store.database import Database

Clock = Callable[[], datetime]


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
    documents: DocumentCache = field(default_factory=DocumentCache)
    extras: dict[str, object] = field(default_factory=dict)

    def committed(self) -> None:
        """Wake projections after a command's events committed."""
        if self.notifier is not None:
            self.notifier.poke()
