"""Run a command: load the stream, decide with a pure function, append, as one transaction."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import asyncpg

from service.context import ServiceContext
from service.domain.errors import DomainError
from service.domain.events import DomainEvent
from service.projections.decoded import remember
from service.queries.streams import Evolve, Fold, S, held_key, load
from service.retrying import RETRIES, on_conflict
from service.store import invalidation
from service.store.errors import ConcurrencyError
from service.store.event_store import AppendResult, NewEvent, append, stream_type


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
    read: tuple[S | None, int] | None = None,
    guards: Mapping[str, int] | None = None,
) -> tuple[S | None, AppendResult | None]:
    """Decide on the current state and append, as one transaction.

    First without waiting for anybody: the stream is read (only the events after the state
    this process holds), decided on, and the events appended in one statement that refuses
    them if the stream moved past the version read (two round trips, the append its own
    transaction). A command that lost that race decides again holding the stream's advisory
    lock in a transaction, so commands crowding one stream queue up rather than failing each
    other again (twenty concurrent revisions of one evaluation all land, in commit order); the
    lock takes no transaction id, so the append is still the transaction's first write, as the
    store requires.

    A command with more than its append to do always takes the transaction: ``before`` runs
    under the lock ahead of the decision (reads only); ``then`` runs after the append, in the
    same transaction, and only when something was appended; ``announces`` names the cache
    (``ServiceContext.shared_caches``) that every process drops when the append commits (for
    the rare commands that change what is cached), and its ``NOTIFY`` commits with the events.

    ``read`` is the stream's state and version as the caller read it moments ago with other
    streams in one round trip (``queries.streams.read_versions``): the first attempt decides on
    it without reading the stream again, since the append's version check refuses a stale one.

    ``guards`` (with ``read``): other streams the caller decided on outside ``decide`` (what
    ``decide`` was built from), by id, at the versions it read them. The append is refused if
    any of them moved, and then ``execute`` raises ConcurrencyError rather than deciding again,
    for the caller to read them all again and build its decision anew. Such a decision must
    append or raise: a "no change" on them would be answered unchecked.

    Returns the state after the command and the append (None when the decision was "no change");
    ``AppendResult.position`` is the global position written, what a reader waits for.
    """
    outcome: tuple[S | None, list[DomainEvent], AppendResult | None] | None = None
    attempts = RETRIES
    assert guards is None or (read is not None and announces is None and before is None
                              and then is None)
    if announces is None and before is None and then is None:
        attempts -= 1
        # The first attempt needs no retry machinery (tenacity's per-call bookkeeping was a
        # thirtieth of a PUT's CPU): almost every command wins its race.
        try:
            async with ctx.db.connection() as conn:
                outcome = await _decide_and_append(conn, ctx, caller, stream_id, evolve,
                                                   decide, fold, read, first=True, guards=guards)
                done = await _finished(conn, ctx, stream_id, evolve, fold, outcome)
                if done is not None:
                    return done
        except ConcurrencyError:
            if guards is not None:
                raise  # what decide was built from may have moved: the caller reads it again
            outcome = None  # another writer got there first
    if outcome is None:
        # Queue up behind the stream's lock (always, for a command with more to do).
        async for attempt in on_conflict(attempts):
            with attempt:
                async with ctx.db.connection() as conn:
                    async with conn.transaction():
                        await conn.execute(
                            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id
                        )
                        if before is not None:
                            await before(conn)
                        outcome = await _decide_and_append(
                            conn, ctx, caller, stream_id, evolve, decide, fold, None)
                        result = outcome[2]
                        if result is not None and not result.duplicate:
                            if then is not None:
                                await then(conn)
                            if announces is not None:
                                await invalidation.announce(conn, announces)
                    done = await _finished(conn, ctx, stream_id, evolve, fold, outcome)
                    if done is not None:
                        return done
    assert outcome is not None
    state, events, result = outcome
    assert result is not None  # "no change" returned above
    ctx.committed((stream_type(stream_id),), {e.type for e in events})
    if announces is not None:
        ctx.dropped(announces)  # here at once; other processes on the NOTIFY
    for e in events:
        state = evolve(state, e)
    # Committed, so hold it: the next command or read on this stream folds nothing (the
    # close of a 1,000-agent month is a 3.6 MB event, 0.3 s to read back and decode).
    ctx.states.put(held_key(stream_id, evolve, fold), (state, result.version))
    return state, result


async def _finished(
    conn: asyncpg.Connection, ctx: ServiceContext, stream_id: str, evolve: Evolve[S],
    fold: Fold[S] | None, outcome: tuple[S | None, list[DomainEvent], AppendResult | None],
) -> tuple[S | None, AppendResult | None] | None:
    """Return what ``execute`` answers when the decision appended nothing ("no change", or a
    retried idempotency key's first result); None when it appended."""
    state, _, result = outcome
    if result is None:
        return state, None
    if result.duplicate:
        state, _ = await load(conn, stream_id, evolve, fold, states=ctx.states)
        return state, result
    return None


async def _decide_and_append(
    conn: asyncpg.Connection, ctx: ServiceContext, caller: Caller, stream_id: str,
    evolve: Evolve[S], decide: Callable[[S | None], list[DomainEvent]], fold: Fold[S] | None,
    read: tuple[S | None, int] | None, *, first: bool = False,
    guards: Mapping[str, int] | None = None,
) -> tuple[S | None, list[DomainEvent], AppendResult | None]:
    """Load the stream (unless it was just read), decide, append at the version loaded; return
    the state decided on, the events and the append (None for "no change").

    ``first`` (the attempt without the stream's lock): decide on the state this process holds,
    if it holds one, without reading the stream at all (one round trip, not two). The append
    at the held version refuses it if the stream moved since, and then the stream is read and
    decided on as always; so is a held state on which the decision is "no change" or an error,
    which would be answered without a write to check that it is current."""
    held = ctx.states.get(held_key(stream_id, evolve, fold)) if first and read is None else None
    if held is not None:
        try:
            events = decide(cast("S | None", held[0]))
        except DomainError:
            events = []
        if events:
            with contextlib.suppress(ConcurrencyError):  # moved since: read it below
                return (cast("S | None", held[0]), events,
                        await _append(conn, ctx, caller, stream_id, events, held[1]))
    state, version = read if read is not None else await load(
        conn, stream_id, evolve, fold, states=ctx.states)
    events = decide(state)
    if not events:
        return state, events, None
    return state, events, await _append(conn, ctx, caller, stream_id, events, version, guards)


async def _append(conn: asyncpg.Connection, ctx: ServiceContext, caller: Caller, stream_id: str,
                  events: list[DomainEvent], version: int,
                  guards: Mapping[str, int] | None = None) -> AppendResult:
    """Append a decision's events at the version decided on."""
    # The thread's CPU, not the clock: what the dump cost, which weighs the events held below
    # (the clock also counts the waits for a CPU of a loaded machine).
    started = time.thread_time()
    written = to_new(events)
    dumped = time.thread_time() - started
    result = await append(
        conn, stream_id, written, expected_version=version, metadata=caller.metadata,
        recorded_at=ctx.clock(), idempotency_key=caller.idempotency_key, guards=guards,
    )
    if result.tx_id is not None and not result.duplicate:
        # Held from here, before the commit and the connection's release (both wait on the
        # server): the projections of this process, woken by the commit, would otherwise
        # find it missing and read it back (the close of a 1,000-agent month on 50 KPIs:
        # 5.5 MB, each of three projections). Rolled back, it is never asked for.
        for event, event_id, position in zip(events, result.event_ids, result.positions,
                                             strict=True):
            remember(event_id, result.tx_id, position, event, dumped / len(events))
    return result
