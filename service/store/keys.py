"""API keys: issue, look up, list and revoke, each change recorded as an event.

A key reads ``csk_<prefix>_<secret>``: the prefix (8 characters of ``[a-z0-9]``) is public and
doubles as the key id, so a person can tell keys apart in listings and logs; the secret is
``secrets.token_urlsafe(32)``, 256 bits. Only the SHA-256 of the whole key is stored. A fast
hash is right here, unlike for passwords: a slow KDF exists to stretch guessable secrets, and
256 random bits cannot be guessed at any hash rate, while a slow hash would cost every request
tens of milliseconds of CPU. The hash is unsalted on purpose, so the key is found by an index
lookup on it rather than by trying every row.

Every change appends an ``ApiKeyIssued``/``ApiKeyRevoked`` event to ``apikey:<key_id>`` (with
neither the secret nor the hash) and writes the ``api_key`` row in the same transaction. A
verified key is held by each process until a revocation, whose transaction notifies every
process to drop the keys it holds, so a revocation takes effect with the next request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.principal import (
    ApiKeyIssued,
    ApiKeyRevoked,
    Principal,
    credential_problems,
    event_data,
)
from service.store import event_store, invalidation
from service.store.database import Database
from service.store.errors import ConcurrencyError
from service.store.event_store import NewEvent

log = logging.getLogger("csperf.auth")

KEY_MARK = "csk_"
PREFIX_LENGTH = 8
SECRET_BYTES = 32
#: The shortest key CSPERF_BOOTSTRAP_ADMIN_KEY may be: ``csk_`` and at least 28 more characters.
MIN_BOOTSTRAP_LENGTH = 32
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_PREFIX_RE = re.compile(r"[A-Za-z0-9]{1,16}")
_ISSUE_ATTEMPTS = 5

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


def _legacy_bootstrap_key_id(key: str) -> str:
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


def _log_change(what: str, record: ApiKey, metadata: Mapping[str, Any]) -> None:
    log.info(
        "api key %s %s (role %s)", record.key_id, what, record.role,
        extra={"reason": f"key-{what}", "actor": metadata.get("actor"), "key": record.describe()},
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


async def _insert(
    db: Database,
    *,
    key: str,
    record: ApiKey,
    metadata: Mapping[str, Any],
) -> None:
    event = ApiKeyIssued(**record.describe())
    async with db.transaction() as conn:
        # The append is the transaction's first write, as the event store requires.
        await event_store.append(
            conn,
            f"apikey:{record.key_id}",
            [NewEvent(event.type, event_data(event))],
            expected_version=0,
            metadata=metadata,
            recorded_at=record.created_at,
        )
        await conn.execute(
            """
            INSERT INTO api_key (key_id, key_hash, prefix, role, subject, source, name,
                                 created_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            record.key_id,
            hash_key(key),
            record.prefix,
            record.role,
            record.subject,
            record.source,
            record.name,
            record.created_at,
            record.created_by,
        )


async def issue(
    db: Database,
    *,
    role: str,
    subject: str | None,
    source: str | None,
    name: str | None,
    created_by: str,
    metadata: Mapping[str, Any],
    now: datetime,
) -> IssuedKey:
    """Issue a new key; raise ValueError when the role, subject and source do not fit."""
    problems = credential_problems(role, subject, source)
    if problems:
        raise ValueError("; ".join(f"{field}: {reason}" for field, reason in problems))
    for _ in range(_ISSUE_ATTEMPTS):
        key, prefix = new_key()
        record = ApiKey(
            key_id=prefix, prefix=prefix, role=role, subject=subject, source=source,
            name=name, created_at=now, created_by=created_by,
        )
        try:
            await _insert(db, key=key, record=record, metadata=metadata)
        except ConcurrencyError:
            continue  # the random prefix is taken (about 1 in 2.8e12 per existing key)
        _log_change("issued", record, metadata)
        return IssuedKey(key, record)
    raise RuntimeError("could not find a free key id")


async def find_by_key(db: Database, key: str) -> ApiKey | None:
    """Return the key a credential matches, revoked or not."""
    async with db.connection() as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_key WHERE key_hash = $1",
                                  hash_key(key))
    return _record(row) if row is not None else None


async def ensure_bootstrap(
    db: Database, key: str, *, metadata: Mapping[str, Any], now: datetime
) -> tuple[ApiKey, bool]:
    """Register a configured admin key once; return (key, whether this call created it).

    Idempotent across restarts and replicas starting together: the key is found by its hash
    (unique in the table), so it keeps the random id of its first registration, and of two
    replicas registering it at once the second insert fails on the hash and takes the
    winner's row. A revoked bootstrap key stays revoked. A new key (the setting changed)
    retires the bootstrap keys registered before it: changing the setting is how an operator
    replaces a leaked key, which must then stop working.
    """
    problem = bootstrap_key_problem(key)
    if problem is not None:
        raise ValueError(f"CSPERF_BOOTSTRAP_ADMIN_KEY: {problem}")
    existing = await find_by_key(db, key)
    if existing is not None:
        if existing.key_id == _legacy_bootstrap_key_id(key) and existing.revoked_at is None:
            log.warning(
                "bootstrap admin key %s has an id made from its hash, which the event feed shows;"
                " configure a new CSPERF_BOOTSTRAP_ADMIN_KEY (the old one is then revoked)",
                existing.key_id, extra={"reason": "bootstrap-legacy-id"},
            )
        return existing, False
    for _ in range(_ISSUE_ATTEMPTS):
        record = ApiKey(
            key_id=new_bootstrap_key_id(), prefix=key_prefix(key) or "", role="admin",
            subject=None, source=None, name="bootstrap (CSPERF_BOOTSTRAP_ADMIN_KEY)",
            created_at=now, created_by=BOOTSTRAP_CREATOR,
        )
        try:
            await _insert(db, key=key, record=record, metadata=metadata)
        except ConcurrencyError:
            continue  # the random id is taken
        except asyncpg.UniqueViolationError:
            winner = await find_by_key(db, key)  # another replica registered it meanwhile
            if winner is None:  # pragma: no cover - the hash is unique and never deleted
                raise
            return winner, False
        _log_change("issued", record, metadata)
        await _retire_previous_bootstraps(db, record.key_id, metadata=metadata, now=now)
        return record, True
    raise RuntimeError("could not find a free key id")


async def _retire_previous_bootstraps(
    db: Database, current: str, *, metadata: Mapping[str, Any], now: datetime
) -> None:
    """Revoke every other active bootstrap key: the setting names one admin key at a time."""
    for old in await list_keys(db, include_revoked=False):
        if old.created_by == BOOTSTRAP_CREATOR and old.key_id != current:
            await revoke(db, old.key_id, revoked_by=BOOTSTRAP_CREATOR, metadata=metadata, now=now)
            log.warning("bootstrap admin key %s revoked: CSPERF_BOOTSTRAP_ADMIN_KEY now names"
                        " key %s", old.key_id, current, extra={"reason": "bootstrap-replaced"})


async def revoke(
    db: Database,
    key_id: str,
    *,
    revoked_by: str,
    metadata: Mapping[str, Any],
    now: datetime,
) -> tuple[ApiKey, bool] | None:
    """Revoke a key; return (key, whether this call revoked it), or None for an unknown id."""
    for _ in range(_ISSUE_ATTEMPTS):
        current = await get(db, key_id)
        if current is None:
            return None
        if current.revoked_at is not None:
            return current, False
        event = ApiKeyRevoked(**current.describe())
        stream_id = f"apikey:{key_id}"
        try:
            async with db.transaction() as conn:
                version = await event_store.stream_version(conn, stream_id)
                await event_store.append(
                    conn,
                    stream_id,
                    [NewEvent(event.type, event_data(event))],
                    expected_version=version,
                    metadata=metadata,
                    recorded_at=now,
                )
                row = await conn.fetchrow(
                    f"""
                    UPDATE api_key SET revoked_at = $2, revoked_by = $3
                    WHERE key_id = $1 AND revoked_at IS NULL
                    RETURNING {_COLUMNS}
                    """,
                    key_id,
                    now,
                    revoked_by,
                )
                if row is None:  # revoked in between: roll the event back and look again
                    raise ConcurrencyError(stream_id, version, version + 1)
                # Every process drops the keys it holds as this commits.
                await invalidation.announce(conn, "keys")
        except ConcurrencyError:
            continue  # revoked (or otherwise changed) concurrently: look again
        revoked = _record(row)
        _log_change("revoked", revoked, metadata)
        return revoked, True
    current = await get(db, key_id)
    return (current, False) if current is not None else None
