"""Run a command: load the stream, decide with a pure function, append, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg

from service.context import ServiceContext, StreamStates
from service.domain.events import DomainEvent, decode
from service.projections.decoded import remember
from service.store.errors import ConcurrencyError
from service.store.event_store import AppendResult, NewEvent, append, read_stream

S = TypeVar("S")
Evolve = Callable[[S | None, DomainEvent], S | None]
#: Apply many events at once; aggregates with long streams provide one that avoids per-event
#: copies (the cycle's thousands of evaluations).
Fold = Callable[[S | None, Sequence[DomainEvent]], S | None]

#: A command that lost a race to a writer outside these commands decides again this often.
RETRIES = 5


@dataclass(frozen=True)
class Caller:
    """Who runs a command and in which request (event metadata, idempotency key)."""

    metadata: Mapping[str, Any]
    idempotency_key: str | None = None


async def load(
    conn: asyncpg.Connection, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None,
    *, states: StreamStates | None = None,
) -> tuple[S | None, int]:
    """Fold a stream into its state; return the state and the stream version.

    With states, start from the state held for this stream and fold only the events after its
    version (a month of a large team has thousands). Only pass states where the connection has
    written nothing yet: what is held must be committed, as every other reader would see it.
    """
    key = _held_key(stream_id, evolve, fold)
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


def _held_key(stream_id: str, evolve: Evolve[S], fold: Fold[S] | None) -> tuple[object, ...]:
    # One aggregate per way of folding the stream: a cycle and its sanctions ledger differ.
    return (stream_id, evolve, fold)


async def read_state(
    ctx: ServiceContext, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None
) -> S | None:
    """Return a stream's current state, outside any command (a read)."""
    async with ctx.db.connection() as conn:
        state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
    return state


def to_new(events: list[DomainEvent]) -> list[NewEvent]:
    """Turn domain events into store events."""
    return [NewEvent(e.type, e.data(), e.schema_version) for e in events]


async def execute(
    ctx: ServiceContext,
    caller: Caller,
    stream_id: str,
    evolve: Evolve[S],
    decide: Callable[[S | None], list[DomainEvent]],
    fold: Fold[S] | None = None,
) -> tuple[S | None, AppendResult | None]:
    """Decide on the current state and append, in one transaction.

    The stream's advisory lock is taken before reading, so commands on one stream queue up
    instead of failing each other's expected-version check (twenty concurrent revisions of one
    evaluation all land, in commit order). The lock takes no transaction id, so the append is
    still the transaction's first write, as the store requires.

    Returns the state after the command and the append (None when the decision was "no change").
    """
    for attempt in range(RETRIES):
        async with ctx.db.connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id
                    )
                    state, version = await load(conn, stream_id, evolve, fold,
                                                states=ctx.states)
                    events = decide(state)
                    if not events:
                        return state, None
                    started = time.perf_counter()
                    written = to_new(events)
                    dumped = time.perf_counter() - started
                    result = await append(
                        conn, stream_id, written, expected_version=version,
                        metadata=caller.metadata, recorded_at=ctx.clock(),
                        idempotency_key=caller.idempotency_key,
                    )
            except ConcurrencyError:
                # Only a writer outside this service's commands can get here.
                if attempt == RETRIES - 1:
                    raise
                continue
            if result.duplicate:
                state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
                return state, result
        ctx.committed()
        for e in events:
            state = evolve(state, e)
        # Committed, so hold it: the next command or read on this stream folds nothing (the
        # close of a 1,000-agent month is a 3.6 MB event, 0.3 s to read back and decode).
        ctx.states.put(_held_key(stream_id, evolve, fold), (state, result.version))
        if result.tx_id is not None:
            for event, event_id, position in zip(events, result.event_ids, result.positions,
                                                 strict=True):
                remember(event_id, result.tx_id, position, event, dumped / len(events))
        return state, result
    raise AssertionError("unreachable")
