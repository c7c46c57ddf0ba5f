"""The live KPI read model (issue 19): every KPI of every scheme, in long form.

``kpi_values`` holds, per agent and month (over every team the agent's samples counted for)
and per team and month, each KPI's value, effective target and floor, and attainment, as
``service/domain/live_kpis.py`` computes them from the metric totals so far; the refresher in
``service/projections/kpi_values.py`` keeps it current a second or so behind ingestion. A KPI a
scheme adds is a new row, never a new column: the reporting views read it without a migration.

``kpi_value_source`` remembers how many samples each (team, agent, month) had when its KPIs
were computed, so a pass recomputes only what changed; ``metric_total (updated_at)`` lets it
find the recently counted rows without scanning every month.

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
    op.execute(
        """
        CREATE TABLE kpi_value_source (
            team_id  text NOT NULL,
            agent_id text NOT NULL,
            period   text NOT NULL,
            samples  bigint NOT NULL,
            PRIMARY KEY (team_id, agent_id, period)
        )
        """
    )
    op.execute("CREATE TABLE kpi_value_state (id integer PRIMARY KEY CHECK (id = 1),"
               " watermark timestamptz)")
    op.execute("INSERT INTO kpi_value_state VALUES (1, NULL)")
    op.execute("CREATE INDEX metric_total_updated ON metric_total (updated_at)")


def downgrade() -> None:
    op.execute("DROP INDEX metric_total_updated")
    op.execute("DROP TABLE kpi_value_state")
    op.execute("DROP TABLE kpi_value_source")
    op.execute("DROP TABLE kpi_values")
