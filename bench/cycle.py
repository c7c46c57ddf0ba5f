"""Issue 4's numbers: close and publish a 1,000-agent month; read the published ranking."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from bench.common import BenchContext, Row, Suite, bounded, percentile
from service.config import Settings
from service.domain.cycle import EvaluationSubmitted, cycle_stream
from service.main import create_app
from service.store.event_store import NewEvent, append, stream_version

SUITE = Suite(
    key="cycle",
    title="The monthly cycle (issue 4)",
    about="""
### What these mean and how they are measured

A team of 1,000 agents with a self and a manager evaluation each (the evaluations are appended
to the cycle's stream in bulk to set the stage; the timed steps go through the real app). The
app runs in-process and is called through `httpx` over ASGI, so the figures include routing,
authentication (an API key looked up per request), the command handlers and PostgreSQL, but no
TCP. **close + publish** is the time from the close request to the published ranking being
readable (the close freezes every KPI value and score into its event; the projection then
renders the ranking and 1,000 scorecards). **ranking read** is the published ranking read by
16 concurrent clients for a fixed number of requests, latency per request.
""",
)

AGENTS = 1000
PERIOD = "2026-11"
ADMIN_KEY = "csk_bench_admin_key_0000000000000000000000"
MANAGER_FORM = ("work_ability", "cooperation", "service", "report_timeliness",
                "report_reliability", "report_quality")


async def _setup(client: httpx.AsyncClient, db_url: str, team: str, agents: int) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    response = await client.put(f"/v1/teams/{team}", headers=admin,
                                json={"name": "Bench", "manager_ids": ["m-bench"]})
    response.raise_for_status()
    for batch in range(0, agents, 50):
        await asyncio.gather(*[
            client.put(f"/v1/agents/{team}-a{i}", headers=admin,
                       json={"name": f"Agent {i}", "team_id": team, "position": "pre-sale"})
            for i in range(batch, min(batch + 50, agents))
        ])
    response = await client.post(f"/v1/teams/{team}/cycles", headers=admin,
                                 json={"period": PERIOD})
    response.raise_for_status()
    ctx = client._transport.app.state.ctx  # type: ignore[attr-defined]
    now = datetime(2026, 11, 28, tzinfo=UTC)
    events = []
    for i in range(agents):
        agent = f"{team}-a{i}"
        score = 40 + (i * 37) % 60
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="self", rater_id=agent,
            scores={"task_completion": score}, revision=1, submitted_at=now))
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="manager", rater_id="m-bench",
            scores=dict.fromkeys(MANAGER_FORM, float(score)), revision=1, submitted_at=now))
    stream = cycle_stream(team, PERIOD)
    async with ctx.db.connection() as conn:
        version = await stream_version(conn, stream)
        await append(conn, stream, [NewEvent(e.type, e.data()) for e in events],
                     expected_version=version, metadata={"actor": {"subject": "bench"}},
                     recorded_at=now)


@SUITE.benchmark("close_publish", "close and publish a 1,000-agent month; read its ranking")
async def close_publish(ctx: BenchContext) -> list[Row]:
    """Time close + publish + first ranking read, then ranking reads from 16 clients."""
    agents = int(ctx.scaled(AGENTS, 200))
    async with ctx.fresh_database("csperf_bench_cycle") as url:
        settings = Settings(bootstrap_admin_key=ADMIN_KEY, projection_poll_seconds=0.02,
                            log_level="WARNING")  # type: ignore[arg-type]
        app = create_app(settings, database_url=url, migrate_on_start=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         timeout=60) as client:
                ctx.log(f"cycle: seeding a team of {agents} agents")
                await _setup(client, url, "bench", agents)
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                base = f"/v1/teams/bench/cycles/{PERIOD}"
                started = time.perf_counter()
                (await client.post(f"{base}/close", headers=admin, json={})).raise_for_status()
                closed = time.perf_counter()
                (await client.post(f"{base}/publish", headers=admin)).raise_for_status()
                ranking = await client.get(f"{base}/ranking", headers=admin)
                ranking.raise_for_status()
                while ranking.json()["status"] != "published":
                    await asyncio.sleep(0.005)
                    ranking = await client.get(f"{base}/ranking", headers=admin)
                done = time.perf_counter()
                assert len(ranking.json()["entries"]) == agents
                ctx.log(f"cycle: close {closed - started:.2f}s,"
                        f" close+publish {done - started:.2f}s")

                latencies: list[float] = []

                async def reader() -> None:
                    for _ in range(int(ctx.scaled(60, 15))):
                        t0 = time.perf_counter()
                        response = await client.get(f"{base}/ranking", headers=admin)
                        latencies.append(time.perf_counter() - t0)
                        assert response.status_code == 200

                await reader()  # warm-up
                latencies.clear()
                await asyncio.gather(*[reader() for _ in range(16)])
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    return [
        bounded(f"close + publish, {agents} agents", done - started, "s",
                target="< 2 s", met=done - started < 2.0,
                notes=f"close alone {closed - started:.2f} s"),
        bounded("published ranking read, p99 (16 clients)", p99, "ms", target="< 20 ms",
                met=p99 < 20.0, notes=f"p50 {p50:.1f} ms, {len(latencies)} requests"),
    ]
