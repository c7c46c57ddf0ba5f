"""What a projection is: named read-model tables and a batch apply function."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

import asyncpg

from service.store.event_store import DataOnly, RecordedEvent, stream_type


@dataclass(frozen=True)
class Only:
    """Of the events of ``stream_types``, only those of ``event_types`` (the events of every
    other stream type all count)."""

    stream_types: tuple[str, ...]
    event_types: frozenset[str]

    def admits(self, stream_type: str, event_type: str) -> bool:
        """Tell whether an event of this type on a stream of this type counts."""
        return stream_type not in self.stream_types or event_type in self.event_types

    def any_of(self, events: Sequence[RecordedEvent]) -> bool:
        """Tell whether any of these events counts."""
        return any(self.admits(stream_type(e.stream_id), e.type) for e in events)

    def any_committed(self, stream_types: Collection[str], event_types: Collection[str]
                      ) -> bool:
        """Tell whether a commit of these event types to streams of these types holds one
        that counts."""
        return any(self.admits(s, e) for s in stream_types for e in event_types)

    def parameters(self) -> tuple[list[str], list[str]]:
        """Return the two array parameters of ``admits_sql``: the stream types, the event types."""
        return list(self.stream_types), sorted(self.event_types)


def admits_sql(stream_types: str, event_types: str) -> str:
    """Return ``Only.admits`` in SQL, of an event row ``e``, given the placeholders ($n) of
    ``Only.parameters``' two arrays (never values)."""
    return (f"NOT (e.stream_type = ANY({stream_types}::text[])"
            f" AND e.type <> ALL({event_types}::text[]))")


def past_checkpoint_sql(stream_types: str, tx_id: str, position: str, counts: str,
                        bound: str = "", *, first: bool = False) -> str:
    """Return SQL for the rows of the events that count (``counts``: SQL of an event row
    ``e``, as ``admits_sql``) past a checkpoint (``tx_id``, ``position``), each of the stream
    types of the array ``stream_types`` probed forward on its own range of the
    (stream_type, tx_id, position) index; ``bound`` adds a condition (``AND ...``), and
    ``first`` keeps each type's first event only (enough to tell whether there is one). Every
    argument is SQL (code and placeholders), never a value."""
    limit = "ORDER BY e.stream_type, e.tx_id, e.position LIMIT 1" if first else ""
    return f"""
    SELECT 1 FROM unnest({stream_types}::text[]) AS t (stream_type)
    CROSS JOIN LATERAL (
        SELECT 1 FROM event e
        WHERE e.stream_type = t.stream_type
          AND (e.stream_type, e.tx_id, e.position) > (t.stream_type, {tx_id}, {position})
          AND {counts} {bound}
        {limit}) AS counted"""


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
    #: The events that change the read model; None: every event read. The runner reads past a
    #: batch that holds none of them without a transaction (its checkpoint follows with a
    #: later batch), wakes the projection only for commits that hold one, and readers waiting
    #: for it (service.queries.wait) wait for these events alone.
    applies: ClassVar[Only | None] = None

    async def writes(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> bool:
        """Tell whether applying this batch (of events it applies) would write anything; asked
        before the runner opens the batch's transaction. When it would not, the runner stores
        the checkpoint alone, one statement and no transaction (a commit costs PostgreSQL a WAL
        flush and the process two round trips): the webhook dispatch with no subscription that
        wants the batch, as under a load of evaluations with no subscriptions at all."""
        return True

    @abstractmethod
    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Apply a batch of events inside the runner's transaction."""

    def table_names(self, generation: int) -> Tables:
        """Return this projection's tables for a generation."""
        return Tables(list(self.tables), generation)
