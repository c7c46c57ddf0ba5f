"""The team and month of a quarantined sample, so that late data is seen where it belongs.

A sample that arrives for a closed month is kept in ``metric_quarantine`` (reason
``period_closed``). Its team and month are known at ingestion (the agent's team when the
sample occurred, the month in that team's time zone); recording them lets the cycle's
monitoring count the month's late samples and lets a team's managers read their own teams'
quarantine. Entries whose agent is unknown have neither. Existing ``period_closed`` entries get
them from their detail ("the cycle {team}/{period} is ..."; ids never contain '/').

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


UPGRADE = [
    "ALTER TABLE metric_quarantine ADD COLUMN team_id text, ADD COLUMN period text",
    r"""
        UPDATE metric_quarantine
        SET team_id = substring(detail from '^the cycle ([^/]+)/\d{4}-\d{2} is '),
            period = substring(detail from '^the cycle [^/]+/(\d{4}-\d{2}) is ')
        WHERE reason = 'period_closed'
    """,
    "CREATE INDEX metric_quarantine_cycle ON metric_quarantine (team_id, period,"
    " first_received_at) WHERE team_id IS NOT NULL",
]

DOWNGRADE = [
    "DROP INDEX metric_quarantine_cycle",
    "ALTER TABLE metric_quarantine DROP COLUMN period, DROP COLUMN team_id",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
