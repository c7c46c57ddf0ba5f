"""Real PostgreSQL for tests: the embedded server, or CSPERF_TEST_DATABASE_URL's server.

Each test run gets a database of its own, created from scratch by the Alembic migrations and
dropped at the end, so runs never see each other's data; tests use unique ids within it.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from service.store import migrate
from service.store.embedded import start_embedded, with_database


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def server_url() -> str:
    """Return a URL to a maintenance database on the test server, starting one if needed."""
    external = os.environ.get("CSPERF_TEST_DATABASE_URL")
    if external:
        return external
    default = Path(tempfile.gettempdir()) / "csperf-tests"
    folder = Path(os.environ.get("CSPERF_TEST_DATA_DIR", default))
    return start_embedded(folder)


@contextmanager
def fresh_database(prefix: str = "csperf_test") -> Iterator[str]:
    """Create a migrated database for this run and drop it afterwards."""
    base = server_url()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
    url = with_database(base, name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
