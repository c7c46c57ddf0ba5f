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

from service.domain.kpis import compute_kpis

AVERAGED = "response_time_seconds"


async def agent_inputs(
    conn: asyncpg.Connection, period: str, agent_ids: Sequence[str]
) -> dict[str, tuple[dict[str, float], dict[str, float | None]]]:
    """Return each agent's raw totals and KPI values for a period, over all their teams.

    An agent who moved mid-month keeps every sample of the month on their scorecard.
    """
    if not await conn.fetchval("SELECT to_regclass('metric_totals') IS NOT NULL"):
        return {a: ({}, compute_kpis({}, 0)) for a in agent_ids}
    rows = await conn.fetch(
        """
        SELECT agent_id, metric, sum(total) AS total, sum(observations) AS observations
        FROM metric_totals WHERE period = $1 AND agent_id = ANY($2::text[])
        GROUP BY agent_id, metric
        """,
        period,
        list(agent_ids),
    )
    totals: dict[str, dict[str, float]] = {a: {} for a in agent_ids}
    responses: dict[str, int] = dict.fromkeys(agent_ids, 0)
    for row in rows:
        totals[row["agent_id"]][row["metric"]] = float(row["total"])
        if row["metric"] == AVERAGED:
            responses[row["agent_id"]] = int(row["observations"])
    return {a: (totals[a], compute_kpis(totals[a], responses[a])) for a in agent_ids}
