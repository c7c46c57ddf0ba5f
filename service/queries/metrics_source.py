"""KPI inputs for scoring, read from the metrics read model.

Contract with the live-metrics projection (service/projections/metric_totals.py): a view
``metric_totals`` with one row per (agent_id, team_id, period, metric) holding ``total`` and
``observations``. Before that projection has ever run every measured KPI has no data.

A close freezes these numbers, so they are read only once the read model holds every sample
committed before the close asked (bounded wait: a stalled read model delays a close, it does
not block it).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.domain.kpis import compute_kpis
from service.projections.metric_totals import caught_up

AVERAGED = "response_time_seconds"
#: The longest a scoring read waits for the KPI read model to take in recent samples.
CATCH_UP_SECONDS = 3.0


async def agent_inputs(
    conn: asyncpg.Connection, period: str, agent_ids: Sequence[str]
) -> dict[str, tuple[dict[str, float], dict[str, float | None]]]:
    """Return each agent's raw totals and KPI values for a period, over all their teams.

    An agent who moved mid-month keeps every sample of the month on their scorecard.
    """
    if not await conn.fetchval("SELECT to_regclass('metric_totals') IS NOT NULL"):
        return {a: ({}, compute_kpis({}, 0)) for a in agent_ids}
    await caught_up(conn, timeout=CATCH_UP_SECONDS)
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
