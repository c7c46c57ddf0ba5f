"""The reminder outbox in PostgreSQL: reminders, the emails that carry them, and their claims.

Every instant is the service clock's (passed in), never the database's ``now()``: the digest
and the retries follow the same clock as the deadlines they remind of.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from service.domain import reminders as r
from service.store.event_store import Cursor


async def start(conn: asyncpg.Connection) -> Cursor:
    """Return the end of the event feed when reminders were installed."""
    row = await conn.fetchrow("SELECT tx_id, position FROM reminder_start")
    return Cursor(row["tx_id"], row["position"]) if row is not None else Cursor()


async def enqueue(conn: asyncpg.Connection, reminders: Sequence[r.Reminder], *,
                  created_at: datetime, event_id: uuid.UUID | None = None) -> int:
    """Record reminders, each once (a known idempotency key inserts nothing); return how many
    were new."""
    if not reminders:
        return 0
    rows = await conn.fetch(
        """
        INSERT INTO reminder (reminder_id, person_id, kind, subject, params, urgent, event_id,
                              created_at)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[],
                             $6::boolean[], $7::uuid[], $8::timestamptz[])
        ON CONFLICT DO NOTHING
        RETURNING reminder_id
        """,
        [x.reminder_id for x in reminders], [x.person_id for x in reminders],
        [x.kind for x in reminders], [x.subject for x in reminders],
        [dict(x.params) for x in reminders],
        [r.KINDS[x.kind].urgent for x in reminders], [event_id] * len(reminders),
        [created_at] * len(reminders),
    )
    return len(rows)


# -- composing emails ---------------------------------------------------------------------------


async def people_due(conn: asyncpg.Connection, limit: int, *, now: datetime,
                     hold_seconds: float) -> list[str]:
    """Return people who may have an email due: an urgent reminder pending, or pending ones
    that waited the hold and no digest of theirs today.

    A filter only, so that people whose digest waits for tomorrow do not fill every batch;
    ``reminders.due_now`` decides.
    """
    rows = await conn.fetch(
        """
        SELECT x.person_id FROM reminder x
        WHERE x.status = 'pending'
        GROUP BY x.person_id
        HAVING bool_or(x.urgent)
            OR (min(x.created_at) <= $2 AND NOT EXISTS (
                SELECT 1 FROM reminder_message m
                WHERE m.person_id = x.person_id AND m.digest_day = $3))
        ORDER BY min(x.seq)
        LIMIT $1
        """,
        limit, now - timedelta(seconds=hold_seconds), r.digest_day(now),
    )
    return [row["person_id"] for row in rows]


def _params(value: Any) -> Mapping[str, str]:
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return {str(k): str(v) for k, v in loaded.items()}


async def take_pending(conn: asyncpg.Connection, person_id: str) -> list[r.Pending]:
    """Lock a person's pending reminders for this transaction (another composer skips them)."""
    rows = await conn.fetch(
        "SELECT reminder_id, person_id, kind, subject, params, created_at FROM reminder"
        " WHERE person_id = $1 AND status = 'pending' ORDER BY seq FOR UPDATE SKIP LOCKED",
        person_id,
    )
    return [r.Pending(row["reminder_id"], r.Reminder(row["person_id"], row["kind"],
                                                     row["subject"], _params(row["params"])),
                      row["created_at"]) for row in rows]


async def settle(conn: asyncpg.Connection, ids: Sequence[uuid.UUID], status: str,
                 now: datetime) -> None:
    """Close reminders that no email will carry (no address, reminders off)."""
    await conn.execute(
        "UPDATE reminder SET status = $2, settled_at = $3 WHERE reminder_id = ANY($1::uuid[])",
        list(ids), status, now)


async def digest_sent(conn: asyncpg.Connection, person_id: str, day: date) -> bool:
    """Tell whether the person's digest of the day exists already."""
    return bool(await conn.fetchval(
        "SELECT true FROM reminder_message WHERE person_id = $1 AND digest_day = $2",
        person_id, day))


async def add_message(
    conn: asyncpg.Connection, message_id: uuid.UUID, *, person_id: str, digest_day: date | None,
    to_address: str, locale: str, email: r.Email, reminders: Sequence[uuid.UUID], now: datetime,
) -> None:
    """Write an email and tie the reminders it carries to it (in the caller's transaction)."""
    await conn.execute(
        """
        INSERT INTO reminder_message (message_id, person_id, digest_day, to_address, locale,
                                      subject, body, next_attempt_at, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
        """,
        message_id, person_id, digest_day, to_address, locale, email.subject, email.body, now,
    )
    await conn.execute(
        "UPDATE reminder SET status = 'queued', message_id = $2 WHERE reminder_id = ANY($1)",
        list(reminders), message_id)


# -- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """An email a sender holds for one attempt."""

    message_id: uuid.UUID
    person_id: str
    to_address: str
    locale: str
    subject: str
    body: str
    attempt: int
    created_at: datetime


_CLAIM = """
WITH due AS (
    SELECT message_id FROM reminder_message
    WHERE status IN ('pending', 'sending') AND next_attempt_at <= $3
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE reminder_message m
SET status = 'sending', attempts = m.attempts + 1, next_attempt_at = $3 + $2::interval
FROM due WHERE m.message_id = due.message_id
RETURNING m.message_id, m.person_id, m.to_address, m.locale, m.subject, m.body, m.attempts,
          m.created_at
"""


async def claim(conn: asyncpg.Connection, limit: int, lease_seconds: float, now: datetime
                ) -> list[Claimed]:
    """Claim up to limit due emails for one attempt each; a claim lapses after the lease."""
    rows = await conn.fetch(_CLAIM, limit, timedelta(seconds=lease_seconds), now)
    return [Claimed(row["message_id"], row["person_id"], row["to_address"], row["locale"],
                    row["subject"], row["body"], row["attempts"], row["created_at"])
            for row in rows]


async def record(conn: asyncpg.Connection, claimed: Claimed, *, status: str,
                 error: str | None, retry_at: datetime | None, now: datetime) -> int | None:
    """Record an attempt (sent, failed, or pending again at ``retry_at``) and settle the
    reminders of a sent or failed email; return how many reminders that settled (None: the
    claim had lapsed and another sender took over)."""
    async with conn.transaction():
        updated = await conn.fetchval(
            """
            UPDATE reminder_message
            SET status = $3, last_error = $4,
                next_attempt_at = coalesce($5::timestamptz, next_attempt_at),
                sent_at = CASE WHEN $3 = 'sent' THEN $6::timestamptz END
            WHERE message_id = $1 AND attempts = $2 AND status = 'sending'
            RETURNING true
            """,
            claimed.message_id, claimed.attempt, status, error, retry_at, now,
        )
        if not updated:
            return None
        if status == "pending":
            return 0
        result: str = await conn.execute(
            "UPDATE reminder SET status = $2, settled_at = $3 WHERE message_id = $1",
            claimed.message_id, status, now)
    return int(result.rsplit(" ", 1)[-1])


# -- reading --------------------------------------------------------------------------------------


async def of_person(conn: asyncpg.Connection, person_id: str, limit: int
                    ) -> list[dict[str, Any]]:
    """Return a person's latest reminders, newest first, with their email's state."""
    rows = await conn.fetch(
        """
        SELECT x.reminder_id, x.kind, x.subject, x.params, x.status, x.created_at,
               x.settled_at, x.message_id, m.attempts, m.last_error, m.sent_at,
               m.next_attempt_at, m.status AS message_status
        FROM reminder x LEFT JOIN reminder_message m USING (message_id)
        WHERE x.person_id = $1
        ORDER BY x.seq DESC
        LIMIT $2
        """,
        person_id, limit,
    )
    return [{**dict(row), "params": dict(_params(row["params"]))} for row in rows]
