"""API keys: their rows, looked up by hash, listed, and written beside their events.

A key reads ``csk_<prefix>_<secret>``: the prefix (8 characters of ``[a-z0-9]``) is public and
doubles as the key id, so a person can tell keys apart in listings and logs; the secret is
``secrets.token_urlsafe(32)``, 256 bits. Only the SHA-256 of the whole key is stored. A fast
hash is right here, unlike for passwords: a slow KDF exists to stretch guessable secrets, and
256 random bits cannot be guessed at any hash rate, while a slow hash would cost every request
tens of milliseconds of CPU. The hash is unsalted on purpose, so the key is found by an index
lookup on it rather than by trying every row.

Every change is a command (``service.commands.keys``): it appends an ``ApiKeyIssued``/
``ApiKeyRevoked`` event to ``apikey:<key_id>`` (with neither the secret nor the hash) and writes
the ``api_key`` row here in the same transaction. A verified key is held by each process until
a revocation, whose transaction notifies every process to drop the keys it holds, so a
revocation takes effect with the next request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.principal import (
    Principal,
)
from service.store.database import Database

log = logging.getLogger("csperf.auth")

KEY_MARK = "csk_"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
#: The shortest key CSPERF_BOOTSTRAP_ADMIN_KEY may be: ``csk_`` and at least 28 more characters.
MIN_BOOTSTRAP_LENGTH = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_RE = re.compile(r"[A-Za-z0-9]{1,16}")

_COLUMNS = (
    "key_id, prefix, role, subject, source, name, created_at, created_by, revoked_at, revoked_by"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key, without its secret or hash."""

    key_id: str
    prefix: str
    role: str
    subject: str | None
    source: str | None
    name: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def principal(self) -> Principal:
        """Return the principal this key stands for; a key without a subject stands for itself."""
        return Principal(
            subject=self.subject or f"apikey:{self.key_id}",
            role=self.role,
            key_id=self.key_id,
            source=self.source,
        )

    def describe(self) -> dict[str, Any]:
        """Return the key's public fields (what listings and events may show)."""
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "role": self.role,
            "subject": self.subject,
            "source": self.source,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just issued: the only moment its secret exists outside the caller's hands."""

    key: str
    record: ApiKey


def hash_key(key: str) -> bytes:
    """Return the SHA-256 digest a key is stored and looked up by."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def key_prefix(credential: str) -> str | None:
    """Return the public prefix of a ``csk_`` credential, or None when it has no usable one."""
    if not credential.startswith(KEY_MARK):
        return None
    prefix, sep, secret = credential[len(KEY_MARK) :].partition("_")
    # Without a separator the first characters are secret, so nothing may be shown.
    if not sep or not secret or not _PREFIX_RE.fullmatch(prefix):
        return None
    return prefix


def new_key() -> tuple[str, str]:
    """Return a fresh (key, prefix)."""
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}", prefix


#: Who registers (and retires) the configured bootstrap key.
BOOTSTRAP_CREATOR = "bootstrap"
_BOOTSTRAP_ID_MARK = "boot"


def new_bootstrap_key_id() -> str:
    """Return a fresh id for a bootstrap key: ``boot`` and 12 random characters.

    Random, not derived from the key: the id is public (``actor.key_id`` on every event the key
    writes, which readers see), and an id derived from an operator-chosen key, even a salted
    hash of it, would let anyone check guesses at that key offline. Stability comes from the
    database instead: the key is found by its hash at every start and keeps the id it got the
    first time. 16 characters, so it never collides with an 8-character issued key id.
    """
    return _BOOTSTRAP_ID_MARK + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(12))


def legacy_bootstrap_key_id(key: str) -> str:
    # Before issue 17 the id was these 12 hex digits of the key's unsalted SHA-256.
    return _BOOTSTRAP_ID_MARK + hash_key(key).hex()[:12]


def bootstrap_key_problem(key: str) -> str | None:
    """Say why a configured bootstrap key is unusable, or return None when it is fine."""
    if not key.startswith(KEY_MARK):
        return f"the key must start with {KEY_MARK!r}"
    if len(key) < MIN_BOOTSTRAP_LENGTH or not key.isprintable() or " " in key:
        return (
            f"the key must be at least {MIN_BOOTSTRAP_LENGTH} printable "
            "characters without spaces; generate one with: python -c \"import secrets; "
            "print('csk_boot_' + secrets.token_urlsafe(32))\""
        )
    return None


def _record(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        prefix=row["prefix"],
        role=row["role"],
        subject=row["subject"],
        source=row["source"],
        name=row["name"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )


async def find_active(db: Database, key: str) -> ApiKey | None:
    """Return the unrevoked key a credential matches, or None."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = $1 AND revoked_at IS NULL",
            hash_key(key),
        )
    return _record(row) if row is not None else None


async def get(db: Database, key_id: str) -> ApiKey | None:
    """Return one key by id, revoked or not."""
    async with db.connection() as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE key_id = $1", key_id)
    return _record(row) if row is not None else None


async def list_keys(db: Database, *, include_revoked: bool = True) -> list[ApiKey]:
    """Return every key, oldest first."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM api_key WHERE $1 OR revoked_at IS NULL"
            " ORDER BY created_at, key_id",
            include_revoked,
        )
    return [_record(r) for r in rows]


async def find_by_key(db: Database, key: str) -> ApiKey | None:
    """Return the key a credential matches, revoked or not."""
    async with db.connection() as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = $1",
                                  hash_key(key))
    return _record(row) if row is not None else None


async def insert(conn: asyncpg.Connection, key: str, record: ApiKey) -> None:
    """Write a new key's row (its hash, never the key); the hash is unique."""
    await conn.execute(
        """
        INSERT INTO api_key (key_id, key_hash, prefix, role, subject, source, name,
                             created_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        record.key_id, hash_key(key), record.prefix, record.role, record.subject,
        record.source, record.name, record.created_at, record.created_by,
    )


async def mark_revoked(
    conn: asyncpg.Connection, key_id: str, *, revoked_by: str, now: datetime
) -> ApiKey | None:
    """Mark a key's row revoked; return it, or None when it was revoked already."""
    row = await conn.fetchrow(
        f"""
        UPDATE api_key SET revoked_at = $2, revoked_by = $3
        WHERE key_id = $1 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
        """,
        key_id, now, revoked_by,
    )
    return _record(row) if row is not None else None
