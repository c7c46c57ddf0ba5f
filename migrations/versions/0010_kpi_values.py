"""The live KPI read model (issue 19): every KPI of every scheme, in long form.

``kpi_values`` holds, per agent and month (over every team the agent's samples counted for)
and per team and month, each KPI's value, effective target and floor, and attainment, as
``service/domain/live_kpis.py`` computes them from the metric totals so far; the refresher in
``service/projections/kpi_values.py`` keeps it current a second or so behind ingestion. A KPI a
scheme adds is a new row, never a new column: the reporting views read it without a migration.

``kpi_dirty`` lists the (team, agent, month) keys whose totals changed since: the compactor
adds the keys of the deltas it folds, in its folding statement (so ingestion pays nothing), and
the refresher takes them out. An append-only list without a key, so that no two writers ever
wait on each other; a key listed twice is recomputed once. Every key already counted is listed
here, so an existing installation computes its history once.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE kpi_values (
            -- '' : the team as a whole (team rows); an agent's rows name the team whose
            -- scheme, position and targets judged them (their team at the computation)
            agent_id      text NOT NULL,
            team_id       text NOT NULL,
            period        text NOT NULL,
            kpi           text NOT NULL,
            value         double precision,
            target        double precision,
            floor         double precision,
            attainment    double precision,
            target_source text NOT NULL,
            unit          text NOT NULL,
            direction     text NOT NULL,
            label         text NOT NULL,
            formula       text NOT NULL,
            samples       bigint NOT NULL,
            updated_at    timestamptz,
            PRIMARY KEY (agent_id, period, team_id, kpi)
        )
        """
    )
    op.execute("CREATE INDEX kpi_values_team ON kpi_values (team_id, period)")
    op.execute("CREATE TABLE kpi_dirty (team_id text NOT NULL, agent_id text NOT NULL,"
               " period text NOT NULL)")
    op.execute("INSERT INTO kpi_dirty SELECT DISTINCT team_id, agent_id, period"
               " FROM metric_total")


def downgrade() -> None:
    op.execute("DROP TABLE kpi_dirty")
    op.execute("DROP TABLE kpi_values")
