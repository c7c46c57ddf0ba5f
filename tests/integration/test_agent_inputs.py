"""A close's read of its agents' totals (service/queries/metrics_source.py): each metric's
compacted rows and pending deltas, over every team of the month, summed exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from service.queries.metrics_source import agent_inputs
from service.store.database import Database


async def test_a_metric_in_several_rows_is_summed_exactly_and_one_row_is_read_as_is(
    db: Database, uid: str
) -> None:
    # Given agent a's orders in two teams (a move), b's orders compacted and pending, d's
    # metrics in one row each, c without samples, and b's orders of another month
    a, b, c, d = (f"ai-{uid}-{x}" for x in "abcd")
    one, two = f"ai-{uid}-t1", f"ai-{uid}-t2"
    now = datetime(2026, 11, 20, tzinfo=UTC)
    rows = [(one, "2026-11", a, "orders", Decimal("0.1"), 1, now),
            (two, "2026-11", a, "orders", Decimal("0.2"), 2, now),
            (one, "2026-11", a, "calls", Decimal("3"), 1, now),
            (one, "2026-11", b, "orders", Decimal("0.1"), 4, now),
            (one, "2026-10", b, "orders", Decimal("5"), 1, now),
            (one, "2026-11", d, "orders", Decimal("0.25"), 2, now),
            (one, "2026-11", d, "calls", Decimal("0.1"), 1, now)]
    pending = [(one, "2026-11", b, "orders", Decimal("0.2"), 1, now),
               (one, "2026-11", b, "calls", Decimal("0.7"), 1, now)]
    async with db.connection() as conn:
        await conn.executemany("INSERT INTO metric_total VALUES ($1, $2, $3, $4, $5, $6, $7)",
                               rows)
        await conn.executemany(
            "INSERT INTO metric_total_delta VALUES ($1, $2, $3, $4, $5, $6, $7)", pending)
        # When a close reads the month's totals
        found = await agent_inputs(conn, "2026-11", [a, b, c, d])
    # Then each metric is the exact sum of its rows made a float once (0.1 + 0.2 is 0.3, not
    # the 0.30000000000000004 of floats summed), and a metric in one row is its total
    assert found == {
        a: ({"orders": 0.3, "calls": 3.0}, {"orders": 3, "calls": 1}),
        b: ({"orders": 0.3, "calls": 0.7}, {"orders": 5, "calls": 1}),
        c: ({}, {}),
        d: ({"orders": 0.25, "calls": 0.1}, {"orders": 2, "calls": 1}),
    }
