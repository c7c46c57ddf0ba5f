"""The reporting schema and its read-only role; the webhook subscriptions and their outbox.

Reporting. The views themselves are made at run time by ``service.store.reporting`` (they read
read-model tables that the projection runner creates); this makes their schema, the table that
remembers which version of each view exists, and, where the migrating user may create roles,
the NOLOGIN group ``csperf_bi`` whose members can read that schema and nothing else. Roles
belong to the whole server, so creating it is idempotent and skipped (with a notice) without
CREATEROLE: ``csperf bi-role create`` then does it as a privileged user.

Webhooks. Subscriptions (their HMAC secret is needed to sign, so it is stored, but never
listed, logged or put in an event), and the deliveries that the dispatcher enqueues in the same
transaction as its checkpoint and a sender POSTs with retries, each attempt recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


UPGRADE = [
    "CREATE SCHEMA IF NOT EXISTS reporting",
    """
        COMMENT ON SCHEMA reporting IS 'csperf: stable, documented views for BI tools. Names
        and columns are only ever added; read them with a member of the csperf_bi role.'
    """,
    """
        CREATE TABLE reporting_view_state (
            name        text PRIMARY KEY,
            fingerprint text NOT NULL,
            made_at     timestamptz NOT NULL
        )
    """,
    """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csperf_bi') THEN
                BEGIN
                    CREATE ROLE csperf_bi NOLOGIN;
                EXCEPTION
                    WHEN insufficient_privilege THEN
                        RAISE NOTICE 'csperf_bi not created (no CREATEROLE): run csperf bi-role create as a privileged user';
                    WHEN duplicate_object OR unique_violation THEN
                        NULL;  -- another database of the same server made it just now
                END;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'csperf_bi') THEN
                GRANT USAGE ON SCHEMA reporting TO csperf_bi;
                ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO csperf_bi;
            END IF;
        END $$
    """,
    """
        CREATE TABLE webhook_subscription (
            subscription_id text PRIMARY KEY,
            url             text NOT NULL,
            event_types     text[] NOT NULL,
            stream_types    text[],
            description     text,
            secret          text NOT NULL,
            -- events after this feed cursor are delivered
            start_tx_id     bigint NOT NULL,
            start_position  bigint NOT NULL,
            status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted')),
            created_at      timestamptz NOT NULL,
            created_by      text NOT NULL,
            deleted_at      timestamptz,
            deleted_by      text
        )
    """,
    "CREATE INDEX webhook_subscription_listing ON webhook_subscription (created_at, subscription_id)",
    """
        CREATE TABLE webhook_delivery (
            seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            delivery_id      uuid PRIMARY KEY,
            subscription_id  text NOT NULL REFERENCES webhook_subscription,
            event_id         uuid NOT NULL,
            event_type       text NOT NULL,
            stream_id        text NOT NULL,
            position         bigint NOT NULL,
            body             text NOT NULL,
            status           text NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'sending', 'delivered', 'failed',
                                               'cancelled')),
            attempts         integer NOT NULL DEFAULT 0,
            -- pending: when the next attempt is due; sending: when the claim lapses
            next_attempt_at  timestamptz NOT NULL,
            last_attempt_at  timestamptz,
            last_status_code integer,
            last_error       text,
            created_at       timestamptz NOT NULL DEFAULT now(),
            delivered_at     timestamptz,
            -- one delivery per subscription and event, whatever replays the dispatcher does
            UNIQUE (subscription_id, event_id)
        )
    """,
    "CREATE INDEX webhook_delivery_due ON webhook_delivery (next_attempt_at)"
    " WHERE status IN ('pending', 'sending')",
    "CREATE INDEX webhook_delivery_listing ON webhook_delivery (subscription_id, seq)",
    """
        CREATE TABLE webhook_attempt (
            delivery_id uuid NOT NULL REFERENCES webhook_delivery ON DELETE CASCADE,
            attempt     integer NOT NULL,
            started_at  timestamptz NOT NULL,
            duration_ms double precision NOT NULL,
            status_code integer,
            error       text,
            PRIMARY KEY (delivery_id, attempt)
        )
    """,
]

DOWNGRADE = [
    "DROP TABLE IF EXISTS webhook_attempt",
    "DROP TABLE IF EXISTS webhook_delivery",
    "DROP TABLE IF EXISTS webhook_subscription",
    "DROP TABLE IF EXISTS reporting_view_state",
    # The group role belongs to the server (other databases may use it): it stays.
    "DROP SCHEMA IF EXISTS reporting CASCADE",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
