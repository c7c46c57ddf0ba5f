"""Room on the compacted totals' pages for their next version (fillfactor 50).

The compactor (service/projections/metric_totals.py) updates every (team, month, agent,
metric) row that took samples since its last pass, about once a second. On full pages each new
version went to another page, so every update also added an entry to both of the table's
indexes; with half of each page left free the new version stays on its page (a heap-only
update, no index entry) and the old one is pruned there at the next pass. Measured during the
ingestion benchmark, this was most of the compactor's CPU (a third of ingestion's own cost per
sample). New pages take the setting; a table rewrite (VACUUM FULL) gives it to the old ones.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE metric_total SET (fillfactor = 50)")
    op.execute("ALTER TABLE metric_arrival SET (fillfactor = 50)")


def downgrade() -> None:
    op.execute("ALTER TABLE metric_arrival RESET (fillfactor)")
    op.execute("ALTER TABLE metric_total RESET (fillfactor)")
