"""Webhook subscriptions and deliveries in PostgreSQL.

Subscription changes are commands (``service.commands.webhooks``): each appends an event
(``webhook:<id>``, without the URL or the secret, see service/domain/webhooks.py) and writes the
row here in the same transaction, as API keys do.
"""

from __future__ import annotations

import logging
import secrets
import string
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from service.store.database import Database
from service.store.event_store import Cursor

log = logging.getLogger("csperf.webhooks")

_ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret

_COLUMNS = (
    "subscription_id, url, event_types, stream_types, description, start_tx_id,"
    " start_position, status, created_at, created_by, deleted_at, deleted_by"
)


@dataclass(frozen=True)
class Subscription:
    """A subscription as listed: never its secret."""

    subscription_id: str
    url: str
    event_types: list[str]
    stream_types: list[str] | None
    description: str | None
    start: Cursor
    status: str
    created_at: datetime
    created_by: str
    deleted_at: datetime | None
    deleted_by: str | None


def _subscription(row: asyncpg.Record) -> Subscription:
    return Subscription(
        subscription_id=row["subscription_id"], url=row["url"],
        event_types=list(row["event_types"]),
        stream_types=list(row["stream_types"]) if row["stream_types"] is not None else None,
        description=row["description"], start=Cursor(row["start_tx_id"], row["start_position"]),
        status=row["status"], created_at=row["created_at"], created_by=row["created_by"],
        deleted_at=row["deleted_at"], deleted_by=row["deleted_by"],
    )


def new_secret() -> str:
    """Return a fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_id() -> str:
    """Return a fresh random subscription id."""
    return "wh_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


async def insert(
    conn: asyncpg.Connection, subscription_id: str, *, url: str, event_types: Sequence[str],
    stream_types: Sequence[str] | None, description: str | None, secret: str, start: Cursor,
    created_by: str, now: datetime,
) -> Subscription:
    """Write a new subscription's row (the only place its secret is kept)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO webhook_subscription (subscription_id, url, event_types,
            stream_types, description, secret, start_tx_id, start_position,
            created_at, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        RETURNING {_COLUMNS}
        """,
        subscription_id, url, list(event_types),
        list(stream_types) if stream_types is not None else None, description,
        secret, start.tx_id, start.position, now, created_by,
    )
    return _subscription(row)


async def get(db: Database, subscription_id: str) -> Subscription | None:
    """Return a subscription, deleted or not."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM webhook_subscription WHERE subscription_id = $1",
            subscription_id,
        )
    return _subscription(row) if row is not None else None


async def list_all(db: Database, *, status: str | None) -> list[Subscription]:
    """Return the subscriptions (of a status), oldest first."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM webhook_subscription"
            " WHERE $1::text IS NULL OR status = $1 ORDER BY created_at, subscription_id",
            status,
        )
    return [_subscription(r) for r in rows]


async def pending(conn: asyncpg.Connection, subscription_id: str) -> int:
    """Count the deliveries of a subscription still to be sent."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhook_delivery WHERE subscription_id = $1"
        " AND status IN ('pending', 'sending')", subscription_id)
    return count


async def mark_deleted(
    conn: asyncpg.Connection, subscription_id: str, *, deleted_by: str, now: datetime
) -> Subscription | None:
    """Mark a subscription deleted and cancel its pending deliveries; return it, or None when
    it was not active."""
    row = await conn.fetchrow(
        f"UPDATE webhook_subscription SET status = 'deleted', deleted_at = $2,"
        f" deleted_by = $3 WHERE subscription_id = $1 AND status = 'active'"
        f" RETURNING {_COLUMNS}",
        subscription_id, now, deleted_by,
    )
    if row is None:
        return None
    await conn.execute(
        "UPDATE webhook_delivery SET status = 'cancelled' WHERE subscription_id = $1"
        " AND status IN ('pending', 'sending')", subscription_id)
    return _subscription(row)


# -- the dispatcher's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the dispatcher needs to know of an active subscription."""

    subscription_id: str
    event_types: list[str]
    stream_types: list[str] | None
    start: Cursor


async def active_targets(conn: asyncpg.Connection) -> list[Target]:
    """Return the active subscriptions."""
    rows = await conn.fetch(
        "SELECT subscription_id, event_types, stream_types, start_tx_id, start_position"
        " FROM webhook_subscription WHERE status = 'active'"
    )
    return [Target(r["subscription_id"], list(r["event_types"]),
                   list(r["stream_types"]) if r["stream_types"] is not None else None,
                   Cursor(r["start_tx_id"], r["start_position"])) for r in rows]


async def enqueue(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert deliveries (delivery_id, subscription_id, event_id, event_type, stream_id,
    position, body), once each."""
    await conn.executemany(
        """
        INSERT INTO webhook_delivery (delivery_id, subscription_id, event_id, event_type,
                                      stream_id, position, body, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, now())
        ON CONFLICT DO NOTHING
        """,
        rows,
    )


# -- the sender's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery a sender holds for one attempt."""

    delivery_id: uuid.UUID
    subscription_id: str
    url: str
    secret: str
    event_type: str
    event_id: uuid.UUID
    body: str
    attempt: int


_CLAIM = """
WITH due AS (
    SELECT d.delivery_id FROM webhook_delivery d
    WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_delivery d
SET status = 'sending', attempts = d.attempts + 1, last_attempt_at = now(),
    next_attempt_at = now() + make_interval(secs => $2)
FROM due, webhook_subscription s
WHERE d.delivery_id = due.delivery_id AND s.subscription_id = d.subscription_id
  AND s.status = 'active'
RETURNING d.delivery_id, d.subscription_id, s.url, s.secret, d.event_type, d.event_id, d.body,
          d.attempts
"""


async def claim(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to limit due deliveries for one attempt each (a short transaction of its own).

    A claim lasts ``lease_seconds``; a delivery whose sender never reports back is due again
    after it.
    """
    rows = await conn.fetch(_CLAIM, limit, lease_seconds)
    return [Claimed(r["delivery_id"], r["subscription_id"], r["url"], r["secret"],
                    r["event_type"], r["event_id"], r["body"], r["attempts"]) for r in rows]


async def cancel_orphans(conn: asyncpg.Connection) -> int:
    """Cancel deliveries a deletion raced with (enqueued just as their subscription went)."""
    result: str = await conn.execute(
        "UPDATE webhook_delivery d SET status = 'cancelled' FROM webhook_subscription s"
        " WHERE s.subscription_id = d.subscription_id AND s.status = 'deleted'"
        " AND d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()"
    )
    return int(result.rsplit(" ", 1)[-1])


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    started_at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        """Tell whether the receiver took the delivery (any 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300


async def record(
    conn: asyncpg.Connection, claimed: Claimed, outcome: Outcome, *, retry_in: float | None,
) -> bool:
    """Record an attempt: delivered, due again in ``retry_in`` seconds, or failed for good
    (``retry_in`` None). Return False when the claim had lapsed and another sender took over."""
    async with conn.transaction():
        if outcome.delivered:
            status, retry = "delivered", 0.0
        elif retry_in is None:
            status, retry = "failed", 0.0
        else:
            status, retry = "pending", retry_in
        updated = await conn.fetchval(
            """
            UPDATE webhook_delivery
            SET status = $3, last_status_code = $4, last_error = $5,
                delivered_at = CASE WHEN $3 = 'delivered' THEN now() END,
                next_attempt_at = now() + make_interval(secs => $6)
            WHERE delivery_id = $1 AND attempts = $2 AND status = 'sending'
            RETURNING true
            """,
            claimed.delivery_id, claimed.attempt, status, outcome.status_code, outcome.error,
            retry,
        )
        await conn.execute(
            "INSERT INTO webhook_attempt VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            claimed.delivery_id, claimed.attempt, outcome.started_at, outcome.duration_ms,
            outcome.status_code, outcome.error,
        )
    return bool(updated)


_DELIVERY_COLUMNS = (
    "d.seq, d.delivery_id, d.subscription_id, d.event_id, d.event_type, d.stream_id,"
    " d.position, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at,"
    " d.last_status_code, d.last_error, d.created_at, d.delivered_at"
)


async def deliveries(
    db: Database, subscription_id: str, *, status: str | None, event_type: str | None,
    after_seq: int | None, descending: bool, limit: int,
) -> list[dict[str, Any]]:
    """Return a page of a subscription's deliveries (by seq), each with its attempts."""
    direction = "DESC" if descending else "ASC"
    comparison = "<" if descending else ">"
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"""
            SELECT {_DELIVERY_COLUMNS},
                   coalesce((SELECT jsonb_agg(jsonb_build_object(
                                 'attempt', a.attempt, 'started_at', a.started_at,
                                 'duration_ms', a.duration_ms, 'status_code', a.status_code,
                                 'error', a.error) ORDER BY a.attempt)
                             FROM webhook_attempt a WHERE a.delivery_id = d.delivery_id),
                            '[]'::jsonb) AS attempt_log
            FROM webhook_delivery d
            WHERE d.subscription_id = $1
              AND ($2::text IS NULL OR d.status = $2)
              AND ($3::text IS NULL OR d.event_type = $3)
              AND ($4::bigint IS NULL OR d.seq {comparison} $4)
            ORDER BY d.seq {direction}
            LIMIT $5
            """,
            subscription_id, status, event_type, after_seq, limit,
        )
    return [dict(r) for r in rows]
