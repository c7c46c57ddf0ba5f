"""The event store and projection checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


UPGRADE = [
    """
        CREATE TABLE stream (
            stream_id   text PRIMARY KEY,
            stream_type text NOT NULL,
            version     integer NOT NULL CHECK (version >= 0)
        )
    """,
    """
        CREATE TABLE event (
            position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            -- the writing transaction: readers only pass rows below the running-xact horizon
            tx_id          bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
            stream_id      text NOT NULL,
            stream_type    text NOT NULL,
            version        integer NOT NULL CHECK (version > 0),
            event_id       uuid NOT NULL UNIQUE,
            type           text NOT NULL,
            schema_version integer NOT NULL DEFAULT 1,
            data           jsonb NOT NULL,
            metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
            recorded_at    timestamptz NOT NULL,
            UNIQUE (stream_id, version)
        )
    """,
    "CREATE INDEX event_global_order ON event (tx_id, position)",
    "CREATE INDEX event_type_order ON event (stream_type, tx_id, position)",
    # The store is append-only: refuse edits and deletions at the database itself.
    """
        CREATE FUNCTION event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the event table is append-only';
        END $$
    """,
    """
        CREATE TRIGGER event_append_only BEFORE UPDATE OR DELETE ON event
            FOR EACH ROW EXECUTE FUNCTION event_is_append_only()
    """,
    """
        CREATE TABLE projection_checkpoint (
            name           text NOT NULL,
            generation     integer NOT NULL,
            code_version   integer NOT NULL,
            status         text NOT NULL CHECK (status IN ('building', 'live', 'retired')),
            tx_id          bigint NOT NULL DEFAULT 0,
            position       bigint NOT NULL DEFAULT 0,
            events_applied bigint NOT NULL DEFAULT 0,
            error          text,
            error_position bigint,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (name, generation)
        )
    """,
    "CREATE UNIQUE INDEX projection_one_live ON projection_checkpoint (name)"
    " WHERE status = 'live'",
]

DOWNGRADE = [
    "DROP TABLE projection_checkpoint",
    "DROP TABLE event",
    "DROP FUNCTION event_is_append_only()",
    "DROP TABLE stream",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
