"""The asyncpg pool every runtime statement goes through.

SQLAlchemy 2 owns the schema (Alembic migrations run on its async engine), but runtime
statements use asyncpg directly: measured on this 2-core machine, SQLAlchemy's asyncpg adapter
halved the single-event append rate (2,200/s against 4,600/s for the same transaction), and the
event store's append is a single hand-written statement anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import asyncpg
import orjson

from service.store.errors import DatabaseUnavailable
from service.store.metrics import STAGE

# Errors that mean "the server is not there right now", as opposed to a bad statement.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)
#: The same, plus our own wrapper: what "the database is away" looks like to callers.
DATABASE_AWAY: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, DatabaseUnavailable)
#: asyncpg's InterfaceError subclasses that are our own mistakes, not a lost server: an
#: argument of the wrong type or out of its column's range (DataError), a bad setting, a
#: feature missing. A request meeting one is a bug to see (a 500 and its log), not a 503
#: that tells the client to come back later, and a loop meeting one must not retry it for
#: ever as if the server were away.
CLIENT_MISTAKES: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)


def database_away(exc: BaseException) -> bool:
    """Tell whether an error means the database is away (rather than a bug of ours)."""
    return isinstance(exc, DATABASE_AWAY) and not isinstance(exc, CLIENT_MISTAKES)
#: How long a request waits for a pooled connection when every one is busy.
ACQUIRE_TIMEOUT_SECONDS = 10.0


def asyncpg_dsn(url: str) -> str:
    """Return url in the plain postgresql:// form asyncpg accepts."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def sqlalchemy_url(url: str) -> str:
    """Return url in the postgresql+asyncpg:// form SQLAlchemy and Alembic need."""
    return "postgresql+asyncpg://" + asyncpg_dsn(url)[len("postgresql://") :]


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Return a pooled connection as it is: pooled connections never hold session state.

    asyncpg rolls back an open transaction and drops listeners before calling this; what it
    skips is its reset statement (unlock session advisory locks, CLOSE ALL, UNLISTEN, RESET
    ALL), one round trip on every release: two of a ranking read's four. The service takes
    session locks and LISTENs only on dedicated connections (``connect_single``) and sets
    nothing per session; tests/unit/test_pooled_connections.py fails the build if service
    code starts to.
    """


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Metric ingestion's staging table: empty outside a transaction, so no session state.
    await conn.execute(STAGE)
    await _init_read_connection(conn)


async def _init_read_connection(conn: asyncpg.Connection) -> None:
    for json_type in ("json", "jsonb"):
        await conn.set_type_codec(
            json_type,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


#: asyncpg's ``PROTOCOL_ERROR_CONSUME`` (asyncpg/protocol/coreproto.pxd).
_ERROR_CONSUME = 2


def _follows_a_lost_server(exc: BaseException) -> bool:
    """Tell whether asyncpg's "another operation is in progress" means a lost server."""
    # State 2 is asyncpg's "consume an error until the server is ready again". A pooled
    # connection sits in it with no statement of ours running only after the server sent an
    # error unprompted, which PostgreSQL does when it terminates the backend (shutdown,
    # pg_terminate_backend): the connection is being lost.
    #
    # The message's text is the only sign of it. asyncpg raises a bare InternalClientError,
    # with no SQLSTATE and no attributes, for every protocol state it did not expect, our own
    # misuse included, so its type says nothing; the state is private to the connection's
    # protocol, and the public is_closed() turns true only once the socket's end is read,
    # which may come after this error. tests/unit/test_lost_server.py reads asyncpg's source
    # so that an upgrade that words it differently fails the build.
    if f"another operation ({_ERROR_CONSUME}) is in progress" in str(exc):
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DATABASE_AWAY):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


class Database:
    """A lazily opened pool; nothing connects at import or construction time."""

    def __init__(self, url: str, *, pool_size: int = 20, read_only: bool = False) -> None:
        """``read_only``: a replica's pool (a hot standby refuses even a temporary table, so
        its connections get no staging table)."""
        self.url = asyncpg_dsn(url)
        self._init = _init_read_connection if read_only else _init_connection
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        #: Connections lent now (``Lent``): the pool has none idle to give only when it has
        #: lent them all.
        self._lent = 0

    async def pool(self) -> asyncpg.Pool:
        """Return the pool, opening it on first use (and again after a failed start)."""
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncpg.create_pool(
                            self.url,
                            min_size=1,
                            max_size=self._pool_size,
                            init=self._init,
                            command_timeout=60,
                            timeout=5,
                            # Give idle connections back soon: a burst must not pin a
                            # server's connection slots for minutes.
                            max_inactive_connection_lifetime=30,
                            reset=_no_session_state,
                        )
                    except UNAVAILABLE_ERRORS as exc:
                        raise DatabaseUnavailable(str(type(exc).__name__)) from exc
        return self._pool

    def connection(self) -> Lent:
        """Lend a pooled connection (``async with``); a lost server surfaces as
        DatabaseUnavailable."""
        return Lent(self)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """Run one command's statements in one transaction."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def transaction_begun_by_work(self) -> AsyncIterator[asyncpg.Connection]:
        """Run one command's statements in a transaction that its first write begins in its
        own round trip (``BEGIN; ...``, as metric ingestion's COPY does,
        service/store/metrics.py ``stage``) instead of one of its own; commit it, or roll it
        back on an error. Statements before that write run each in its own."""
        async with self.connection() as conn:
            try:
                yield conn
            except BaseException:
                if conn.is_in_transaction():
                    await conn.execute("ROLLBACK")
                raise
            if conn.is_in_transaction():
                await conn.execute("COMMIT")

    async def connect_single(self) -> asyncpg.Connection:
        """Open a dedicated connection outside the pool (projection runners hold locks on it)."""
        try:
            conn: asyncpg.Connection = await asyncpg.connect(self.url, timeout=5)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailable(str(type(exc).__name__)) from exc
        await _init_connection(conn)
        return conn

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """Run one statement and return its first value."""
        async with self.connection() as conn:
            return await conn.fetchval(sql, *args)

    async def close(self) -> None:
        """Close the pool if it was opened."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


class Lent:
    """``async with db.connection() as conn``: a pooled connection for the block.

    A class rather than a generator-based context manager, with the database's own count of
    connections lent rather than the pool's count of idle ones (a pass over every connection
    it holds): every statement of a request starts here, and the two took a third of the
    lending's CPU (20 of 58 us a lend and release, against asyncpg's acquire and release
    alone).
    """

    __slots__ = ("_conn", "_db", "_pool")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pool: asyncpg.Pool | None = None
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        db = self._db
        pool = self._pool = await db.pool()
        # The timeout bounds a wait for a busy pool; with a connection to spare there is no
        # wait, and a timed acquire costs a timer armed and cancelled.
        timeout = None if db._lent < db._pool_size else ACQUIRE_TIMEOUT_SECONDS
        try:
            conn = self._conn = await pool.acquire(timeout=timeout)
        except BaseException as exc:
            _raise_away(exc)
            raise
        db._lent += 1
        return conn

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        assert self._pool is not None and self._conn is not None
        self._db._lent -= 1
        try:
            await self._pool.release(self._conn)
        except BaseException as released:
            _raise_away(released)
            raise
        if exc is not None:
            _raise_away(exc)


def _raise_away(exc: BaseException) -> None:
    """Raise DatabaseUnavailable from a lent connection's error that means a lost server."""
    if isinstance(exc, UNAVAILABLE_ERRORS) and not isinstance(exc, CLIENT_MISTAKES):
        raise DatabaseUnavailable(str(type(exc).__name__)) from exc
    # A server that goes away can leave asyncpg's protocol mid-operation: the connection's
    # next use (a statement, the rollback, or the pool's reset on release) fails with "another
    # operation is in progress" instead of a connection error. Only that case is the server
    # being away; otherwise this is a bug and stays one.
    if isinstance(exc, asyncpg.exceptions.InternalClientError) and _follows_a_lost_server(exc):
        raise DatabaseUnavailable("connection lost mid-statement") from exc
