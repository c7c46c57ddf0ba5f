"""Live KPI totals: deltas appended at ingestion plus compaction at any moment equal a rebuild
from the samples table, whatever the batches, duplicates and folding order."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.team_metrics import Declared
from service.projections.metric_totals import compact, compact_pass
from service.store import metrics as store
from service.store.database import _init_connection, asyncpg_dsn

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
_runs = itertools.count()
DECLARED = {"order_amount": "currency", "response_time_seconds": "seconds"}

# A sample: (id number, agent, team, period, metric, value); ids repeat across and within
# batches (resent samples), values are doubles with awkward digits.
samples = st.tuples(
    st.integers(0, 40), st.sampled_from(["a", "b", "c"]), st.sampled_from(["t1", "t2"]),
    st.sampled_from(["2026-10", "2026-11"]),
    st.sampled_from(["order_amount", "response_time_seconds"]),
    st.floats(0, 1e9, allow_nan=False) | st.sampled_from([0.1, 0.2, 0.3, 1e-7, 123456.789]),
)
# Each step: a batch, then a compaction of that many delta rows (0: none).
steps = st.lists(st.tuples(st.lists(samples, max_size=12), st.integers(0, 5)), max_size=8)

_TOTALS = """
SELECT agent_id, team_id, period, metric, total, observations FROM metric_totals
WHERE agent_id LIKE $1 ORDER BY 1, 2, 3, 4
"""
_FROM_SAMPLES = """
SELECT agent_id, team_id, period, metric, sum(value::numeric) AS total, count(*) AS observations
FROM metric_sample WHERE agent_id LIKE $1
GROUP BY agent_id, team_id, period, metric ORDER BY 1, 2, 3, 4
"""


async def _run(url: str, plan: list[tuple[list[tuple[int, str, str, str, str, float]], int]]
               ) -> None:
    prefix = f"prop{next(_runs)}x{datetime.now(UTC).timestamp():.0f}"
    conn = await asyncpg.connect(asyncpg_dsn(url))
    await _init_connection(conn)
    try:
        for batch, fold in plan:
            async with conn.transaction():
                # A sample's id fixes its content (resent samples are the same observation).
                first: dict[int, tuple[int, str, str, str, str, float]] = {}
                for s in batch:
                    first.setdefault(s[0], s)
                rows = list(first.values())
                staged = [(i, prefix, f"{prefix}-{s[0]}", f"{prefix}{s[1]}", s[4], s[5],
                           (NOW - timedelta(hours=1)).timestamp()) for i, s in enumerate(rows)]
                if staged:
                    await store.stage(conn, staged)
                    await store.place_as(conn, [(i, f"{prefix}{s[2]}", s[3])
                                                for i, s in enumerate(rows)])
                    # Both teams' schemes declare both metrics for both months.
                    accepts = {(f"{prefix}{team}", period): {
                        metric: Declared(unit, "sum") for metric, unit in DECLARED.items()}
                        for team in ("t1", "t2") for period in ("2026-10", "2026-11")}
                    judged = await store.settle(conn, NOW, None, accepts)
                    assert not judged.rejected
            if fold:
                await compact(conn, rows=fold)
        like = f"{prefix}%"
        expected = [tuple(r) for r in await conn.fetch(_FROM_SAMPLES, like)]
        assert [tuple(r) for r in await conn.fetch(_TOTALS, like)] == expected
        await compact_pass(conn)
        assert [tuple(r) for r in await conn.fetch(_TOTALS, like)] == expected
    finally:
        await conn.close()


@settings(deadline=None, max_examples=25,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_deltas_and_compaction_equal_a_rebuild_from_the_samples(
    database_url: str, app_client: httpx.AsyncClient,
    plan: list[tuple[list[tuple[int, str, str, str, str, float]], int]],
) -> None:
    # app_client: the storing statement names the directory read model's tables, which the
    # service's projections make as it starts; run alone, nothing else would have made them.
    asyncio.run(_run(database_url, plan))
