"""Decoded events, shared by the projections of a process.

Every projection reads the feed on its own and would rebuild each event model itself. For most
events that costs microseconds; the close of a 1,000-agent month is one 3.6 MB event whose
model takes a quarter of a second to validate, and the ranking, the sanctions ledger and the
cycle process each need it within the same second. The first one to decode an expensive event
keeps the model briefly; the others reuse it.

A command that has just written such an event holds its model too (``remember``), so the
projections of the process that wrote it decode nothing at all.

An event never changes once stored, so a held model is the model: nothing here can make two
replicas disagree. Held models are weighed by what they cost to build, a stand-in for their
size that needs no measuring, and the cheap ones are not held at all. The cost is the CPU time
of the thread that built it, not the clock's: on a loaded machine the clock counts the waits
for a CPU too, and a 1,000-agent close on 50 KPIs whose dump waited past a second weighed more
than the whole capacity, was not held, and each projection read its 3.2 MB back and decoded it
again (2.9 s of PostgreSQL's time for the three reads at load 13, on the way to its published
ranking).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace

import asyncpg

from service.caching import LRU
from service.domain.events import DomainEvent, decode
from service.store.event_store import RecordedEvent, read_data

#: Events that decode faster than this are decoded again rather than held.
WORTH_HOLDING_SECONDS = 0.002
#: The total decode time held: about two closes of 1,000-agent months on 50 KPIs here (some
#: 15 MB of objects each), more of the built-in scheme's. A close that did not fit was decoded
#: again by every projection that reads it, inside the time to its published ranking.
CAPACITY_MICROSECONDS = 2_000_000
#: Validating a model from its data takes about twice as long as dumping it (the close of a
#: 1,000-agent month on 50 KPIs: 210 ms against 130 ms), which is what a writer knows of an
#: event's cost.
DECODE_PER_DUMP = 2

#: The events big enough that a projection reads their data only when this process does not
#: hold their model (``DataOnly.on_demand``, ``with_data``).
LARGE = frozenset({"CycleClosed"})

# (event id, transaction id, position): unique in a database, and in practice across the
# databases a test process talks to (ids repeat only when derived from idempotency keys).
_Key = tuple[object, int, int]
_held: LRU[_Key, tuple[DomainEvent, int]] = LRU(CAPACITY_MICROSECONDS, lambda held: held[1])


#: The models a projection's batch was read without the data of (``with_data``): kept for the
#: batch itself, whatever the cache drops meanwhile. Per task, so workers never share them.
_lent: ContextVar[Mapping[_Key, DomainEvent] | None] = ContextVar("decoded_lent", default=None)


def _key(recorded: RecordedEvent) -> _Key:
    return (recorded.event_id, recorded.tx_id, recorded.position)


def decoded(recorded: RecordedEvent) -> DomainEvent:
    """Return the domain event of a stored one, built once while it is expensive and recent."""
    key = _key(recorded)
    lent = _lent.get()
    if lent is not None and key in lent:
        return lent[key]
    held = _held.get(key)
    if held is not None:
        return held[0]
    started = time.thread_time()
    event = decode(recorded.type, recorded.schema_version, recorded.data)
    _hold(key, event, time.thread_time() - started)
    return event


def remember(event_id: uuid.UUID, tx_id: int, position: int, event: DomainEvent,
             dump_seconds: float) -> None:
    """Hold the model of an event just committed, when decoding it would be expensive."""
    _hold((event_id, tx_id, position), event, dump_seconds * DECODE_PER_DUMP)


def _hold(key: _Key, event: DomainEvent, cost_seconds: float) -> None:
    if cost_seconds >= WORTH_HOLDING_SECONDS:
        _held.put(key, (event, int(cost_seconds * 1_000_000)))


@contextlib.asynccontextmanager
async def with_data(conn: asyncpg.Connection, events: Sequence[RecordedEvent],
                    on_demand: Collection[str]) -> AsyncIterator[list[RecordedEvent]]:
    """Yield a batch read without the data of the ``on_demand`` event types (``DataOnly``)
    ready to apply: the models held here are lent to ``decoded`` for the batch, and only the
    others' data is read (one query). The close of a 1,000-agent month on 50 KPIs is 5.5 MB:
    each projection reading it again, though the process that wrote it holds its model, cost
    PostgreSQL and the process more than the projections' own work on it."""
    lent: dict[_Key, DomainEvent] = {}
    missing = []
    for recorded in events:
        if recorded.type in on_demand:
            held = _held.get(_key(recorded))
            if held is not None:
                lent[_key(recorded)] = held[0]
            else:
                missing.append(recorded.position)
    data = await read_data(conn, missing)
    token = _lent.set(lent)
    try:
        yield [replace(e, data=data[e.position]) if e.position in data else e for e in events]
    finally:
        _lent.reset(token)
