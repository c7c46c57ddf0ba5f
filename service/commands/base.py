"""Run a command: load the stream, decide with a pure function, append, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from service.context import ServiceContext
from service.domain.events import DomainEvent, decode
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
    conn: asyncpg.Connection, stream_id: str, evolve: Evolve[S], fold: Fold[S] | None = None
) -> tuple[S | None, int]:
    """Fold a stream into its state; return the state and the stream version."""
    recorded = await read_stream(conn, stream_id)
    events = [decode(r.type, r.schema_version, r.data) for r in recorded]
    version = recorded[-1].version if recorded else 0
    if fold is not None:
        return fold(None, events), version
    state: S | None = None
    for e in events:
        state = evolve(state, e)
    return state, version


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
                    state, version = await load(conn, stream_id, evolve, fold)
                    events = decide(state)
                    if not events:
                        return state, None
                    result = await append(
                        conn, stream_id, to_new(events), expected_version=version,
                        metadata=caller.metadata, recorded_at=ctx.clock(),
                        idempotency_key=caller.idempotency_key,
                    )
            except ConcurrencyError:
                # Only a writer outside this service's commands can get here.
                if attempt == RETRIES - 1:
                    raise
                continue
            if result.duplicate:
                state, _ = await load(conn, stream_id, evolve, fold)
                return state, result
        ctx.committed()
        for e in events:
            state = evolve(state, e)
        return state, result
    raise AssertionError("unreachable")
