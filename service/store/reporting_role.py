"""The read-only BI role of the ``reporting`` schema, and its login users.

``csperf reporting create-user`` (service/cli.py) makes a LOGIN user in the NOLOGIN group
``csperf_bi``, which may connect and SELECT the reporting views (``service/store/reporting.py``)
and nothing else. The password reaches the server as a SCRAM-SHA-256 verifier, never in clear.
Apart from the views, because making roles is an operator's act with its own rights
(CREATEROLE), while the views are the service's own, remade at every start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from service.store.reporting import GROUP_ROLE, SCHEMA, ensure_reporting, group_role_exists

DEFAULT_BI_USER = "csperf_bi_user"


def connection_url(url: str, user: str) -> str:
    """Return a database URL for another user, without any password."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_role_name(name: str) -> str | None:
    """Say why a role name is refused (None: fine): lower-case letters, digits and _."""
    if not _ROLE_NAME.fullmatch(name):
        return "1 to 63 lower-case letters, digits or _, not starting with a digit"
    if name.startswith("pg_") or name == GROUP_ROLE:
        return f"reserved: pg_* and {GROUP_ROLE} (the group) cannot be login users"
    return None


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """Return the SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677).

    The server is given the verifier, never the password, so the password cannot end up in
    its statement log. Only for ASCII passwords: others need SASLprep, which the server does.
    """
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class RoleSetup:
    """What ``create_bi_role`` did, for the operator."""

    user: str
    created_user: bool
    created_group: bool
    warnings: list[str]


async def ensure_group(conn: asyncpg.Connection) -> bool:
    """Create the NOLOGIN group role if missing and give it the reporting schema; return
    whether it was created."""
    created = False
    if not await group_role_exists(conn):
        try:
            async with conn.transaction():
                await conn.execute(f"CREATE ROLE {GROUP_ROLE} NOLOGIN")
            created = True
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # another database of the cluster made it a moment ago
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    await conn.execute(await conn.fetchval(
        f"SELECT format('GRANT CONNECT ON DATABASE %I TO {GROUP_ROLE}', current_database())"))
    await conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {GROUP_ROLE}")
    await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {GROUP_ROLE}")
    await conn.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO {GROUP_ROLE}"
    )
    return created


async def _revoke_from_public(conn: asyncpg.Connection) -> list[str]:
    """Take from PUBLIC every right on schema public and TEMP on this database; say what not.

    PostgreSQL gives every role USAGE on public (and, before 15, CREATE) and TEMP on each
    database through PUBLIC, and a right held through PUBLIC cannot be refused to one role:
    so the BI user could list the tables and CREATE TEMP TABLE in a READ WRITE transaction.
    The role that owns the csperf tables (the service's) is given both rights back by name;
    views need neither for their readers, since they read their tables as their owner.
    """
    warnings: list[str] = []
    service_role = await conn.fetchval(
        "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'event'"
    ) or await conn.fetchval("SELECT current_user")
    superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    owns_schema = await conn.fetchval(
        "SELECT pg_has_role(current_user, nspowner, 'USAGE') FROM pg_namespace"
        " WHERE nspname = 'public'")
    if superuser or owns_schema:
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(await conn.fetchval(
            "SELECT format('GRANT USAGE, CREATE ON SCHEMA public TO %I', $1::text)",
            service_role))
    else:
        warnings.append("could not revoke the rights on schema public from PUBLIC (not its"
                        " owner): run `REVOKE ALL ON SCHEMA public FROM PUBLIC` as the owner")
    owns_database = await conn.fetchval(
        "SELECT pg_has_role(current_user, datdba, 'USAGE') FROM pg_database"
        " WHERE datname = current_database()")
    if superuser or owns_database:
        await conn.execute(await conn.fetchval(
            "SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database())"))
        await conn.execute(await conn.fetchval(
            "SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(),"
            " $1::text)", service_role))
    else:
        warnings.append("could not revoke TEMP on this database from PUBLIC (not its owner):"
                        " run `REVOKE TEMPORARY ON DATABASE ... FROM PUBLIC` as the owner")
    return warnings


async def create_bi_role(conn: asyncpg.Connection, user: str, password: str) -> RoleSetup:
    """Create (or update) a LOGIN user in the read-only BI group; needs CREATEROLE.

    The user may connect and SELECT the reporting views; it has no rights on ``public`` (the
    event table, API keys, read-model tables), cannot create objects, not even temporary
    tables, and its sessions default to read-only transactions.
    """
    problem = check_role_name(user)
    if problem is not None:
        raise ValueError(f"user: {problem}")
    if not password:
        raise ValueError("password: must not be empty")
    warnings: list[str] = []
    secret = scram_verifier(password) if password.isascii() else password
    async with conn.transaction():
        created_group = await ensure_group(conn)
        exists = bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user))
        verb = "ALTER ROLE" if exists else "CREATE ROLE"
        statement = await conn.fetchval(
            f"SELECT format('{verb} %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            " NOREPLICATION NOBYPASSRLS INHERIT PASSWORD %L', $1::text, $2::text)",
            user, secret,
        )
        await conn.execute(statement)
        await conn.execute(f'GRANT {GROUP_ROLE} TO "{user}"')
        await conn.execute(f'ALTER ROLE "{user}" SET default_transaction_read_only = on')
        warnings += await _revoke_from_public(conn)
        await ensure_reporting(conn)
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {GROUP_ROLE}")
    return RoleSetup(user=user, created_user=not exists, created_group=created_group,
                     warnings=warnings)
