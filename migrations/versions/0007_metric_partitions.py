"""Years of samples: metric_sample partitioned by month, partitions made ahead, months archived.

``metric_sample`` becomes a table partitioned by ``period`` (the team's calendar month, the
unit cycles close, publish and archive by), one partition per month, ``metric_sample_YYYY_MM``.
Each partition's key index covers one month, so it stays the size of a month however many years
are kept, and a month leaves as a whole (``csperf metrics archive``: exported to a compressed
CSV with its checksum, then dropped, never deleted row by row).

The idempotency key becomes ``(source, sample_id, period)``: PostgreSQL can only enforce a key
on a partitioned table when it holds the partition column. A sample's month follows from what
it says (its agent and time), so a sample sent again lands in the same month and is refused
there; only an id re-used for an observation of another month would be stored twice.

``metric_partition`` lists the months that have a partition (``live``), are being archived
(``archiving``: ingestion refuses them, so nothing arrives while the month is exported) or were
archived (``archived``: file, checksum and row count). Ingestion refuses, and keeps in the
quarantine, a sample of a month that is not live; ``metric_make_partition(period)`` makes one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


UPGRADE = [
    """
        CREATE TABLE metric_partition (
            period      text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
            state       text NOT NULL DEFAULT 'live'
                        CHECK (state IN ('live', 'archiving', 'archived')),
            created_at  timestamptz NOT NULL DEFAULT now(),
            archived_at timestamptz,
            file        text,
            sha256      text,
            samples     bigint
        )
    """,
    "ALTER TABLE metric_sample RENAME TO metric_sample_unpartitioned",
    "DROP TRIGGER metric_sample_append_only ON metric_sample_unpartitioned",
    """
        CREATE TABLE metric_sample (
            source      text NOT NULL,
            sample_id   text NOT NULL,
            agent_id    text NOT NULL,
            team_id     text NOT NULL,
            period      text NOT NULL,
            metric      text NOT NULL,
            value       double precision NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            PRIMARY KEY (source, sample_id, period)
        ) PARTITION BY RANGE (period)
    """,
    """
        CREATE TRIGGER metric_sample_append_only BEFORE UPDATE OR DELETE ON metric_sample
            FOR EACH ROW EXECUTE FUNCTION metric_sample_is_append_only()
    """,
    # Makes a month's partition (idempotent) and lists it; the caller decides which months.
    """
        CREATE FUNCTION metric_make_partition(month text) RETURNS boolean
        LANGUAGE plpgsql AS $$
        DECLARE
            next_month text := to_char(to_date(month, 'YYYY-MM') + interval '1 month',
                                       'YYYY-MM');
            name text := 'metric_sample_' || replace(month, '-', '_');
        BEGIN
            IF month !~ '^[0-9]{4}-[0-9]{2}$' THEN
                RAISE EXCEPTION 'not a month: %', month;
            END IF;
            IF EXISTS (SELECT 1 FROM metric_partition WHERE period = month) THEN
                RETURN false;
            END IF;
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF metric_sample'
                           ' FOR VALUES FROM (%L) TO (%L)', name, month, next_month);
            INSERT INTO metric_partition (period) VALUES (month) ON CONFLICT DO NOTHING;
            RETURN true;
        END $$
    """,
    "SELECT metric_make_partition(p) FROM (SELECT DISTINCT period AS p"
    " FROM metric_sample_unpartitioned) m",
    """
        INSERT INTO metric_sample
        SELECT source, sample_id, agent_id, team_id, period, metric, value, occurred_at,
               received_at
        FROM metric_sample_unpartitioned
    """,
    "DROP TABLE metric_sample_unpartitioned",
    "DROP TYPE IF EXISTS metric_sample_row",
]

DOWNGRADE = [
    "ALTER TABLE metric_sample RENAME TO metric_sample_partitioned",
    """
        CREATE TABLE metric_sample (
            id          bigint GENERATED ALWAYS AS IDENTITY,
            source      text NOT NULL,
            sample_id   text NOT NULL,
            agent_id    text NOT NULL,
            team_id     text NOT NULL,
            period      text NOT NULL,
            metric      text NOT NULL,
            value       double precision NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            PRIMARY KEY (source, sample_id)
        )
    """,
    """
        INSERT INTO metric_sample (source, sample_id, agent_id, team_id, period, metric, value,
                                   occurred_at, received_at)
        SELECT DISTINCT ON (source, sample_id) source, sample_id, agent_id, team_id, period,
               metric, value, occurred_at, received_at
        FROM metric_sample_partitioned ORDER BY source, sample_id, received_at
    """,
    "DROP TABLE metric_sample_partitioned",
    """
        CREATE TRIGGER metric_sample_append_only BEFORE UPDATE OR DELETE ON metric_sample
            FOR EACH ROW EXECUTE FUNCTION metric_sample_is_append_only()
    """,
    "DROP FUNCTION metric_make_partition(text)",
    "DROP TABLE metric_partition",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
