"""The peer of issue 20: the ingestion endpoint a careful engineer would write in an afternoon.

A baseline for bench/ingest.py, measured in the same run as csperf: orjson decodes the body, a
Python loop checks each sample's shape, ``copy_records_to_table`` loads the batch into a
per-connection temporary staging table (``ON COMMIT DELETE ROWS``), and one statement does the
rest: it places each sample through the directory (its team, and its month in the team's time
zone), inserts with ``ON CONFLICT DO NOTHING RETURNING``, copies unknown agents to a quarantine
and appends the batch's totals as per-(agent, month, metric) delta rows, so KPI totals include
the batch when the 200 goes out; ``GET /v1/agents/{id}/kpis?period=`` sums an agent's month
from them (the dashboard poll the benchmark sends to both services). It has none of csperf's
closed-period rule, membership history, feed tracking, authentication or problem documents.

    python -m bench.peer --url postgresql://... --port 8201
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse, Response

SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_team (team_id text PRIMARY KEY, tz text NOT NULL);
CREATE TABLE IF NOT EXISTS peer_agent (agent_id text PRIMARY KEY, team_id text NOT NULL);
CREATE TABLE IF NOT EXISTS peer_sample (
    source text, sample_id text, agent_id text NOT NULL, team_id text NOT NULL,
    period text NOT NULL, metric text NOT NULL, value float8 NOT NULL,
    occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL,
    PRIMARY KEY (source, sample_id));
CREATE TABLE IF NOT EXISTS peer_quarantine (
    source text, sample_id text, agent_id text, metric text, value float8,
    occurred_at timestamptz, reason text, PRIMARY KEY (source, sample_id));
CREATE TABLE IF NOT EXISTS peer_total_delta (
    agent_id text NOT NULL, period text NOT NULL, metric text NOT NULL,
    total numeric NOT NULL, n bigint NOT NULL);
CREATE INDEX IF NOT EXISTS peer_total_delta_agent ON peer_total_delta (agent_id, period);
"""

STAGE = """
CREATE TEMP TABLE peer_stage (
    idx int, sample_id text, agent_id text, metric text, value float8,
    occurred_at timestamptz) ON COMMIT DELETE ROWS
"""

INGEST = """
WITH placed AS (
    SELECT s.*, a.team_id, to_char(s.occurred_at AT TIME ZONE t.tz, 'YYYY-MM') AS period
    FROM peer_stage s
    LEFT JOIN peer_agent a ON a.agent_id = s.agent_id
    LEFT JOIN peer_team t ON t.team_id = a.team_id
), stored AS (
    INSERT INTO peer_sample
    SELECT $1, sample_id, agent_id, team_id, period, metric, value, occurred_at, $2
    FROM placed WHERE team_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING agent_id, period, metric, value
), totals AS (
    INSERT INTO peer_total_delta
    SELECT agent_id, period, metric, sum(value::numeric), count(*) FROM stored
    GROUP BY agent_id, period, metric
), kept AS (
    INSERT INTO peer_quarantine
    SELECT $1, sample_id, agent_id, metric, value, occurred_at, 'unknown_agent'
    FROM placed WHERE team_id IS NULL
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM stored) AS accepted,
       coalesce((SELECT array_agg(idx ORDER BY idx) FROM placed WHERE team_id IS NULL),
                '{}') AS unknown
"""

KPIS = """
SELECT metric, sum(total)::float8 AS total, sum(n)::bigint AS n FROM peer_total_delta
WHERE agent_id = $1 AND period = $2 GROUP BY metric
"""

FIELDS = ("id", "agent_id", "metric", "value", "occurred_at")


async def _setup(conn: asyncpg.Connection) -> None:
    await conn.execute(STAGE)


def make_app(url: str) -> FastAPI:
    """Return the peer's app: one POST /v1/metrics against the database at url."""
    state: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with asyncpg.create_pool(url, min_size=2, max_size=10, init=_setup) as pool:
            async with pool.acquire() as conn:
                await conn.execute(SCHEMA)
            state["pool"] = pool
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/metrics")
    async def ingest(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            source, samples = body["source"], body["samples"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return ORJSONResponse({"detail": "not a batch"}, status_code=422)
        if not isinstance(source, str) or not isinstance(samples, list) or len(samples) > 10_000:
            return ORJSONResponse({"detail": "not a batch"}, status_code=422)
        records: list[tuple[Any, ...]] = []
        rejected: list[dict[str, Any]] = []
        seen: set[str] = set()
        duplicates = 0
        for i, s in enumerate(samples):
            try:
                sid, agent, metric, value = s["id"], s["agent_id"], s["metric"], s["value"]
                at = datetime.fromisoformat(s["occurred_at"])
                ok = (len(s) == 5 and isinstance(sid, str) and isinstance(agent, str)
                      and isinstance(metric, str) and type(value) in (int, float)
                      and at.tzinfo is not None)
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                return ORJSONResponse({"detail": f"samples[{i}] is malformed"}, status_code=422)
            if value < 0:
                rejected.append({"index": i, "id": sid, "reason": "negative_value"})
            elif sid in seen:
                duplicates += 1
            else:
                seen.add(sid)
                records.append((i, sid, agent, metric, float(value), at))
        async with state["pool"].acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("peer_stage", records=records)
            row = await conn.fetchrow(INGEST, source, datetime.now(UTC))
        unknown = set(row["unknown"])
        for i in sorted(unknown):
            rejected.append({"index": i, "id": samples[i]["id"], "reason": "unknown_agent"})
        rejected.sort(key=lambda r: r["index"])
        return Response(orjson.dumps({
            "accepted": row["accepted"],
            "duplicates": duplicates + len(records) - len(unknown) - row["accepted"],
            "rejected": rejected,
        }), media_type="application/json")

    @app.get("/v1/agents/{agent_id}/kpis")
    async def kpis(agent_id: str, period: str) -> Response:
        # The totals a dashboard polls: the agent's month summed from its delta rows.
        async with state["pool"].acquire() as conn:
            rows = await conn.fetch(KPIS, agent_id, period)
        return Response(orjson.dumps({
            "totals": {r["metric"]: r["total"] for r in rows},
            "samples": sum(r["n"] for r in rows),
        }), media_type="application/json")

    return app


async def load_directory(url: str, teams: list[tuple[str, str, list[str]]]) -> None:
    """Fill the peer's directory: (team id, time zone, agent ids)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
        await conn.executemany("INSERT INTO peer_team VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               [(t, tz) for t, tz, _ in teams])
        await conn.executemany("INSERT INTO peer_agent VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               [(a, t) for t, _, agents in teams for a in agents])
    finally:
        await conn.close()


def main() -> None:
    """Serve the peer."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(make_app(args.url), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
