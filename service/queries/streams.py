"""Fold a stream into its state: the read every command and stream query starts from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import asyncpg

from service.context import ServiceContext, StreamStates
from service.domain.events import DomainEvent, decode
from service.store.event_store import read_stream

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
    held = states.get(key) if states is not None else None
    state, version = (cast(S | None, held[0]), held[1]) if held is not None else (None, 0)
    recorded = await read_stream(conn, stream_id, after_version=version)
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
    return cast(S | None, entry[0]) if entry is not None else None


async def read_state(
    ctx: ServiceContext, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None
) -> S | None:
    """Return a stream's current state, outside any command (a read)."""
    async with ctx.db.connection() as conn:
        state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
    return state
