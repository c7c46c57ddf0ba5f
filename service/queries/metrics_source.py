"""KPI inputs for scoring, read from the metrics read model.

Contract with live metrics (service/projections/metric_totals.py): a view ``metric_totals``
with one row per (agent_id, team_id, period, metric) holding ``total`` and ``observations``.

A close freezes these numbers. They are fresh at commit: ingestion appends the totals in the
statement that stores the samples, so a close reads every sample committed before it asked
(and none is accepted into the month once the close has committed: service/store/metrics.py,
"Late samples").
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg


async def agent_inputs(
    conn: asyncpg.Connection, period: str, agent_ids: Sequence[str]
) -> dict[str, tuple[dict[str, float], dict[str, int]]]:
    """Return each agent's raw totals and observation counts per metric for a period, over
    all their teams (the scheme's formulas turn them into KPIs).

    An agent who moved mid-month keeps every sample of the month on their scorecard.
    """
    totals: dict[str, dict[str, float]] = {a: {} for a in agent_ids}
    observations: dict[str, dict[str, int]] = {a: {} for a in agent_ids}
    if not await conn.fetchval("SELECT to_regclass('metric_totals') IS NOT NULL"):
        return {a: (totals[a], observations[a]) for a in agent_ids}
    rows = await conn.fetch(
        """
        SELECT agent_id, metric, sum(total) AS total, sum(observations) AS observations
        FROM metric_totals WHERE period = $1 AND agent_id = ANY($2::text[])
        GROUP BY agent_id, metric
        """,
        period,
        list(agent_ids),
    )
    for row in rows:
        totals[row["agent_id"]][row["metric"]] = float(row["total"])
        observations[row["agent_id"]][row["metric"]] = int(row["observations"])
    return {a: (totals[a], observations[a]) for a in agent_ids}
