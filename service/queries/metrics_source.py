"""KPI inputs for scoring, read from the metrics read model.

Contract with live metrics (service/projections/metric_totals.py): the totals as they stand
(``current_rows``: the compacted rows and the pending deltas, which the view ``metric_totals``
sums per agent, team, period and metric) hold ``total`` and ``observations``.

A close freezes these numbers. They are fresh at commit: ingestion appends the totals in the
statement that stores the samples, so a close reads every sample committed before it asked
(and none is accepted into the month once the close has committed: service/store/metrics.py,
"Late samples").
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from service.projections.metric_totals import current_rows

#: An agent's rows of a month ($1), of the agents $2: each side of the union on its own index.
_CURRENT = current_rows("agent_id, metric, total, observations",
                        "period = $1 AND agent_id = ANY($2::text[])")


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
        f"""
        -- float8 and bigint here: asyncpg would build a Decimal of each numeric sum (40,000
        -- for 1,000 agents on 40 metrics), only for it to become a float (the same double:
        -- both conversions round correctly).
        -- The compacted rows and the deltas not folded in yet (what the view metric_totals
        -- reads), summed once: through the view, every team's total was summed, and then
        -- the teams (half the time of a close's read of 40,000 totals).
        SELECT agent_id, metric, sum(total)::float8 AS total,
               sum(observations)::bigint AS observations
        FROM ({_CURRENT}) AS t
        GROUP BY agent_id, metric
        """,  # noqa: S608
        period,
        list(agent_ids),
    )
    for agent_id, metric, total, count in rows:
        totals[agent_id][metric] = total
        observations[agent_id][metric] = count
    return {a: (totals[a], observations[a]) for a in agent_ids}
