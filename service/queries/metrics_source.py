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

#: Each agent's rows as three arrays in the same order: metrics, totals (float8: asyncpg would
#: build a Decimal of each numeric, only for it to become a float) and observations. A metric
#: in more than one row (samples not compacted yet, or counted in two teams) is summed by
#: _SUMMED instead.
_ROWS = f"""
    SELECT agent_id, array_agg(metric) AS metrics, array_agg(total::float8) AS totals,
           array_agg(observations) AS observations
    FROM ({_CURRENT}) AS t
    GROUP BY agent_id
"""  # noqa: S608

#: The agents' totals summed exactly (numeric), then made floats: the same double as one
#: row's total for a metric in one row (both conversions round correctly).
_SUMMED = f"""
    SELECT agent_id, metric, sum(total)::float8 AS total,
           sum(observations)::bigint AS observations
    FROM ({_CURRENT}) AS t
    GROUP BY agent_id, metric
"""  # noqa: S608


async def agent_inputs(
    conn: asyncpg.Connection, period: str, agent_ids: Sequence[str]
) -> dict[str, tuple[dict[str, float], dict[str, int]]]:
    """Return each agent's raw totals and observation counts per metric for a period, over
    all their teams (the scheme's formulas turn them into KPIs).

    An agent who moved mid-month keeps every sample of the month on their scorecard.
    """
    totals: dict[str, dict[str, float]] = {a: {} for a in agent_ids}
    observations: dict[str, dict[str, int]] = {a: {} for a in agent_ids}
    # A close reads every agent's totals (40,000 for 1,000 agents on 40 metrics): summed in
    # PostgreSQL by agent and metric, the numeric sums' aggregation took 100-150 ms of its
    # CPU and a row each 100 ms of the service's; as one row of arrays per agent, 70-80 ms
    # and 30 ms. Most metrics are in one row (compacted, one team): only the agents with a
    # metric in several rows are summed.
    again = []
    for agent_id, metrics, sums, counts in await conn.fetch(_ROWS, period, list(agent_ids)):
        found = dict(zip(metrics, sums, strict=True))
        if len(found) < len(metrics):
            again.append(agent_id)
            continue
        totals[agent_id] = found
        observations[agent_id] = dict(zip(metrics, counts, strict=True))
    if again:
        for agent_id, metric, total, count in await conn.fetch(_SUMMED, period, again):
            totals[agent_id][metric] = total
            observations[agent_id][metric] = count
    return {a: (totals[a], observations[a]) for a in agent_ids}
