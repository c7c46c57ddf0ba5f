"""Alembic environment: runs migrations on SQLAlchemy's async engine over asyncpg."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from service.store.database import sqlalchemy_url


def _url() -> str:
    url = context.config.attributes.get("url") or os.environ.get("CSPERF_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set CSPERF_DATABASE_URL or use `csperf migrate`")
    return sqlalchemy_url(str(url))


def _run(connection: Connection) -> None:
    # Replicas starting together must not migrate at once: a session lock serialises them
    # (released when this connection closes).
    connection.exec_driver_sql("SELECT pg_advisory_lock(7215000)")
    connection.commit()
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
