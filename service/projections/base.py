"""What a projection is: named read-model tables and a batch apply function."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import asyncpg

from service.store.event_store import DataOnly, RecordedEvent


class Tables:
    """Physical names of one generation of a projection's tables.

    Each generation has its own tables (``ranking__g3``); readers use a stable view with the
    logical name (``ranking``) that is repointed when a rebuilt generation takes over, so they
    never see a half-built table.
    """

    def __init__(self, logical: Sequence[str], generation: int) -> None:
        self.generation = generation
        self._names = {name: f"{name}__g{generation}" for name in logical}

    def __getitem__(self, logical: str) -> str:
        return self._names[logical]

    def items(self) -> list[tuple[str, str]]:
        """Return (logical, physical) pairs."""
        return list(self._names.items())


class Projection(ABC):
    """A read model built from the event store.

    Table names are code, never input, so they are formatted into SQL; values are always
    bound parameters.
    """

    name: ClassVar[str]
    #: Bump when the apply logic or the tables change: the runner rebuilds beside the live one.
    version: ClassVar[int]
    #: logical table name -> column definitions "(a text, b int, PRIMARY KEY (a))".
    tables: ClassVar[dict[str, str]]
    #: Only events of these stream types are read; None reads everything.
    stream_types: ClassVar[tuple[str, ...] | None] = None
    #: The events whose data apply() reads; None: every event's (see DataOnly).
    data_only: ClassVar[DataOnly | None] = None

    @abstractmethod
    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply a batch of events inside the runner's transaction."""

    def table_names(self, generation: int) -> Tables:
        """Return this projection's tables for a generation."""
        return Tables(list(self.tables), generation)
