"""API key commands: issue, register the configured bootstrap key, revoke.

Each goes through ``execute`` on the key's stream (``apikey:<key_id>``): the event and the
``api_key`` row (``service.store.keys``) are written in one transaction, and the key's advisory
lock queues two revocations of one key instead of letting both record one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain.principal import (
    ApiKeyIssued,
    credential_problems,
    decide_issue,
    decide_revoke,
    evolve_key,
    key_stream,
)
from service.retrying import on_taken_id
from service.store import keys
from service.store.errors import ConcurrencyError
from service.store.keys import BOOTSTRAP_CREATOR, ApiKey, IssuedKey

log = logging.getLogger("csperf.auth")


def _log_change(what: str, record: ApiKey, metadata: Mapping[str, Any]) -> None:
    log.info(
        "api key %s %s (role %s)", record.key_id, what, record.role,
        extra={"reason": f"key-{what}", "actor": metadata.get("actor"), "key": record.describe()},
    )


async def _issue_once(ctx: ServiceContext, caller: Caller, key: str, record: ApiKey) -> None:
    async def write_row(conn: asyncpg.Connection) -> None:
        await keys.insert(conn, key, record)

    issued = ApiKeyIssued(**record.describe())
    await execute(ctx, caller, key_stream(record.key_id), evolve_key,
                  lambda state: decide_issue(state, issued), then=write_row)


async def issue(
    ctx: ServiceContext, caller: Caller, *, role: str, subject: str | None, source: str | None,
    name: str | None, created_by: str,
) -> IssuedKey:
    """Issue a new key; raise ValueError when the role, subject and source do not fit."""
    problems = credential_problems(role, subject, source)
    if problems:
        raise ValueError("; ".join(f"{field}: {reason}" for field, reason in problems))
    now = ctx.clock()
    # A drawn prefix is taken about once in 2.8e12 per existing key: draw again.
    async for attempt in on_taken_id():
        with attempt:
            key, prefix = keys.new_key()
            record = ApiKey(
                key_id=prefix, prefix=prefix, role=role, subject=subject, source=source,
                name=name, created_at=now, created_by=created_by,
            )
            await _issue_once(ctx, caller, key, record)
    _log_change("issued", record, caller.metadata)
    return IssuedKey(key, record)


async def ensure_bootstrap(ctx: ServiceContext, caller: Caller, key: str) -> tuple[ApiKey, bool]:
    """Register a configured admin key once; return (key, whether this call created it).

    Idempotent across restarts and replicas starting together: the key is found by its hash
    (unique in the table), so it keeps the random id of its first registration, and of two
    replicas registering it at once the second insert fails on the hash and takes the
    winner's row. A revoked bootstrap key stays revoked. A new key (the setting changed)
    retires the bootstrap keys registered before it: changing the setting is how an operator
    replaces a leaked key, which must then stop working.
    """
    problem = keys.bootstrap_key_problem(key)
    if problem is not None:
        raise ValueError(f"CSPERF_BOOTSTRAP_ADMIN_KEY: {problem}")
    existing = await keys.find_by_key(ctx.db, key)
    if existing is not None:
        if existing.key_id == keys.legacy_bootstrap_key_id(key) and existing.revoked_at is None:
            log.warning(
                "bootstrap admin key %s has an id made from its hash, which the event feed shows;"
                " configure a new CSPERF_BOOTSTRAP_ADMIN_KEY (the old one is then revoked)",
                existing.key_id, extra={"reason": "bootstrap-legacy-id"},
            )
        return existing, False
    now = ctx.clock()
    try:
        async for attempt in on_taken_id():  # the random id is taken: draw another
            with attempt:
                record = ApiKey(
                    key_id=keys.new_bootstrap_key_id(), prefix=keys.key_prefix(key) or "",
                    role="admin", subject=None, source=None,
                    name="bootstrap (CSPERF_BOOTSTRAP_ADMIN_KEY)", created_at=now,
                    created_by=BOOTSTRAP_CREATOR,
                )
                await _issue_once(ctx, caller, key, record)
    except asyncpg.UniqueViolationError:
        winner = await keys.find_by_key(ctx.db, key)  # another replica registered it meanwhile
        if winner is None:  # pragma: no cover - the hash is unique and never deleted
            raise
        return winner, False
    _log_change("issued", record, caller.metadata)
    await _retire_previous_bootstraps(ctx, caller, record.key_id)
    return record, True


async def _retire_previous_bootstraps(ctx: ServiceContext, caller: Caller, current: str
                                      ) -> None:
    """Revoke every other active bootstrap key: the setting names one admin key at a time."""
    for old in await keys.list_keys(ctx.db, include_revoked=False):
        if old.created_by == BOOTSTRAP_CREATOR and old.key_id != current:
            await revoke(ctx, caller, old.key_id, revoked_by=BOOTSTRAP_CREATOR)
            log.warning("bootstrap admin key %s revoked: CSPERF_BOOTSTRAP_ADMIN_KEY now names"
                        " key %s", old.key_id, current, extra={"reason": "bootstrap-replaced"})


async def revoke(
    ctx: ServiceContext, caller: Caller, key_id: str, *, revoked_by: str
) -> tuple[ApiKey, bool] | None:
    """Revoke a key; return (key, whether this call revoked it), or None for an unknown id."""
    now = ctx.clock()
    revoked: ApiKey | None = None

    async def mark_row(conn: asyncpg.Connection) -> None:
        nonlocal revoked
        revoked = await keys.mark_revoked(conn, key_id, revoked_by=revoked_by, now=now)
        if revoked is None:  # the row disagrees with the stream: roll the event back
            raise ConcurrencyError(key_stream(key_id), None, 0)

    # Every process drops the keys it holds as this commits (this one before returning).
    await execute(ctx, caller, key_stream(key_id), evolve_key, decide_revoke, then=mark_row,
                  announces="keys")
    if revoked is None:
        current = await keys.get(ctx.db, key_id)
        return (current, False) if current is not None else None
    _log_change("revoked", revoked, caller.metadata)
    return revoked, True
