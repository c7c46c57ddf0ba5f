"""Issue 16's number: releasing 1,000 agents' results one by one, against PUT agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import orjson
import psutil

from bench.common import BenchContext, Row, Suite
from bench.corrections import _seed_month
from bench.http import ADMIN_KEY, Client, Request, cpu_seconds, service
from service.store.database import Database

SUITE = Suite(
    key="releases",
    title="Releasing results one by one (issue 16)",
    about="""
### What these mean and how they are measured

One team of 1,000 agents whose month (2026-11) is published under version 2 of
`online-shop-cs` (`results.release` `after_interview`: nobody's result is released at
publication). The evaluations are appended to the month's stream in bulk to set the stage; the
open, close and publication go through the real service (`python -m service serve` in its own
process, over TCP, an admin API key on every request).

**Release**: 16 keep-alive clients share the 1,000 agents and send
`POST /v1/teams/{team}/cycles/2026-11/releases/{agent}` for each, one at a time, until every
agent is released: 1,000 `ResultReleased` events, each decided on the agent's result stream.
**PUT agent**, measured in the same run, the same way: 16 clients rename the 1,000 agents
(`PUT /v1/agents/{id}`, one `AgentChanged` event each), once before and once after the
releases; the figure compared is the mean of the two rates. The target: releases reach at
least half the PUT agent rate.

### Where a release's time went (issue 18's route work, 2026-12-03)

A release cost the service two and a half times a PUT agent's CPU. Three things made it
dearer than any other command, none of them its event: FastAPI tried every router before the
releases' (the release was the fiftieth route, 1,241 Python calls to route it; now each router
refuses a path none of its routes has in one regular expression, 214); the route built the
1,000-agent month's ranked/not-ranked mapping again on every request (now once per close
event, held with it); and it read the team, the cycle and then, in the command, the result
stream in three round trips (now one, as PUT evaluation reads its three, the command deciding
on the result stream as read). Like every route it also solved three dependencies (the rule,
the service context, the month) where it now solves one. Service CPU per request, same run,
code before and after the first two and the dependencies (12:50-12:53 UTC, load 7-10): release
4,690 against PUT agent 1,880 and 1,820 µs before, 3,000 against 1,940 and 2,020 after; the
single round trip took the release's in-process CPU from 6,960 to 5,620 µs (cProfile, the
projections in the process). Under such load a single read for the check after the releases
(every agent released in the read model) could come back before the read model had caught up
(a route's read waits at most 2 s for its projection), so the check reads again until it has,
for at most a minute.
""",
)

AGENTS = 1000
CLIENTS = 16
TEAM = "rel"
PERIOD = "2026-11"


def _agent(i: int) -> str:
    return f"{TEAM}-a{i}"


async def _waiting(client: httpx.AsyncClient, base: str) -> list[str]:
    """Return the agents still waiting for their result once the read model has caught up
    with the releases: a route's read waits at most 2 s for its projection, which a loaded
    machine can outrun, so read again for up to a minute before judging."""
    deadline = time.monotonic() + 60
    while True:
        left: list[str] = (await client.get(f"{base}/interviews")).json()["waiting_for_result"]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


async def _drive(port: int, total: int, request: Callable[[int], Request]) -> tuple[float, int]:
    """Send request(i) for i in 0..total-1 from CLIENTS connections; return (seconds, errors)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    conns = [await Client.open(port, headers) for _ in range(CLIENTS)]
    queue = iter(range(total))
    errors = 0

    async def loop(conn: Client) -> None:
        nonlocal errors
        for i in queue:
            method, path, body = request(i)
            status, _ = await conn.request(method, path, body)
            if not 200 <= status < 300:
                errors += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(loop(c) for c in conns))
    finally:
        for conn in conns:
            conn.close()
    return time.perf_counter() - started, errors


def _put_agent(round_: int) -> Callable[[int], Request]:
    def request(i: int) -> Request:
        body = orjson.dumps({"name": f"Agent {i} r{round_}", "team_id": TEAM,
                             "position": "pre-sale"})
        return b"PUT", f"/v1/agents/{_agent(i)}".encode(), body
    return request


def _release(i: int) -> Request:
    return (b"POST", f"/v1/teams/{TEAM}/cycles/{PERIOD}/releases/{_agent(i)}".encode(), b"")


@SUITE.benchmark("release", "release 1,000 agents one by one from 16 clients")
async def release(ctx: BenchContext) -> list[Row]:
    """Compare the release rate with the PUT agent rate in the same run."""
    agents = int(ctx.scaled(AGENTS, 200))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with ctx.fresh_database("csperf_bench_releases") as url, service(url) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=120,
                                     headers=headers) as client:
            ctx.log(f"releases: seeding a published month of {agents} agents")
            (await client.put(f"/v1/teams/{TEAM}", json={
                "name": "Bench", "manager_ids": ["m-bench"]})).raise_for_status()
            for i in range(agents):
                (await client.put(f"/v1/agents/{_agent(i)}", json={
                    "name": f"Agent {i}", "team_id": TEAM,
                    "position": "pre-sale"})).raise_for_status()
            opened = await client.post(f"/v1/teams/{TEAM}/cycles", json={"period": PERIOD})
            opened.raise_for_status()
            assert opened.json()["scheme_version"] >= 2, opened.json()
            db = Database(url, pool_size=2)
            try:
                await _seed_month(db, TEAM, PERIOD, agents)
            finally:
                await db.close()
            base = f"/v1/teams/{TEAM}/cycles/{PERIOD}"
            (await client.post(f"{base}/close", json={"force": True,
                                                      "reason": "bench"})).raise_for_status()
            (await client.post(f"{base}/publish")).raise_for_status()
            waiting = (await client.get(f"{base}/interviews")).json()["waiting_for_result"]
            assert len(waiting) == agents, len(waiting)

            await _drive(server.port, min(agents, 200), _put_agent(0))  # warm-up
            process = psutil.Process(server.pid)
            cpu = [cpu_seconds(process)]
            before, e1 = await _drive(server.port, agents, _put_agent(1))
            cpu.append(cpu_seconds(process))
            ctx.log(f"releases: PUT agent {agents / before:.0f}/s")
            released, e2 = await _drive(server.port, agents, _release)
            cpu.append(cpu_seconds(process))
            ctx.log(f"releases: release {agents / released:.0f}/s")
            after, e3 = await _drive(server.port, agents, _put_agent(2))
            cpu.append(cpu_seconds(process))
            ctx.log(f"releases: PUT agent again {agents / after:.0f}/s")
            left = await _waiting(client, base)
            assert left == [] and e1 + e2 + e3 == 0, (len(left), e1, e2, e3)
            again, e4 = await _drive(server.port, min(agents, 100), _release)
            events = (await client.get("/v1/events", params={
                "type": "ResultReleased", "limit": 1})).json()
            assert e4 == 0 and events["items"], events

    put_rate = (agents / before + agents / after) / 2
    release_rate = agents / released
    ratio = release_rate / put_rate
    return [
        Row(name=f"release {agents} agents one by one, {CLIENTS} clients",
            figure=release_rate, unit="/s", baseline="PUT agent, same run, same clients",
            baseline_figure=put_rate, ratio=ratio, target=">= 50% of PUT agent",
            met=ratio >= 0.5,
            notes=f"{agents} releases in {released:.2f} s; PUT agent {agents / before:.0f}/s"
                  f" before and {agents / after:.0f}/s after; a second release of"
                  f" {min(agents, 100)} agents answered 200 and recorded nothing"
                  f" ({again:.2f} s). Service CPU per request: release"
                  f" {(cpu[2] - cpu[1]) / agents * 1e6:,.0f} µs, PUT agent"
                  f" {(cpu[1] - cpu[0]) / agents * 1e6:,.0f} and"
                  f" {(cpu[3] - cpu[2]) / agents * 1e6:,.0f} µs (the service's projections"
                  " included)"),
    ]
