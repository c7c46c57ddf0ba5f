"""A statement of ours that asyncpg refuses (an argument it cannot encode) is a bug to see,
not the database being away: it must not turn into a 503 or be retried for ever."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from service.retrying import reconnecting
from service.store.database import Database, database_away
from service.store.errors import DatabaseUnavailable


async def test_an_argument_asyncpg_cannot_encode_stays_an_error_of_ours(db: Database) -> None:
    with pytest.raises(asyncpg.exceptions.DataError) as raised:
        async with db.connection() as conn:
            await conn.fetchval("SELECT $1::integer", "not a number")
    assert not isinstance(raised.value, DatabaseUnavailable)
    assert not database_away(raised.value)
    # The connection served again: the pool still lends and the database answers.
    assert await db.fetchval("SELECT 1") == 1


async def test_a_lost_server_is_still_the_database_away() -> None:
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseUnavailable) as raised:
        await unreachable.fetchval("SELECT 1")
    assert database_away(raised.value)
    assert database_away(asyncpg.exceptions.InterfaceError("connection is closed"))


async def test_reconnecting_retries_an_absent_server_but_not_a_mistake() -> None:
    calls = {"refused": 0, "mistake": 0}

    async def attempt(kind: str) -> None:
        calls[kind] += 1
        if kind == "refused" and calls[kind] < 3:
            raise ConnectionRefusedError("nobody listens")
        if kind == "mistake":
            raise asyncpg.exceptions.DataError("invalid input for query argument $1")

    async for retry in reconnecting(first=0.001, cap=0.002, name="refused"):
        with retry:
            await attempt("refused")
    assert calls["refused"] == 3
    # Bounded, so that retrying it for ever fails the test instead of hanging it.
    with pytest.raises(asyncpg.exceptions.DataError):
        async with asyncio.timeout(5):
            async for retry in reconnecting(first=0.001, cap=0.002, name="mistake"):
                with retry:
                    await attempt("mistake")
    assert calls["mistake"] == 1
