"""The append-only event store: expected-version appends and reads that never skip.

Ordering. Identity values are drawn before commit, so concurrent transactions commit out of
position order and "everything after position P" can pass over a row that commits a moment
later. Each row therefore records its transaction id, and the global read returns only rows
whose transaction is older than the oldest one still running
(``pg_snapshot_xmin(pg_current_snapshot())``), ordered by (transaction id, position). No
transaction below that horizon can still add rows, so a cursor at (tx, position) never has
anything appear behind it, and writers stay concurrent (no table lock).

Per-stream order. Appenders take a transaction-scoped advisory lock on the stream *before* their
first write, and a transaction id is assigned only at the first write. A later writer of the
same stream therefore always gets a larger transaction id than the one it waited for, so
(transaction id, position) order agrees with every stream's versions.

Losers burn nothing. The version check is an ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` on
the ``stream`` row inside the same statement; when it fails no event row is produced, so no
identity value is drawn.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from service.store import cursors
from service.store.errors import ConcurrencyError

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d6a43-3c55-4d0e-9a53-0d6f4b1f7c21")


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended."""

    type: str
    data: Mapping[str, Any]
    schema_version: int = 1
    event_id: uuid.UUID | None = None


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and every reader
# builds one of these per row (the eight projections reading the month's stream each build one
# per evaluation): 4.5 us against 0.7 us for ten fields. Nothing changes one once read.
@dataclass
class RecordedEvent:
    """An event as stored, with its place in the stream and in the global order."""

    position: int
    tx_id: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @property
    def cursor(self) -> Cursor:
        """Return the cursor that points just past this event."""
        return Cursor(self.tx_id, self.position)


@dataclass(frozen=True, order=True)
class Cursor:
    """A place in the global order: (transaction id, position); opaque to API clients."""

    tx_id: int = 0
    position: int = 0

    def encode(self) -> str:
        """Return the opaque text form used in URLs."""
        return cursors.pack(f"{self.tx_id}.{self.position}".encode())

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """Parse the opaque text form; raise ValueError when it is not one of ours."""
        if not text:
            return cls()
        try:
            tx_text, pos_text = cursors.unpack(text).decode().split(".")
            cursor = cls(int(tx_text), int(pos_text))
        except ValueError as exc:  # UnicodeDecodeError is one
            raise ValueError("not a valid cursor") from exc
        if cursor.tx_id < 0 or cursor.position < 0:
            raise ValueError("not a valid cursor")
        return cursor


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream, with the version the caller believes the stream has."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None
    idempotency_key: str | None = None
    #: Other streams that must still be at these versions (the decision read them).
    guards: Mapping[str, int] | None = None


@dataclass(frozen=True)
class AppendResult:
    """Where an append's events landed; duplicate when a retry matched an earlier append."""

    stream_id: str
    version: int
    positions: list[int] = field(default_factory=list)
    duplicate: bool = False
    #: Of a new append: the events' ids, in order, and the transaction that wrote them.
    event_ids: list[uuid.UUID] = field(default_factory=list)
    tx_id: int | None = None

    @property
    def position(self) -> int:
        """Return the global position of the last event written: what a reader waits for."""
        return self.positions[-1] if self.positions else 0


def stream_type(stream_id: str) -> str:
    """Return the aggregate type of a stream id ("cycle" for "cycle:t1:2026-11")."""
    return stream_id.split(":", 1)[0]


def event_ids(append: StreamAppend) -> list[uuid.UUID]:
    """Return each event's id: given, derived from the idempotency key, or random."""
    ids = []
    for index, event in enumerate(append.events):
        if event.event_id is not None:
            ids.append(event.event_id)
        elif append.idempotency_key is not None:
            name = f"{append.stream_id}\x1f{append.idempotency_key}\x1f{index}"
            ids.append(uuid.uuid5(IDEMPOTENCY_NAMESPACE, name))
        else:
            ids.append(uuid.uuid4())
    return ids


_LOCK_STREAM = "hashtextextended($1, 0)"

# The duplicate check runs only for caller-chosen ids (an idempotency key or explicit event
# ids): random ids cannot collide, and the unique index on event_id still guards every row.
# It probes the first id alone with "=": an "= ANY(array)" probe gets a sequential scan in the
# generic plan asyncpg's cached statement settles on while the table is young, and every append
# then reads the whole table until autovacuum's first ANALYZE replans it.
_APPEND_MANY = f"""
WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({_LOCK_STREAM}) AS locked),
bumped AS (
    INSERT INTO stream AS s (stream_id, stream_type, version)
    SELECT $1, $2, $4::int FROM lock
    WHERE ($3::int IS NULL OR $3::int = 0 OR EXISTS (SELECT 1 FROM stream WHERE stream_id = $1))
      AND ($11::bool IS NOT TRUE
           OR NOT EXISTS (SELECT 1 FROM event WHERE event_id = ($7::uuid[])[1])){{guard}}
    ON CONFLICT (stream_id) DO UPDATE SET version = s.version + $4::int
    WHERE $3::int IS NULL OR s.version = $3::int
    RETURNING s.version
)
INSERT INTO event (stream_id, stream_type, version, event_id, type, schema_version, data,
                   metadata, recorded_at)
SELECT $1, $2, bumped.version - $4::int + e.ord, e.event_id, e.type, e.schema_version, e.data,
       $8::jsonb, $9
FROM bumped,
     unnest($5::text[], $6::int[], $7::uuid[], $10::jsonb[])
         WITH ORDINALITY AS e(type, schema_version, event_id, data, ord)
ORDER BY e.ord
RETURNING position, version, tx_id
"""

# One event, scalar parameters: no arrays to encode, parse and unnest (the common case).
_APPEND_ONE = f"""
WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({_LOCK_STREAM}) AS locked),
bumped AS (
    INSERT INTO stream AS s (stream_id, stream_type, version)
    SELECT $1, $2, 1 FROM lock
    WHERE ($3::int IS NULL OR $3::int = 0 OR EXISTS (SELECT 1 FROM stream WHERE stream_id = $1))
      AND ($10::bool IS NOT TRUE
           OR NOT EXISTS (SELECT 1 FROM event WHERE event_id = $4::uuid)){{guard}}
    ON CONFLICT (stream_id) DO UPDATE SET version = s.version + 1
    WHERE $3::int IS NULL OR s.version = $3::int
    RETURNING s.version
)
INSERT INTO event (stream_id, stream_type, version, event_id, type, schema_version, data,
                   metadata, recorded_at)
SELECT $1, $2, bumped.version, $4::uuid, $5, $6, $7::jsonb, $8::jsonb, $9 FROM bumped
RETURNING position, version, tx_id
"""


# Guards: other streams the decision was taken on must still be at the versions it read (the
# team and the agent of an evaluation, decided on as this process holds them). A stream that
# moved leaves no row to insert, so the append is refused like a stale version of its own.
_GUARD = """
      AND NOT EXISTS (
          SELECT 1 FROM unnest(${ids}::text[], ${versions}::int[]) AS g(stream_id, version)
          WHERE g.version <> coalesce(
              (SELECT version FROM stream WHERE stream.stream_id = g.stream_id), 0))"""
_APPEND_SQL = _APPEND_MANY.format(guard="")
_GUARDED_APPEND_SQL = _APPEND_MANY.format(guard=_GUARD.format(ids=12, versions=13))
_APPEND_ONE_SQL = _APPEND_ONE.format(guard="")
_GUARDED_APPEND_ONE_SQL = _APPEND_ONE.format(guard=_GUARD.format(ids=11, versions=12))

#: An event's columns as stored, in ``RecordedEvent``'s field order.
COLUMNS = (
    "position, tx_id, stream_id, version, event_id, type, schema_version, data, metadata,"
    " recorded_at"
)
_WIDTH = len(COLUMNS.split(","))


async def append(
    conn: asyncpg.Connection,
    stream_id: str,
    events: Sequence[NewEvent],
    *,
    expected_version: int | None,
    metadata: Mapping[str, Any],
    recorded_at: datetime,
    idempotency_key: str | None = None,
    guards: Mapping[str, int] | None = None,
) -> AppendResult:
    """Append events to one stream in one statement; raise ConcurrencyError on a stale version.

    ``guards``: other streams, by id, that the decision was taken on at these versions (0: no
    events); the append is refused the same way if any of them moved. They are read in the
    statement's snapshot, as a read just before the append would have read them.

    Works inside the caller's transaction or on its own (autocommit), but it must be the
    transaction's first write: see the module docstring on per-stream order.
    """
    request = StreamAppend(stream_id, events, expected_version, idempotency_key, guards)
    return await _append_one(conn, request, metadata, recorded_at)


async def append_many(
    conn: asyncpg.Connection,
    appends: Sequence[StreamAppend],
    *,
    metadata: Mapping[str, Any],
    recorded_at: datetime,
) -> list[AppendResult]:
    """Append to several streams atomically; the caller must hold a transaction."""
    if not conn.is_in_transaction():
        raise RuntimeError("append_many needs a transaction")
    # Lock every stream first, in a fixed order, before the first write assigns a
    # transaction id (per-stream order) and so that two such appends cannot deadlock.
    for stream_id in sorted({a.stream_id for a in appends}):
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id)
    return [await _append_one(conn, a, metadata, recorded_at) for a in appends]


async def _append_one(
    conn: asyncpg.Connection,
    request: StreamAppend,
    metadata: Mapping[str, Any],
    recorded_at: datetime,
) -> AppendResult:
    if not request.events:
        return AppendResult(request.stream_id, await stream_version(conn, request.stream_id))
    ids = event_ids(request)
    chosen_ids = request.idempotency_key is not None or any(
        e.event_id is not None for e in request.events
    )
    sql: str
    args: tuple[Any, ...]
    if len(request.events) == 1:
        event = request.events[0]
        sql = _APPEND_ONE_SQL
        args = (
            request.stream_id,
            stream_type(request.stream_id),
            request.expected_version,
            ids[0],
            event.type,
            event.schema_version,
            _plain(event.data),
            _plain(metadata),
            recorded_at,
            chosen_ids,
        )
        if request.guards:
            sql = _GUARDED_APPEND_ONE_SQL
            args = (*args, list(request.guards), list(request.guards.values()))
    else:
        sql = _APPEND_SQL
        args = (
            request.stream_id,
            stream_type(request.stream_id),
            request.expected_version,
            len(request.events),
            [e.type for e in request.events],
            [e.schema_version for e in request.events],
            ids,
            _plain(metadata),
            recorded_at,
            [_plain(e.data) for e in request.events],
            chosen_ids,
        )
        if request.guards:
            sql = _GUARDED_APPEND_SQL
            args = (*args, list(request.guards), list(request.guards.values()))
    try:
        if conn.is_in_transaction():
            async with conn.transaction():  # a savepoint, so a retry lookup can follow
                rows = await conn.fetch(sql, *args)
        else:
            rows = await conn.fetch(sql, *args)
    except asyncpg.UniqueViolationError:
        # Two identical retries raced past the duplicate check; the first one won.
        rows = []
    if rows:
        return AppendResult(
            request.stream_id, rows[-1]["version"], [r["position"] for r in rows],
            event_ids=ids, tx_id=rows[-1]["tx_id"],
        )
    return await _explain_refusal(conn, request, ids)


async def _explain_refusal(
    conn: asyncpg.Connection, request: StreamAppend, ids: list[uuid.UUID]
) -> AppendResult:
    stored = await conn.fetch(
        "SELECT position, version FROM event WHERE event_id = ANY($1::uuid[]) ORDER BY position",
        ids,
    )
    if stored:
        current = await stream_version(conn, request.stream_id)
        return AppendResult(
            request.stream_id, current, [r["position"] for r in stored], duplicate=True
        )
    current = await stream_version(conn, request.stream_id)
    raise ConcurrencyError(request.stream_id, request.expected_version, current)


async def stream_version(conn: asyncpg.Connection, stream_id: str) -> int:
    """Return the stream's current version (0 when it has no events)."""
    version = await conn.fetchval("SELECT version FROM stream WHERE stream_id = $1", stream_id)
    return int(version or 0)


async def read_stream(
    conn: asyncpg.Connection, stream_id: str, *, after_version: int = 0, limit: int | None = None
) -> list[RecordedEvent]:
    """Return a stream's events in version order (the first `limit` of them, if given)."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM event WHERE stream_id = $1 AND version > $2 ORDER BY version"
        " LIMIT $3",
        stream_id,
        after_version,
        limit,
    )
    return [_recorded(r) for r in rows]


async def read_streams(
    conn: asyncpg.Connection, after_versions: Mapping[str, int]
) -> dict[str, list[RecordedEvent]]:
    """Return several streams' events after the given versions, each in version order: one
    round trip where reading them one by one would take one each."""
    rows = await conn.fetch(
        "SELECT e.* FROM"
        f" {streams_after('unnest($1::text[], $2::bigint[]) AS wanted(id, after_version)')}"
        " ORDER BY e.stream_id, e.version",
        list(after_versions),
        list(after_versions.values()),
    )
    return by_stream(rows, after_versions)


def streams_after(wanted: str) -> str:
    """Return the FROM clause of ``read_streams``, its ``e`` the events (``COLUMNS``) of the
    streams that ``wanted`` (a FROM item with columns ``id`` and ``after_version``) lists,
    after those versions: for a statement that reads more beside them in the same round trip."""
    # One probe of the (stream_id, version) index per stream. Joined plainly, the planner
    # cannot know that few events follow each version asked for, and hashes the whole event
    # table instead (milliseconds that grow with the log); OFFSET 0 keeps the lateral read
    # apart, so each stream is read by its own index scan.
    return (f"{wanted} CROSS JOIN LATERAL (SELECT {COLUMNS} FROM event"
            " WHERE stream_id = wanted.id AND version > wanted.after_version OFFSET 0) AS e")


def by_stream(rows: Iterable[asyncpg.Record], stream_ids: Iterable[str]
              ) -> dict[str, list[RecordedEvent]]:
    """Return the events of rows that start with ``COLUMNS`` (in version order within each
    stream), by stream, every one of ``stream_ids`` present."""
    found: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in stream_ids}
    for row in rows:
        found[row["stream_id"]].append(RecordedEvent(*row[:_WIDTH]))
    return found


@dataclass(frozen=True)
class DataOnly:
    """Which events a reader needs the data of: of the events of ``stream_types`` ("*": of
    every stream type), only those of ``event_types``; the others arrive with empty data.

    PostgreSQL then never reads, decompresses and sends the payloads nobody looks at: the
    close of a 1,000-agent month is one 3.6 MB event, and most readers only need to know it
    happened.
    """

    stream_types: tuple[str, ...]
    event_types: frozenset[str] = frozenset()
    #: Event types whose data arrives empty all the same, for the reader to ask for it
    #: (``read_data``) only when it does not hold their model already: the projections of
    #: the process that wrote a close hold its model (service/projections/decoded.py).
    on_demand: frozenset[str] = frozenset()


READ_ALL = """
SELECT position, tx_id, stream_id, version, event_id, type, schema_version,
       CASE WHEN ($5::text[] IS NOT NULL AND (stream_type = ANY($5) OR '*' = ANY($5))
                  AND NOT type = ANY($6::text[]))
                 OR type = ANY($7::text[])
            THEN '{}'::jsonb ELSE data END AS data,
       metadata, recorded_at
FROM event
WHERE (tx_id, position) > ($1, $2)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
  AND ($4::text[] IS NULL OR stream_type = ANY($4::text[]))
ORDER BY tx_id, position
LIMIT $3
"""


async def read_all(
    conn: asyncpg.Connection,
    after: Cursor,
    limit: int,
    *,
    stream_types: Sequence[str] | None = None,
    data_only: DataOnly | None = None,
) -> list[RecordedEvent]:
    """Return up to limit events after the cursor, only from finished transactions."""
    rows = await conn.fetch(
        READ_ALL,
        after.tx_id,
        after.position,
        limit,
        list(stream_types) if stream_types is not None else None,
        list(data_only.stream_types) if data_only is not None else None,
        sorted(data_only.event_types) if data_only is not None else [],
        sorted(data_only.on_demand) if data_only is not None else [],
    )
    return [_recorded(r) for r in rows]


async def read_data(conn: asyncpg.Connection, positions: Sequence[int]) -> dict[int, Any]:
    """Return the data of the events at these positions, by position."""
    if not positions:
        return {}
    rows = await conn.fetch(
        "SELECT position, data FROM event WHERE position = ANY($1::bigint[])", list(positions)
    )
    return {r["position"]: r["data"] for r in rows}


async def head(conn: asyncpg.Connection) -> Cursor:
    """Return the cursor of the last event a reader can see now."""
    return (await heads(conn, ())).get(None, Cursor())


HEADS = """
SELECT NULL::text AS stream_type, tx_id, position FROM (
    SELECT tx_id, position FROM event
    WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY tx_id DESC, position DESC LIMIT 1
) AS everything
UNION ALL
SELECT wanted.stream_type, last.tx_id, last.position
FROM unnest($1::text[]) AS wanted(stream_type)
CROSS JOIN LATERAL (
    SELECT tx_id, position FROM event
    WHERE event.stream_type = wanted.stream_type
      AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    ORDER BY tx_id DESC, position DESC LIMIT 1
) AS last
"""


async def heads(conn: asyncpg.Connection, stream_types: Sequence[str]) -> dict[str | None, Cursor]:
    """Return the cursor of the last event a reader can see now, of all (under None) and of
    each of these stream types that has one: one round trip.

    Events become visible in transaction id order, so a head only ever moves forward, and a
    reader whose cursor is at its head has read everything of that kind it can see.
    """
    rows = await conn.fetch(HEADS, list(stream_types))
    return {r["stream_type"]: Cursor(r["tx_id"], r["position"]) for r in rows}


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    # The row's columns are COLUMNS, in the dataclass's field order.
    return RecordedEvent(*row)
