"""Samples, expected totals and read-model waits for the live-metrics tests."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from service.domain import metrics as m
from service.store.database import Database
from tests.support.kpis import COUNT_METRICS, METRICS


def random_value(rng: random.Random, metric: str) -> float:
    """Return a plausible value: whole counts, cents, tenths of a second."""
    if metric in COUNT_METRICS:
        return float(rng.randint(0, 5))
    if metric == "order_amount":
        return rng.randint(0, 100_000) / 100
    return rng.randint(5, 3000) / 10


def make_samples(
    uid: str, agents: Sequence[str], n: int, start: datetime, span: timedelta, seed: int = 1
) -> list[m.Sample]:
    """Return n samples with unique ids spread over agents, metrics and a stretch of time."""
    rng = random.Random(seed)
    seconds = int(span.total_seconds())
    out = []
    for i in range(n):
        metric = rng.choice(METRICS)
        out.append(m.Sample(
            id=f"{uid}-{i}", agent_id=rng.choice(agents), metric=metric,
            value=random_value(rng, metric),
            occurred_at=start + timedelta(seconds=rng.randrange(seconds)),
        ))
    return out


def expected_totals(samples: Sequence[m.Sample]) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """Return the exact (total, observations) per (agent, metric) of each sample counted once."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for s in {s["id"]: s for s in samples}.values():
        sums[(s["agent_id"], s["metric"])] += Decimal(repr(s["value"]))
        counts[(s["agent_id"], s["metric"])] += 1
    return {k: (sums[k], counts[k]) for k in sums}


async def stored_totals(
    db: Database, team_id: str, period: str
) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """Return the live totals (total, observations) per (agent, metric) of a team month."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT agent_id, metric, total, observations FROM metric_totals"
            " WHERE team_id = $1 AND period = $2", team_id, period)
    return {(r["agent_id"], r["metric"]): (r["total"], r["observations"]) for r in rows}


def as_json(s: m.Sample) -> dict[str, Any]:
    """Return a sample as POST /v1/metrics takes it."""
    return {**s, "occurred_at": s["occurred_at"].isoformat()}


async def wait_for(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                   done: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Poll a GET until done(body) holds; return the body (the last one on timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body) or loop.time() > deadline:
            return body
        await asyncio.sleep(0.02)
