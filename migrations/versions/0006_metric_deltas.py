"""Live metrics fresh at commit: known metrics as data, KPI totals as appended deltas.

Ingestion (service/store/metrics.py) now appends each batch's totals as per-(agent, team,
month, metric) delta rows in the statement that stores the samples, so a read that follows the
200 includes the batch; a background compactor (service/projections/metric_totals.py) folds the
deltas into ``metric_total``. Readers keep reading ``metric_totals`` and ``metric_arrivals``,
now views that add the pending deltas to the compacted rows. The projection that used to build
those names from ``metric_sample`` is retired: its tables are dropped and the totals rebuilt
here from the samples, exactly (numeric sums of each value rounded to 15 digits, as before).

``metric_known`` lists the metrics a sample may name (and which of them count whole
occurrences); ingestion joins it, so a later issue can fill it from the schemes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = [
    """
        CREATE TABLE metric_known (
            metric text PRIMARY KEY,
            whole  boolean NOT NULL  -- a count: fractional values are refused
        )
    """,
    """
        INSERT INTO metric_known VALUES
            ('consultations', true), ('conversions', true), ('response_time_seconds', false),
            ('lost_customers', true), ('orders', true), ('order_amount', false),
            ('valid_orders', true), ('paid_orders', true), ('refunded_orders', true),
            ('paying_customers', true)
    """,
    # The retired projection's views (and the reporting views over them), tables, checkpoints.
    "DROP VIEW IF EXISTS metric_totals CASCADE",
    "DROP VIEW IF EXISTS metric_arrivals CASCADE",
    """
        DO $$
        DECLARE t record;
        BEGIN
            FOR t IN SELECT c.relname FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind = 'r'
                       AND (c.relname LIKE 'metric\\_totals\\_\\_g%'
                            OR c.relname LIKE 'metric\\_arrivals\\_\\_g%')
            LOOP
                EXECUTE format('DROP TABLE %I', t.relname);
            END LOOP;
        END $$
    """,
    "DELETE FROM projection_checkpoint WHERE name = 'metric_totals'",
    # A dropped reporting view is made again at the next start.
    "DELETE FROM reporting_view_state r"
    " WHERE to_regclass('reporting.' || quote_ident(r.name)) IS NULL",
    """
        CREATE TABLE metric_total (
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            metric       text NOT NULL,
            total        numeric NOT NULL,
            observations bigint NOT NULL,
            updated_at   timestamptz NOT NULL,
            PRIMARY KEY (team_id, period, agent_id, metric)
        )
    """,
    "CREATE INDEX metric_total_agent ON metric_total (agent_id, period)",
    """
        CREATE TABLE metric_total_delta (
            team_id      text NOT NULL,
            period       text NOT NULL,
            agent_id     text NOT NULL,
            metric       text NOT NULL,
            total        numeric NOT NULL,
            observations bigint NOT NULL,
            updated_at   timestamptz NOT NULL
        )
    """,
    # Deltas live about a second (the compactor folds them), so one index, for the agent read
    # that follows each batch; a team read scans the few pending rows.
    "CREATE INDEX metric_total_delta_agent ON metric_total_delta (agent_id, period)",
    """
        CREATE TABLE metric_arrival (
            team_id          text NOT NULL,
            metric           text NOT NULL,
            source           text NOT NULL,
            last_received_at timestamptz NOT NULL,
            last_occurred_at timestamptz NOT NULL,
            samples          bigint NOT NULL,
            PRIMARY KEY (team_id, metric, source)
        )
    """,
    """
        CREATE TABLE metric_arrival_delta (
            team_id          text NOT NULL,
            metric           text NOT NULL,
            source           text NOT NULL,
            last_received_at timestamptz NOT NULL,
            last_occurred_at timestamptz NOT NULL,
            samples          bigint NOT NULL
        )
    """,
    """
        INSERT INTO metric_total
        SELECT team_id, period, agent_id, metric, sum(value::numeric), count(*),
               max(received_at)
        FROM metric_sample GROUP BY team_id, period, agent_id, metric
    """,
    """
        INSERT INTO metric_arrival
        SELECT team_id, metric, source, max(received_at), max(occurred_at), count(*)
        FROM metric_sample GROUP BY team_id, metric, source
    """,
    # What every reader reads: the compacted rows plus the deltas not folded in yet, in one
    # snapshot (a compaction moves rows from one side to the other in one transaction).
    """
        CREATE VIEW metric_totals AS
        SELECT agent_id, team_id, period, metric, sum(total) AS total,
               sum(observations)::bigint AS observations, max(updated_at) AS updated_at
        FROM (SELECT agent_id, team_id, period, metric, total, observations, updated_at
              FROM metric_total
              UNION ALL
              SELECT agent_id, team_id, period, metric, total, observations, updated_at
              FROM metric_total_delta) AS t
        GROUP BY agent_id, team_id, period, metric
    """,
    """
        CREATE VIEW metric_arrivals AS
        SELECT team_id, metric, source, max(last_received_at) AS last_received_at,
               max(last_occurred_at) AS last_occurred_at, sum(samples)::bigint AS samples
        FROM (SELECT team_id, metric, source, last_received_at, last_occurred_at, samples
              FROM metric_arrival
              UNION ALL
              SELECT team_id, metric, source, last_received_at, last_occurred_at, samples
              FROM metric_arrival_delta) AS a
        GROUP BY team_id, metric, source
    """,
    # The aggregator's reading order is no longer needed: nothing follows the sample table.
    "DROP INDEX metric_sample_order",
    "ALTER TABLE metric_sample DROP COLUMN tx_id",
]

DOWNGRADE = [
    "DROP VIEW metric_arrivals CASCADE",
    "DROP VIEW metric_totals CASCADE",
    "DELETE FROM reporting_view_state r"
    " WHERE to_regclass('reporting.' || quote_ident(r.name)) IS NULL",
    "DROP TABLE metric_arrival_delta",
    "DROP TABLE metric_arrival",
    "DROP TABLE metric_total_delta",
    "DROP TABLE metric_total",
    "DROP TABLE metric_known",
    "ALTER TABLE metric_sample ADD COLUMN tx_id bigint NOT NULL DEFAULT 0",
    "CREATE INDEX metric_sample_order ON metric_sample (tx_id, id)",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
