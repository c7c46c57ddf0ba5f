"""The csperf command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from service.config import Settings, get_settings
from service.domain.principal import ROLES


def _database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from service.store.embedded import start_embedded

    return start_embedded(settings.data_dir)


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate, then serve the API until interrupted."""
    import uvicorn

    from service.main import create_app
    from service.observability import configure_logging
    from service.store import migrate

    settings = get_settings()
    configure_logging(settings.log_level)
    url = _database_url(settings)
    migrate.upgrade(url)
    app = create_app(settings, database_url=url, migrate_on_start=False)
    where = f"http://{settings.host}:{settings.port}"
    print(f"csperf serving on {where}  (API docs: {where}/docs)", file=sys.stderr)
    if settings.bootstrap_admin_key is None:
        print(
            "No CSPERF_BOOTSTRAP_ADMIN_KEY set. Get an admin key with:\n"
            "  .venv/bin/csperf keys create --role admin --name me",
            file=sys.stderr,
        )
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None,
                proxy_headers=False, timeout_graceful_shutdown=5)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply migrations to the configured (or embedded) database."""
    from service.store import migrate

    migrate.upgrade(_database_url(get_settings()))
    print("database at", migrate.head_revision())
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    """Print the connection string of the configured (or embedded) database."""
    print(_database_url(get_settings()))
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
    from datetime import UTC, datetime

    from service.domain.principal import CLI_PRINCIPAL, credential_problems, event_metadata
    from service.store import keys
    from service.store.database import Database

    if args.action == "create":
        problems = credential_problems(args.role, args.subject, args.source)
        if problems:
            for field, reason in problems:
                print(f"--{field}: {reason}", file=sys.stderr)
            return 2
    db = Database(_database_url(get_settings()), pool_size=2)
    metadata = event_metadata(CLI_PRINCIPAL, request_id=uuid.uuid4().hex)
    now = datetime.now(UTC)

    async def run() -> int:
        try:
            if args.action == "create":
                issued = await keys.issue(
                    db, role=args.role, subject=args.subject, source=args.source,
                    name=args.name, created_by=CLI_PRINCIPAL.subject, metadata=metadata, now=now,
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
            result = await keys.revoke(
                db, args.key_id, revoked_by=CLI_PRINCIPAL.subject, metadata=metadata, now=now
            )
            if result is None:
                print(f"no API key {args.key_id!r}", file=sys.stderr)
                return 1
            print(f"key {args.key_id} {'revoked' if result[1] else 'was already revoked'}")
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

    db = sub.add_parser("db", help="database helpers")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("url", help="print the database connection string").set_defaults(
        func=cmd_db_url
    )

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
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
