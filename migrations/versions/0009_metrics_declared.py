"""Metrics declared in the schemes (issue 19): the fixed list of known metrics goes.

Which metrics a sample may carry is now what its team's scheme declares for the sample's month
(the ``team_metrics`` read model, service/store/team_metrics.py); ingestion gives those
declarations to the statement that judges and stores a batch (service/store/metrics.py). The
``metric_known`` table of migration 0006, the ten built-in metrics, is no longer read.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE metric_known")


def downgrade() -> None:
    op.execute(
        """
        CREATE TABLE metric_known (
            metric text PRIMARY KEY,
            whole  boolean NOT NULL  -- a count: fractional values are refused
        )
        """
    )
    op.execute(
        """
        INSERT INTO metric_known VALUES
            ('consultations', true), ('conversions', true), ('response_time_seconds', false),
            ('lost_customers', true), ('orders', true), ('order_amount', false),
            ('valid_orders', true), ('paid_orders', true), ('refunded_orders', true),
            ('paying_customers', true)
        """
    )
