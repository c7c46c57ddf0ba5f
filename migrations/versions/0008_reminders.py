"""The email reminder outbox: reminders, the emails that carry them, and where they start.

``reminder`` holds one row per (person, kind, subject), its id derived from that triple, so a
replayed event or a second scheduler pass inserts nothing. ``reminder_message`` holds the
emails: an overdue item alone, the rest in a person's digest of the day (one at most: the
unique key on person and day). ``reminder_start`` is the end of the event feed when reminders
were installed: events before it happened before anyone asked to be reminded, and a rebuild or
a first start on an old database must not email about them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


UPGRADE = [
    """
        CREATE TABLE reminder_start (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            tx_id    bigint NOT NULL,
            position bigint NOT NULL
        )
    """,
    """
        INSERT INTO reminder_start (tx_id, position)
        SELECT coalesce(max(tx_id), 0),
               coalesce((SELECT max(position) FROM event e2
                         WHERE e2.tx_id = (SELECT max(tx_id) FROM event)), 0)
        FROM event
    """,
    """
        CREATE TABLE reminder_message (
            message_id      uuid PRIMARY KEY,
            person_id       text NOT NULL,
            -- the day of a digest (UTC); NULL for an urgent email that carries one reminder
            digest_day      date,
            to_address      text NOT NULL,
            locale          text NOT NULL,
            subject         text NOT NULL,
            body            text NOT NULL,
            status          text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            attempts        integer NOT NULL DEFAULT 0,
            -- pending: when the next attempt is due; sending: when the claim lapses
            next_attempt_at timestamptz NOT NULL,
            last_error      text,
            created_at      timestamptz NOT NULL,
            sent_at         timestamptz,
            UNIQUE (person_id, digest_day)
        )
    """,
    "CREATE INDEX reminder_message_due ON reminder_message (next_attempt_at)"
    " WHERE status IN ('pending', 'sending')",
    """
        CREATE TABLE reminder (
            reminder_id uuid PRIMARY KEY,
            seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            person_id   text NOT NULL,
            kind        text NOT NULL,
            subject     text NOT NULL,
            params      jsonb NOT NULL,
            urgent      boolean NOT NULL,
            -- the event that caused it, or NULL when the scheduler made it
            event_id    uuid,
            created_at  timestamptz NOT NULL,
            status      text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'queued', 'sent', 'failed',
                                          'skipped_no_email', 'opted_out')),
            message_id  uuid REFERENCES reminder_message,
            settled_at  timestamptz,
            UNIQUE (person_id, kind, subject)
        )
    """,
    "CREATE INDEX reminder_pending ON reminder (person_id, seq) WHERE status = 'pending'",
    "CREATE INDEX reminder_person ON reminder (person_id, seq)",
]

DOWNGRADE = [
    "DROP TABLE IF EXISTS reminder",
    "DROP TABLE IF EXISTS reminder_message",
    "DROP TABLE IF EXISTS reminder_start",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
