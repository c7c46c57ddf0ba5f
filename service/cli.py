"""The csperf command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from service.config import Settings, get_settings, settings_problems
from service.domain.principal import ROLES


def _database_url(settings: Settings) -> str:
    """Return the database URL, starting the embedded server and migrating it if needed.

    Every command may be the first one run on a fresh machine (`csperf keys create` before
    `make run`), so the schema is brought to head here; at head it is a no-op.
    """
    from service.store import migrate

    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
    else:
        from service.store.embedded import EmbeddedUnavailable, start_embedded

        try:
            url = start_embedded(settings.data_dir)
        except EmbeddedUnavailable as exc:
            raise SystemExit(f"csperf: {exc}") from None
    migrate.upgrade(url)
    return url


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the API until interrupted."""
    import uvicorn

    from service.main import create_app
    from service.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    url = _database_url(settings)
    app = create_app(settings, database_url=url, migrate_on_start=False)
    where = f"http://{settings.host}:{settings.port}"
    print(f"csperf serving on {where}  (API docs: {where}/docs)", file=sys.stderr)
    if settings.bootstrap_admin_key is None:
        print(
            "No CSPERF_BOOTSTRAP_ADMIN_KEY set. Get an admin key with:\n"
            "  .venv/bin/csperf keys create --role admin --name me",
            file=sys.stderr,
        )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; with the default
    # action that ends the process before atexit, which is where the embedded server is
    # stopped, so `docker stop` or systemd would leave its PostgreSQL running. Exiting
    # through SystemExit instead runs atexit, with status 0: a stop asked for and done
    # gracefully is a success (`make run` would otherwise report "Error 143").
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    proxy_headers, forwarded_allow_ips = proxy_options(settings)
    # What is loaded by now (modules, the app, its routes and models: ~190,000 objects) lives
    # as long as the process; frozen, the garbage collector's full passes stop walking it.
    # Each such pass cost about 0.12 s of CPU in the ingestion benchmark, a sixth of the
    # service's CPU (requests allocate enough to set one off every few seconds).
    gc.freeze()
    # No uvicorn access log: the app writes its own (service.api.middleware), and uvicorn's,
    # silenced by its logger's level, still formatted the client and path of every request.
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                access_log=False, timeout_graceful_shutdown=5, proxy_headers=proxy_headers,
                forwarded_allow_ips=forwarded_allow_ips)
    return 0


def proxy_options(settings: Settings) -> tuple[bool, list[str] | None]:
    """Return uvicorn's (proxy_headers, forwarded_allow_ips): X-Forwarded-* believed from
    trusted proxies only.

    uvicorn then rewrites the request's client address (X-Forwarded-For, read from the right,
    skipping trusted hops) and scheme (X-Forwarded-Proto) before the app sees them, so the
    failed-authentication limit counts the real client and the pages' cookies are Secure
    behind a TLS proxy. Without trusted proxies the headers are ignored: anyone could send them.
    """
    if not settings.trusted_proxies:
        return False, None
    return True, list(settings.trusted_proxies)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply migrations to the configured (or embedded) database."""
    from service.store import migrate

    _database_url(get_settings())
    print("database at", migrate.head_revision())
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    """Print the connection string of the configured database, or of the running embedded one.

    It starts nothing: a URL to a server that stops when this command ends is of no use, and
    a new server under the wrong data folder would hide the mistake.
    """
    from service.store.embedded import EmbeddedUnavailable, running_url
    from service.store.reporting_role import connection_url

    settings = get_settings()
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        print("the database of CSPERF_DATABASE_URL", file=sys.stderr)
    else:
        folder = settings.data_dir.expanduser().resolve()
        try:
            found = running_url(folder)
        except EmbeddedUnavailable as exc:
            print(f"csperf: {exc}", file=sys.stderr)
            return 1
        if found is None:
            print(f"the service is not running for data folder {folder}: no embedded PostgreSQL"
                  " runs there. Start it (make run, or csperf serve) with that CSPERF_DATA_DIR,"
                  " or set CSPERF_DATA_DIR to the folder the service uses.", file=sys.stderr)
            return 1
        url = found
        print(f"the embedded PostgreSQL of data folder {folder}", file=sys.stderr)
    print(connection_url(url, args.user) if args.user else url)
    return 0


def cmd_bi_role(args: argparse.Namespace) -> int:
    """Create (or update) a read-only LOGIN user for BI tools: the reporting schema only."""
    import os

    from service.store import reporting, reporting_role
    from service.store.database import Database

    problem = reporting_role.check_role_name(args.user)
    if problem is not None:
        print(f"--user: {problem}", file=sys.stderr)
        return 2
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = args.password or os.environ.get("CSPERF_BI_PASSWORD", "")
    if not password:
        print("give the BI user's password: --password-stdin, CSPERF_BI_PASSWORD or"
              " --password", file=sys.stderr)
        return 2
    url = _database_url(get_settings())

    async def run() -> int:
        import asyncpg

        conn = await Database(url, pool_size=1).connect_single()
        try:
            setup = await reporting_role.create_bi_role(conn, args.user, password)
        except asyncpg.InsufficientPrivilegeError as exc:
            print(f"not allowed: {exc}; run this as a user with CREATEROLE (and the owner of"
                  " the csperf tables)", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        what = "created" if setup.created_user else "updated (new password)"
        print(f"BI user {setup.user} {what}: member of {reporting.GROUP_ROLE}, which may read"
              f" the {reporting.SCHEMA} schema and nothing else", file=sys.stderr)
        for warning in setup.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(reporting_role.connection_url(url, setup.user))
        return 0

    return asyncio.run(run())


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed the demo shop through the API; print the URL and the keys to sign in with."""
    from datetime import datetime

    from service import demo

    now = None
    if args.now:
        now = datetime.fromisoformat(args.now)
        if now.tzinfo is None:
            print("--now needs an offset, e.g. 2026-11-20T10:00:00+00:00", file=sys.stderr)
            return 2
    settings = get_settings()
    url = _database_url(settings)
    keys_file = Path(args.keys_file) if args.keys_file else None
    keys = asyncio.run(demo.run(settings, url, now=now, keys_file=keys_file, out=sys.stderr))
    where = f"http://{settings.host}:{settings.port}"
    print(demo.describe_keys(keys, where))
    if args.serve and demo.serving(where):
        print(f"\nThe service already answers at {where}; it shows the demo now.",
              file=sys.stderr)
        return 0
    if args.serve:
        return cmd_serve(args)
    if not demo.serving(where):
        print(f"\nNothing answers at {where} yet: start the service with `make run`"
              " (or run `csperf demo --serve`).", file=sys.stderr)
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    """Write the OpenAPI document generated from the app."""
    from service.openapi import render

    text = render()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_projections(args: argparse.Namespace) -> int:
    """Show projection status, or rebuild one from position zero."""
    from service.projections import admin
    from service.store.database import Database

    db = Database(_database_url(get_settings()), pool_size=2)

    async def run() -> int:
        try:
            if args.action == "status":
                return await admin.print_status(db)
            return await admin.rebuild(db, args.name)
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys (as the actor "cli")."""
    import uuid

    from service.commands import keys as commands
    from service.commands.base import Caller
    from service.context import ServiceContext
    from service.domain.principal import CLI_PRINCIPAL, credential_problems, event_metadata
    from service.store import keys
    from service.store.database import Database

    if args.action == "create":
        problems = credential_problems(args.role, args.subject, args.source)
        if problems:
            for field, reason in problems:
                print(f"--{field}: {reason}", file=sys.stderr)
            return 2
    settings = get_settings()
    db = Database(_database_url(settings), pool_size=2)
    ctx = ServiceContext(settings=settings, db=db)
    caller = Caller(event_metadata(CLI_PRINCIPAL, request_id=uuid.uuid4().hex))

    async def run() -> int:
        try:
            if args.action == "create":
                issued = await commands.issue(
                    ctx, caller, role=args.role, subject=args.subject, source=args.source,
                    name=args.name, created_by=CLI_PRINCIPAL.subject,
                )
                print(
                    f"key {issued.record.key_id} (role {args.role}) created; it is shown only "
                    "once, store it now:",
                    file=sys.stderr,
                )
                print(issued.key)
                return 0
            if args.action == "list":
                for k in await keys.list_keys(db, include_revoked=args.all):
                    state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
                    print("\t".join([
                        k.key_id, k.role, k.subject or "-", k.source or "-", state,
                        f"{k.created_at:%Y-%m-%d %H:%M}", k.name or "",
                    ]))
                return 0
            result = await commands.revoke(ctx, caller, args.key_id,
                                           revoked_by=CLI_PRINCIPAL.subject)
            if result is None:
                print(f"no API key {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"key {args.key_id} {'revoked' if result[1] else 'was already revoked'}")
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_metrics(args: argparse.Namespace) -> int:
    """Replay or list the metric quarantine (as the actor "cli")."""
    import orjson

    from service.commands import metrics
    from service.context import ServiceContext
    from service.domain.principal import CLI_PRINCIPAL
    from service.store import metrics as store
    from service.store.database import Database

    settings = get_settings()
    db = Database(_database_url(settings), pool_size=2)
    ctx = ServiceContext(settings=settings, db=db)
    status = None if args.action == "replay-quarantine" or args.status == "all" else args.status
    f = store.QuarantineFilter(args.source, args.agent_id, args.reason, status, args.id or None)

    async def run() -> int:
        try:
            if args.action == "replay-quarantine":
                result = await metrics.replay(ctx, f, by=CLI_PRINCIPAL.subject, limit=args.limit)
                for r in result.still_rejected:
                    print("\t".join([r.source, r.id, r.reason, r.detail]))
                print(f"replayed {result.replayed}, already stored {result.already_stored},"
                      f" still rejected {len(result.still_rejected)}", file=sys.stderr)
                return 0
            async with db.connection() as conn:
                rows = await store.list_quarantine(conn, f, args.limit)
            for r in rows:
                print("\t".join([
                    r["source"], r["sample_id"], r["status"], r["reason"],
                    f"{r['first_received_at']:%Y-%m-%d %H:%M:%S}", orjson.dumps(r["raw"]).decode(),
                ]))
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_metrics_import(args: argparse.Namespace) -> int:
    """Import a CSV or NDJSON file of samples through the ingestion pipeline, with progress."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from service.api import metric_bodies
    from service.api.problems import Problem
    from service.commands import metrics
    from service.context import ServiceContext
    from service.domain import metrics as m
    from service.store.database import Database

    path = Path(args.file)
    kind = args.format or ("ndjson" if path.suffix.lower() in (".ndjson", ".jsonl") else "csv")
    read = metric_bodies.read_ndjson if kind == "ndjson" else metric_bodies.read_csv
    try:
        samples = read(path.read_bytes(), None)
    except OSError as exc:
        print(f"{path}: {exc.strerror}", file=sys.stderr)
        return 2
    except Problem as exc:
        print(f"{path}: {exc.detail}; nothing imported", file=sys.stderr)
        for e in (exc.errors or [])[:20]:
            print(f"  {e['field']}: {e['reason']}", file=sys.stderr)
        return 1
    first_line = 1 if kind == "ndjson" else 2  # a row's line, for a header-less count
    settings = get_settings()
    db = Database(_database_url(settings), pool_size=2)
    ctx = ServiceContext(settings=settings, db=db)
    console = Console(stderr=True)

    async def run() -> int:
        accepted = duplicates = rejected = 0
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=console) as progress:
                task = progress.add_task(f"importing {path.name}", total=len(samples))
                for start in range(0, len(samples), m.MAX_BATCH):
                    batch = samples[start:start + m.MAX_BATCH]
                    outcome = await metrics.ingest(ctx, args.source, batch)
                    accepted += outcome.accepted
                    duplicates += outcome.duplicates
                    rejected += len(outcome.rejected)
                    for r in outcome.rejected:
                        line = start + r.index + first_line
                        print(f"line {line}\t{r.id}\t{r.reason}\t{r.detail}")
                    progress.advance(task, len(batch))
        finally:
            await db.close()
        print(f"accepted {accepted}, duplicates {duplicates}, rejected {rejected}"
              " (kept in the quarantine)", file=sys.stderr)
        return 0

    return asyncio.run(run())


def cmd_metrics_rebuild_totals(args: argparse.Namespace) -> int:
    """Recompute the live KPI totals of every stored month from the samples."""
    from service.projections.metric_totals import rebuild
    from service.store.database import Database

    db = Database(_database_url(get_settings()), pool_size=1)

    async def run() -> int:
        try:
            async with db.connection() as conn:
                await rebuild(conn)
            print("rebuilt the KPI totals of every stored month", file=sys.stderr)
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def cmd_metrics_archive(args: argparse.Namespace) -> int:
    """Archive fully published months of samples to compressed CSV files, then drop them."""
    import re
    from datetime import UTC, datetime

    from service.domain.periods import PERIOD_PATTERN
    from service.store import metric_partitions
    from service.store.database import Database

    if not re.fullmatch(PERIOD_PATTERN, args.before):
        print(f"--before {args.before!r}: expected YYYY-MM", file=sys.stderr)
        return 2
    settings = get_settings()
    directory = Path(args.to) if args.to else settings.data_dir / "archive"
    db = Database(_database_url(settings), pool_size=1)

    def report(result: metric_partitions.Archived | metric_partitions.Skipped) -> None:
        if isinstance(result, metric_partitions.Archived):
            print(f"{result.period}\tarchived\t{result.samples}\t{result.file}"
                  f"\tsha256:{result.sha256}")
        else:
            print(f"{result.period}\tskipped\t{result.reason}", file=sys.stderr)

    async def run() -> int:
        try:
            async with db.connection() as conn:
                done = await metric_partitions.archive(conn, args.before, directory,
                                                       datetime.now(UTC), progress=report)
            archived = sum(isinstance(r, metric_partitions.Archived) for r in done)
            print(f"archived {archived} month(s) before {args.before} to {directory}",
                  file=sys.stderr)
            return 0
        finally:
            await db.close()

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    """Describe every subcommand."""
    parser = argparse.ArgumentParser(prog="csperf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="migrate and serve the API").set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    demo = sub.add_parser("demo", help="seed a sample shop (idempotent) and print keys to use")
    demo.add_argument("--serve", action="store_true", help="serve the API and pages afterwards")
    demo.add_argument("--keys-file", help="where the demo keeps its keys"
                      " (default: CSPERF_DATA_DIR/demo-keys.json)")
    demo.add_argument("--now", help="pretend it is this moment (ISO 8601 with an offset);"
                      " the demo fills the three months before it")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database helpers")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_url = db_sub.add_parser("url", help="print the database connection string")
    db_url.add_argument("--user", help="connect as this user instead (no password printed),"
                                       " e.g. the BI user of `csperf bi-role create`")
    db_url.set_defaults(func=cmd_db_url)

    bi = sub.add_parser("bi-role", help="the read-only database role for BI tools")
    bi_sub = bi.add_subparsers(dest="bi_command", required=True)
    bi_create = bi_sub.add_parser(
        "create", help="create or update a LOGIN user that may read the reporting schema only;"
                       " prints its connection string (without the password)")
    bi_create.add_argument("--user", default="csperf_bi_user",
                           help="the login name (default csperf_bi_user)")
    bi_create.add_argument("--password", help="its password (visible to `ps`; prefer"
                                              " --password-stdin or CSPERF_BI_PASSWORD)")
    bi_create.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of stdin")
    bi_create.set_defaults(func=cmd_bi_role)

    openapi = sub.add_parser("openapi", help="write openapi.yaml from the app")
    openapi.add_argument("--output", "-o", default="openapi.yaml")
    openapi.set_defaults(func=cmd_openapi)

    projections = sub.add_parser("projections", help="inspect or rebuild read models")
    p_sub = projections.add_subparsers(dest="action", required=True)
    p_sub.add_parser("status", help="position and lag of each projection").set_defaults(
        func=cmd_projections
    )
    rebuild = p_sub.add_parser("rebuild", help="rebuild one projection from zero, then swap")
    rebuild.add_argument("name")
    rebuild.set_defaults(func=cmd_projections)

    metrics_cmd = sub.add_parser("metrics", help="the live-metrics quarantine, import, archive")
    m_sub = metrics_cmd.add_subparsers(dest="action", required=True)
    replay = m_sub.add_parser(
        "replay-quarantine",
        help="try quarantined samples again (after registering an agent, reopening a month)",
    )
    quarantine = m_sub.add_parser("quarantine", help="inspect the quarantine")
    q_sub = quarantine.add_subparsers(dest="quarantine_action", required=True)
    q_list = q_sub.add_parser("list", help="list kept samples, oldest first")
    q_list.add_argument("--status", choices=("quarantined", "accepted", "all"),
                        default="quarantined")
    for cmd, limit in ((replay, 100_000), (q_list, 100)):
        cmd.add_argument("--source", help="only samples of this source")
        cmd.add_argument("--agent-id", help="only samples of this agent")
        cmd.add_argument("--reason", help="only samples rejected for this reason")
        cmd.add_argument("--id", action="append", help="only this sample id (repeatable)")
        cmd.add_argument("--limit", type=int, default=limit)
        cmd.set_defaults(func=cmd_metrics)

    m_sub.add_parser(
        "rebuild-totals", help="recompute the KPI totals of every stored month from the samples"
        " (archived months keep theirs)").set_defaults(func=cmd_metrics_rebuild_totals)
    importing = m_sub.add_parser(
        "import", help="ingest a CSV or NDJSON file of samples (the columns of POST /v1/metrics)")
    importing.add_argument("file", help="the file (.csv, or .ndjson/.jsonl)")
    importing.add_argument("--source", required=True, help="the sending system's name")
    importing.add_argument("--format", choices=("csv", "ndjson"),
                           help="the file's format (default: from its extension)")
    importing.set_defaults(func=cmd_metrics_import)
    archive = m_sub.add_parser(
        "archive", help="export published months' samples to .csv.gz (+ .sha256), then drop"
        " them; totals, rankings and scorecards stay")
    archive.add_argument("--before", required=True, help="archive months before this YYYY-MM")
    archive.add_argument("--to", help="folder for the files (default: DATA_DIR/archive)")
    archive.set_defaults(func=cmd_metrics_archive)

    keys_cmd = sub.add_parser("keys", help="create, list or revoke API keys")
    k_sub = keys_cmd.add_subparsers(dest="action", required=True)
    create = k_sub.add_parser("create", help="issue a key and print it (shown only once)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--subject", help="agent, manager or rater id the key stands for")
    create.add_argument("--source", help="metric source of an ingest key")
    create.add_argument("--name", help="a label to tell keys apart")
    create.set_defaults(func=cmd_keys)
    listing = k_sub.add_parser("list", help="list keys (no secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_keys)
    revoke = k_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    try:
        get_settings()
    except ValidationError as exc:
        # A bad setting is the operator's to fix: one line each, not a stack trace, and no
        # database started first.
        for line in settings_problems(exc):
            print(f"csperf: {line}", file=sys.stderr)
        return 2
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
