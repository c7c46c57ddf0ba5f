"""Run a command: load the stream, decide with a pure function, append, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from service.context import ServiceContext
from service.domain.events import DomainEvent
from service.projections.decoded import remember
from service.queries.streams import Evolve, Fold, S, held_key, load
from service.retrying import on_conflict
from service.store import invalidation
from service.store.event_store import AppendResult, NewEvent, append


@dataclass(frozen=True)
class Caller:
    """Who runs a command and in which request (event metadata, idempotency key)."""

    metadata: Mapping[str, Any]
    idempotency_key: str | None = None


def to_new(events: list[DomainEvent]) -> list[NewEvent]:
    """Turn domain events into store events."""
    return [NewEvent(e.type, e.data(), e.schema_version) for e in events]


#: A step inside a command's transaction: reads before the decision, or the rows a command keeps
#: beside its events (an API key's row) after the append, which must stay its first write.
Step = Callable[[asyncpg.Connection], Awaitable[None]]


async def execute(
    ctx: ServiceContext,
    caller: Caller,
    stream_id: str,
    evolve: Evolve[S],
    decide: Callable[[S | None], list[DomainEvent]],
    fold: Fold[S] | None = None,
    *,
    announces: str | None = None,
    before: Step | None = None,
    then: Step | None = None,
) -> tuple[S | None, AppendResult | None]:
    """Decide on the current state and append, in one transaction.

    ``announces`` names the cache (``ServiceContext.shared_caches``) that every process drops
    when the append commits: for the rare commands that change what is cached.

    The stream's advisory lock is taken before reading, so commands on one stream queue up
    instead of failing each other's expected-version check (twenty concurrent revisions of one
    evaluation all land, in commit order). The lock takes no transaction id, so the append is
    still the transaction's first write, as the store requires. ``before`` runs under the lock
    ahead of the decision (reads only); ``then`` runs after the append, in the same transaction,
    and only when something was appended.

    Returns the state after the command and the append (None when the decision was "no change");
    ``AppendResult.position`` is the global position written, what a reader waits for.
    """
    async for attempt in on_conflict():
        with attempt:
            async with ctx.db.connection() as conn:
                async with conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id
                    )
                    if before is not None:
                        await before(conn)
                    state, version = await load(conn, stream_id, evolve, fold,
                                                states=ctx.states)
                    events = decide(state)
                    if not events:
                        return state, None
                    started = time.perf_counter()
                    written = to_new(events)
                    dumped = time.perf_counter() - started
                    # Only a writer outside this service's commands can make this conflict.
                    result = await append(
                        conn, stream_id, written, expected_version=version,
                        metadata=caller.metadata, recorded_at=ctx.clock(),
                        idempotency_key=caller.idempotency_key,
                    )
                    if then is not None and not result.duplicate:
                        await then(conn)
                    if announces is not None and not result.duplicate:
                        await invalidation.announce(conn, announces)
                if result.duplicate:
                    state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
                    return state, result
    ctx.committed()
    if announces is not None:
        ctx.dropped(announces)  # here at once; other processes on the NOTIFY
    for e in events:
        state = evolve(state, e)
    # Committed, so hold it: the next command or read on this stream folds nothing (the
    # close of a 1,000-agent month is a 3.6 MB event, 0.3 s to read back and decode).
    ctx.states.put(held_key(stream_id, evolve, fold), (state, result.version))
    if result.tx_id is not None:
        for event, event_id, position in zip(events, result.event_ids, result.positions,
                                             strict=True):
            remember(event_id, result.tx_id, position, event, dumped / len(events))
    return state, result
