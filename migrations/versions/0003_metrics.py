"""Live metrics: the append-only sample table, the quarantine, and a cycle-status index.

Samples are not events: see service/store/metrics.py for why. The KPI read model built from
them (metric_totals, metric_arrivals) is a projection and creates its own tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


UPGRADE = [
    """
        CREATE TABLE metric_sample (
            id          bigint GENERATED ALWAYS AS IDENTITY,
            -- the writing transaction: the aggregator only passes rows below the running-xact
            -- horizon, as event readers do (service/store/event_store.py)
            tx_id       bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
            source      text NOT NULL,
            sample_id   text NOT NULL,
            agent_id    text NOT NULL,
            team_id     text NOT NULL,
            period      text NOT NULL,
            metric      text NOT NULL,
            value       double precision NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            -- the idempotency key: a sample sent twice is stored once, forever
            PRIMARY KEY (source, sample_id)
        )
    """,
    "CREATE INDEX metric_sample_order ON metric_sample (tx_id, id)",
    # What ingestion hands PostgreSQL: one array of these per batch.
    """
        CREATE TYPE metric_sample_row AS (
            source      text,
            sample_id   text,
            agent_id    text,
            team_id     text,
            period      text,
            metric      text,
            value       double precision,
            occurred_at timestamptz
        )
    """,
    """
        CREATE FUNCTION metric_sample_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the metric_sample table is append-only';
        END $$
    """,
    """
        CREATE TRIGGER metric_sample_append_only BEFORE UPDATE OR DELETE ON metric_sample
            FOR EACH ROW EXECUTE FUNCTION metric_sample_is_append_only()
    """,
    """
        CREATE TABLE metric_quarantine (
            source            text NOT NULL,
            sample_id         text NOT NULL,
            raw               jsonb NOT NULL,
            agent_id          text NOT NULL,
            metric            text NOT NULL,
            reason            text NOT NULL,
            detail            text NOT NULL,
            status            text NOT NULL DEFAULT 'quarantined'
                              CHECK (status IN ('quarantined', 'accepted')),
            attempts          integer NOT NULL DEFAULT 1,
            first_received_at timestamptz NOT NULL,
            received_at       timestamptz NOT NULL,
            replayed_at       timestamptz,
            resolved_by       text,
            PRIMARY KEY (source, sample_id)
        )
    """,
    "CREATE INDEX metric_quarantine_pending ON metric_quarantine (first_received_at, source,"
    " sample_id) WHERE status = 'quarantined'",
    "CREATE INDEX metric_quarantine_listing ON metric_quarantine (first_received_at, source,"
    " sample_id)",
    # Ingestion asks each batch's cycles for their status; the cycle's latest status event is
    # then one probe, however many evaluations the stream holds.
    """
        CREATE INDEX event_cycle_status ON event (stream_id, version)
        WHERE type IN ('CycleOpened', 'CycleClosed', 'CyclePublished', 'CycleReopened')
    """,
]

DOWNGRADE = [
    "DROP INDEX event_cycle_status",
    "DROP TABLE metric_quarantine",
    "DROP TABLE metric_sample",
    "DROP TYPE metric_sample_row",
    "DROP FUNCTION metric_sample_is_append_only()",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
