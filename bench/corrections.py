"""Issue 15's number: re-publishing a corrected month that has 12 later published months."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from bench.common import BenchContext, Row, Suite, median
from bench.cycle import MANAGER_FORM
from bench.http import ADMIN_KEY, service
from service.domain.cycle import EvaluationSubmitted, cycle_stream
from service.domain.periods import next_period
from service.store.database import Database
from service.store.event_store import NewEvent, append, stream_version

SUITE = Suite(
    key="corrections",
    title="Corrections carry forward (issue 15)",
    about="""
### What these mean and how they are measured

One team, thirteen published months (2025-11 to 2026-11), the same agent last in every one of
them, so every month from the third on has a reassignment review. The evaluations are appended
to each month's stream in bulk to set the stage; every open, close, publication and correction
goes through the real service (`python -m service serve` in its own process, over TCP, an API
key per request).

A **correction** is reopen, one revised evaluation (the agent's manager evaluation), close and
publish. The figure is the **re-publication**: from the publish request to the corrected
month's published ranking being readable. Correcting the first month (12 published months
after it) moves the agent out of last place, so the third month's review no longer stands:
the publication re-derives the reviews of the later months a streak can reach (two, with a
streak of three; the walk stops there, not after twelve) and records the revision of the third
month. The baseline is the same correction of the last month (none after it). After one
unmeasured pair of corrections of each, each is done six times, alternately taking the agent
out of last place and putting them back (so that every correction of the first month cancels
or reopens the third month's review) and alternately going first; the medians are compared.
The service process holds the streams it has just written, as it would in production; both
sides of the comparison read their neighbouring months the same way.
""",
)

AGENTS = 1000
FIRST = "2025-11"
MONTHS = 13
LAGGARD = 0


def _months() -> list[str]:
    months = [FIRST]
    while len(months) < MONTHS:
        months.append(next_period(months[-1]))
    return months


def _score(i: int) -> float:
    # The laggard is last; the others spread over 40-99.
    return 10.0 if i == LAGGARD else float(40 + (i * 37) % 60)


async def _seed_month(db: Database, team: str, period: str, agents: int) -> None:
    """Append every agent's self and manager evaluation of a month in one append."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    events = []
    for i in range(agents):
        agent = f"{team}-a{i}"
        score = _score(i)
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="self", rater_id=agent,
            scores={"task_completion": score}, revision=1, submitted_at=now))
        events.append(EvaluationSubmitted(
            agent_id=agent, rater_role="manager", rater_id="m-bench",
            scores=dict.fromkeys(MANAGER_FORM, score), revision=1, submitted_at=now))
    stream = cycle_stream(team, period)
    async with db.connection() as conn:
        version = await stream_version(conn, stream)
        await append(conn, stream, [NewEvent(e.type, e.data()) for e in events],
                     expected_version=version, metadata={"actor": {"subject": "bench"}},
                     recorded_at=now)


async def _published(client: httpx.AsyncClient, base: str, publications: int) -> None:
    """Wait until the month's ranking is readable as published with this publication."""
    while True:
        cycle = (await client.get(base)).json()
        ranking = await client.get(f"{base}/ranking")
        if (ranking.status_code == 200 and ranking.json()["status"] == "published"
                and cycle["publications"] >= publications):
            return


async def _correct(client: httpx.AsyncClient, team: str, period: str, score: float,
                   reason: str) -> tuple[float, float]:
    """Correct the laggard's manager evaluation; return (re-publication, whole) seconds."""
    base = f"/v1/teams/{team}/cycles/{period}"
    started = time.perf_counter()
    (await client.post(f"{base}/reopen", json={"reason": reason})).raise_for_status()
    (await client.put(f"{base}/evaluations/{team}-a{LAGGARD}/manager",
                      json={"scores": dict.fromkeys(MANAGER_FORM, score)})).raise_for_status()
    (await client.post(f"{base}/close", json={})).raise_for_status()
    publishing = time.perf_counter()
    published = await client.post(f"{base}/publish")
    published.raise_for_status()
    await _published(client, base, published.json()["publications"])
    done = time.perf_counter()
    return done - publishing, done - started


@SUITE.benchmark("republish", "re-publish a corrected month with 12 later published months")
async def republish(ctx: BenchContext) -> list[Row]:
    """Time corrections of the first and of the last of 13 published months."""
    agents = int(ctx.scaled(AGENTS, 100))
    team = "bench"
    months = _months()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with ctx.fresh_database("csperf_bench_corrections") as url, service(url) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=120,
                                     headers=headers) as client:
            ctx.log(f"corrections: seeding {MONTHS} published months of {agents} agents")
            (await client.put(f"/v1/teams/{team}", json={
                "name": "Bench", "manager_ids": ["m-bench"]})).raise_for_status()
            for i in range(agents):
                (await client.put(f"/v1/agents/{team}-a{i}", json={
                    "name": f"Agent {i}", "team_id": team,
                    "position": "pre-sale"})).raise_for_status()
            db = Database(url, pool_size=2)
            try:
                for period in months:
                    # Version 1: the seeded evaluations carry no training record, which
                    # version 2 asks of managers; the carry-forward costs the same in both.
                    (await client.post(f"/v1/teams/{team}/cycles", json={
                        "period": period, "scheme_version": 1})).raise_for_status()
                    await _seed_month(db, team, period, agents)
                    base = f"/v1/teams/{team}/cycles/{period}"
                    (await client.post(f"{base}/close", json={})).raise_for_status()
                    (await client.post(f"{base}/publish")).raise_for_status()
            finally:
                await db.close()
            reviews = (await client.get("/v1/sanctions", params={
                "team_id": team, "kind": "reassignment_review", "status": "open"})).json()
            assert len(reviews["items"]) == MONTHS - 2, reviews

            last, first = months[-1], months[0]
            tail: list[tuple[float, float]] = []
            carried: list[tuple[float, float]] = []
            # One unmeasured correction of each first (the first reopening of a month warms
            # what the service holds), then rounds that alternate which side goes first.
            for month in (last, first):
                await _correct(client, team, month, 99.0, "warm-up")
                await _correct(client, team, month, 10.0, "warm-up")
            for round_ in range(3):
                for score in (99.0, 10.0):
                    reason = f"round {round_}: laggard's manager evaluation set to {score}"
                    order = [(last, tail), (first, carried)]
                    for month, times in order if score == 99.0 else reversed(order):
                        times.append(await _correct(client, team, month, score, reason))
            ctx.log("corrections: last month " + ", ".join(f"{t:.2f}s" for t, _ in tail)
                    + "; first month " + ", ".join(f"{t:.2f}s" for t, _ in carried))
            third = (await client.get("/v1/sanctions", params={
                "team_id": team, "period": months[2], "kind": "reassignment_review"})).json()
            # the third month's review was cancelled and reopened by the corrections
            assert any(i["entry"] == "cancellation" for i in third["items"]), third

    base_republish = median([t for t, _ in tail])
    carry_republish = median([t for t, _ in carried])
    ratio = carry_republish / base_republish
    return [
        Row(name=f"re-publish a corrected month, 12 published months after it ({agents} agents)",
            figure=carry_republish, unit="s", baseline="the same, no month after it",
            baseline_figure=base_republish, ratio=ratio, target="<= 2x baseline",
            met=ratio <= 2.0,
            notes=f"whole correction (reopen, revise, close, publish)"
            f" {median([w for _, w in carried]):.2f} s against"
            f" {median([w for _, w in tail]):.2f} s; medians of {len(carried)} corrections"
            " each"),
    ]
