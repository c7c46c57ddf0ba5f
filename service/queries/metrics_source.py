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

from service.projections.metric_totals import caught_up

#: The longest a scoring read waits for the KPI read model to take in recent samples.
CATCH_UP_SECONDS = 3.0


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
    for row in rows:
        totals[row["agent_id"]][row["metric"]] = float(row["total"])
        observations[row["agent_id"]][row["metric"]] = int(row["observations"])
    return {a: (totals[a], observations[a]) for a in agent_ids}
