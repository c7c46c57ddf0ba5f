"""Fold a stream into its state: the read every command and stream query starts from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg

from service.context import ServiceContext, StreamStates
from service.domain.events import DomainEvent, decode
from service.store.event_store import RecordedEvent, read_stream, read_streams

S = TypeVar("S")
Evolve = Callable[[S | None, DomainEvent], S | None]
#: Apply many events at once; aggregates with long streams provide one that avoids per-event
#: copies (the cycle's thousands of evaluations).
Fold = Callable[[S | None, Sequence[DomainEvent]], S | None]


async def load(
    conn: asyncpg.Connection, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None,
    *, states: StreamStates | None = None,
) -> tuple[S | None, int]:
    """Fold a stream into its state; return the state and the stream version.

    With states, start from the state held for this stream and fold only the events after its
    version (a month of a large team has thousands). Only pass states where the connection has
    written nothing yet: what is held must be committed, as every other reader would see it.
    """
    key = held_key(stream_id, evolve, fold)
    state, version = _start(states, key)
    recorded = await read_stream(conn, stream_id, after_version=version)
    return _folded(states, key, state, version, recorded, evolve, fold)


def _start(states: StreamStates | None, key: tuple[object, ...]) -> tuple[Any, int]:
    """Return the state held under key and its version (nothing held: None at version 0)."""
    held = states.get(key) if states is not None else None
    return (held[0], held[1]) if held is not None else (None, 0)


def _folded(
    states: StreamStates | None, key: tuple[object, ...], state: S | None, version: int,
    recorded: Sequence[RecordedEvent], evolve: Evolve[S], fold: Fold[S] | None,
) -> tuple[S | None, int]:
    """Fold the events read after the held state into it, and hold the result."""
    if not recorded:
        return state, version
    events = [decode(r.type, r.schema_version, r.data) for r in recorded]
    if fold is not None:
        state = fold(state, events)
    else:
        for e in events:
            state = evolve(state, e)
    version = recorded[-1].version
    if states is not None:
        states.put(key, (state, version))
    return state, version


def held_key(stream_id: str, evolve: Evolve[S], fold: Fold[S] | None) -> tuple[object, ...]:
    # One aggregate per way of folding the stream: a cycle and its sanctions ledger differ.
    return (stream_id, evolve, fold)


def held(ctx: ServiceContext, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None
         ) -> S | None:
    """Return the state of a stream this process holds (as of its last read or command on it),
    without asking the database: only for what a stream never changes once recorded."""
    entry = ctx.states.get(held_key(stream_id, evolve, fold))
    return cast("S | None", entry[0]) if entry is not None else None


async def read_state(
    ctx: ServiceContext, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None
) -> S | None:
    """Return a stream's current state, outside any command (a read)."""
    async with ctx.db.connection() as conn:
        state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
    return state


#: A stream to read, folded by its evolve and, for a long one, its fold.
Spec = tuple[str, Evolve[Any]] | tuple[str, Evolve[Any], Fold[Any]]


async def read_versions(ctx: ServiceContext, *streams: Spec) -> list[tuple[Any, int]]:
    """Return the current states of several streams with their versions, from one round trip
    (a read, outside any command). A command may decide on a state read so, without reading
    its stream again (``execute(read=...)``)."""
    wanted = Reading.of(ctx, *streams)
    async with ctx.db.connection() as conn:
        recorded = await read_streams(conn, wanted.after)
    return wanted.fold(recorded)


@dataclass(frozen=True, slots=True)
class Reading:
    """``read_versions`` in two halves, for a statement that reads the streams with more
    beside them (``event_store.streams_after``): ``after`` is what to ask for, the versions
    this process holds; ``fold`` folds the events read into the states held."""

    states: StreamStates
    specs: list[tuple[str, Evolve[Any], Fold[Any] | None]]
    keys: list[tuple[object, ...]]
    starts: list[tuple[Any, int]]

    @classmethod
    def of(cls, ctx: ServiceContext, *streams: Spec) -> Reading:
        """Return the reading of streams from the versions this process holds."""
        specs = [(spec[0], spec[1], spec[2] if len(spec) > 2 else None) for spec in streams]
        keys = [held_key(stream_id, evolve, fold) for stream_id, evolve, fold in specs]
        return cls(ctx.states, specs, keys, [_start(ctx.states, key) for key in keys])

    @property
    def after(self) -> dict[str, int]:
        """Return each stream's version held (0: none), which the read starts after."""
        return {stream_id: version
                for (stream_id, _, _), (_, version) in zip(self.specs, self.starts, strict=True)}

    def fold(self, recorded: Mapping[str, Sequence[RecordedEvent]]) -> list[tuple[Any, int]]:
        """Return each stream's state and version, the events read folded in (and held)."""
        return [
            _folded(self.states, key, state, version, recorded[stream_id], evolve, fold)
            for key, (state, version), (stream_id, evolve, fold)
            in zip(self.keys, self.starts, self.specs, strict=True)
        ]


def held_versions(ctx: ServiceContext, *streams: Spec) -> list[tuple[Any, int]] | None:
    """Return the states of several streams with their versions as this process holds them
    (``read_versions`` without the round trip), or None unless it holds every one. They may be
    stale: only for a decision whose append checks that none moved (``execute(guards=...)``)."""
    found = []
    for spec in streams:
        entry = ctx.states.get(held_key(spec[0], spec[1], spec[2] if len(spec) > 2 else None))
        if entry is None:
            return None
        found.append(entry)
    return found
