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
    rows = await conn.fetch(
        """
        -- float8 and bigint here: asyncpg would build a Decimal of each numeric sum (40,000
        -- for 1,000 agents on 40 metrics), only for it to become a float (the same double:
        -- both conversions round correctly).
        -- The compacted rows and the deltas not folded in yet (what the view metric_totals
        -- reads), summed once: through the view, every team's total was summed, and then
        -- the teams (half the time of a close's read of 40,000 totals).
        SELECT agent_id, metric, sum(total)::float8 AS total,
               sum(observations)::bigint AS observations
        FROM (SELECT agent_id, metric, total, observations FROM metric_total
              WHERE period = $1 AND agent_id = ANY($2::text[])
              UNION ALL
              SELECT agent_id, metric, total, observations FROM metric_total_delta
              WHERE period = $1 AND agent_id = ANY($2::text[])) AS t
        GROUP BY agent_id, metric
        """,
        period,
        list(agent_ids),
    )
    for agent_id, metric, total, count in rows:
        totals[agent_id][metric] = total
        observations[agent_id][metric] = count
    return {a: (totals[a], observations[a]) for a in agent_ids}
