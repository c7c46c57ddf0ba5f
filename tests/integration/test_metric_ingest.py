"""Live metrics through the command layer, against real PostgreSQL and the running read model."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest

from service.commands import metrics as commands
from service.context import ServiceContext
from service.domain import directory as d
from service.domain import metrics as m
from service.projections.metric_totals import compact, compact_pass, rebuild
from service.queries import kpis
from service.queries.streams import held_key
from service.store import metric_partitions
from service.store import metrics as store
from service.store.database import Database
from tests.support.metrics import expected_totals, make_samples, stored_totals
from tests.support.scenario import ADMIN, make_team

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)  # 09:00 in Seoul: inside the month there too


def sample(sample_id: str, agent_id: str, metric: str, value: float, at: datetime) -> m.Sample:
    return m.Sample(id=sample_id, agent_id=agent_id, metric=metric, value=value,
                    occurred_at=at)


def context(client: httpx.AsyncClient) -> ServiceContext:
    ctx: ServiceContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


async def test_the_same_samples_sent_twice_concurrently_count_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 20)
    samples = make_samples(uid, team.agents, 50_000, NOVEMBER, timedelta(days=25))
    # Every sample twice, shuffled, in batches of random sizes, eight batches at a time.
    rng = random.Random(7)
    sends = samples + samples
    rng.shuffle(sends)
    batches = []
    while sends:
        size = rng.randint(200, 2_500)
        batches.append(sends[:size])
        sends = sends[size:]
    queue: asyncio.Queue[list[m.Sample]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    outcomes: list[commands.Settled] = []

    async def sender() -> None:
        while not queue.empty():
            outcomes.append(await commands.ingest(ctx, f"src-{uid}", queue.get_nowait()))

    await asyncio.gather(*(sender() for _ in range(8)))
    assert sum(o.accepted for o in outcomes) == 50_000
    assert sum(o.duplicates for o in outcomes) == 50_000
    assert not any(o.rejected for o in outcomes)
    assert await stored_totals(ctx.db, team.team_id, "2026-11") == expected_totals(samples)
    async with ctx.db.connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM metric_sample WHERE source = $1", f"src-{uid}") == 50_000


async def test_quarantine_then_register_then_replay(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 1)
    source = f"src-{uid}"
    newcomer = f"new-{uid}"
    samples = [
        sample(f"{uid}-1", team.agents[0], "orders", 2, NOW - timedelta(hours=1)),
        sample(f"{uid}-2", newcomer, "orders", 3, NOW - timedelta(hours=1)),
        sample(f"{uid}-3", newcomer, "paid_orders", 1, NOW - timedelta(hours=1)),
        sample(f"{uid}-4", newcomer, "likes", 1, NOW - timedelta(hours=1)),
    ]
    first = await commands.ingest(ctx, source, samples)
    assert first.accepted == 1
    # Which metrics a sample may carry is its team's scheme's say (issue 19), so an unknown
    # agent's sample is unknown_agent first; once the agent is registered, unknown_metric.
    assert [(r.index, r.id, r.reason) for r in first.rejected] == [
        (1, f"{uid}-2", m.UNKNOWN_AGENT), (2, f"{uid}-3", m.UNKNOWN_AGENT),
        (3, f"{uid}-4", m.UNKNOWN_AGENT)]
    # Sending them again changes nothing and counts the attempt.
    again = await commands.ingest(ctx, source, samples)
    assert (again.accepted, again.duplicates, len(again.rejected)) == (0, 1, 3)
    async with ctx.db.connection() as conn:
        kept = await store.list_quarantine(conn, store.QuarantineFilter(source=source), 10)
    assert [(r["sample_id"], r["attempts"], r["status"]) for r in kept] == [
        (f"{uid}-2", 2, "quarantined"), (f"{uid}-3", 2, "quarantined"),
        (f"{uid}-4", 2, "quarantined")]
    assert kept[0]["raw"]["agent_id"] == newcomer

    response = await app_client.put(f"/v1/agents/{newcomer}",
                                    json={"name": "New", "team_id": team.team_id},
                                    headers=ADMIN)
    assert response.status_code == 201
    result = await commands.replay(ctx, store.QuarantineFilter(source=source), by="admin-x")
    assert (result.replayed, result.already_stored) == (2, 0)
    assert [(r.id, r.reason) for r in result.still_rejected] == [(f"{uid}-4", m.UNKNOWN_METRIC)]
    totals = await stored_totals(ctx.db, team.team_id, "2026-11")
    assert totals[(newcomer, "orders")] == (3, 1)
    assert totals[(newcomer, "paid_orders")] == (1, 1)
    async with ctx.db.connection() as conn:
        kept = await store.list_quarantine(
            conn, store.QuarantineFilter(source=source, status=None), 10)
    assert {r["sample_id"]: (r["status"], r["resolved_by"]) for r in kept} == {
        f"{uid}-2": ("accepted", "admin-x"), f"{uid}-3": ("accepted", "admin-x"),
        f"{uid}-4": ("quarantined", None)}
    # Replaying again finds nothing new; the stored samples stay counted once.
    result = await commands.replay(ctx, store.QuarantineFilter(source=source), by="admin-x")
    assert (result.replayed, len(result.still_rejected)) == (0, 1)
    final = await commands.ingest(ctx, source, samples)
    assert (final.accepted, final.duplicates, len(final.rejected)) == (0, 3, 1)


async def test_a_quarantined_sample_sent_again_once_usable_is_accepted(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 0)
    late_agent = f"late-{uid}"
    once = sample(f"{uid}-1", late_agent, "consultations", 4, NOW - timedelta(hours=2))
    first = await commands.ingest(ctx, f"src-{uid}", [once])
    assert [r.reason for r in first.rejected] == [m.UNKNOWN_AGENT]
    await app_client.put(f"/v1/agents/{late_agent}",
                         json={"name": "Late", "team_id": team.team_id}, headers=ADMIN)
    # Sent right after the registration: the directory read model may not show the agent yet,
    # the agent's stream does.
    second = await commands.ingest(ctx, f"src-{uid}", [once])
    assert (second.accepted, second.rejected) == (1, [])
    async with ctx.db.connection() as conn:
        kept = await store.list_quarantine(
            conn, store.QuarantineFilter(source=f"src-{uid}", status=None), 10)
    assert [(r["status"], r["resolved_by"]) for r in kept] == [("accepted", store.RESENT)]
    totals = await stored_totals(ctx.db, team.team_id, "2026-11")
    assert totals == {(late_agent, "consultations"): (4, 1)}


async def test_transferred_agent_samples_follow_the_team_of_their_time(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(datetime(2026, 11, 10, tzinfo=UTC))
    ctx = context(app_client)
    first = await make_team(app_client, uid + "a", 1, timezone="Asia/Seoul")
    second = await make_team(app_client, uid + "b", 0, timezone="UTC")
    agent = first.agents[0]
    # Read before the move: the process then holds the agent and the first team, and the
    # read after it must not take the team it holds for the agent's (kpis.agent_and_team).
    before = await app_client.get(f"/v1/agents/{agent}/kpis?period=2026-11", headers=ADMIN)
    assert before.json()["team_id"] == first.team_id and before.json()["samples"] == 0
    app_clock.set(datetime(2026, 11, 15, tzinfo=UTC))
    response = await app_client.put(f"/v1/agents/{agent}",
                                    json={"name": "Mover", "team_id": second.team_id},
                                    headers=ADMIN)
    assert response.status_code == 200
    app_clock.set(NOW)
    await commands.ingest(ctx, f"src-{uid}", [
        sample(f"{uid}-1", agent, "orders", 5, datetime(2026, 11, 12, tzinfo=UTC)),
        sample(f"{uid}-2", agent, "orders", 7, datetime(2026, 11, 20, tzinfo=UTC)),
        sample(f"{uid}-3", agent, "paid_orders", 6, datetime(2026, 11, 21, tzinfo=UTC)),
    ])
    assert await stored_totals(ctx.db, first.team_id, "2026-11") == {(agent, "orders"): (5, 1)}
    assert await stored_totals(ctx.db, second.team_id, "2026-11") == {
        (agent, "orders"): (7, 1), (agent, "paid_orders"): (6, 1)}
    response = await app_client.get(f"/v1/agents/{agent}/kpis?period=2026-11", headers=ADMIN)
    body = response.json()
    assert body["team_id"] == second.team_id
    assert body["totals"]["orders"] == 12 and body["samples"] == 3
    assert body["kpis"]["payment_ratio"] == 0.5
    assert body["by_team"] == [{"team_id": first.team_id, "samples": 1},
                               {"team_id": second.team_id, "samples": 2}]
    again = await app_client.get(f"/v1/agents/{agent}/kpis?period=2026-11", headers=ADMIN)
    assert again.json() == body
    team_totals = (await app_client.get(f"/v1/teams/{first.team_id}/kpis?period=2026-11",
                                        headers=ADMIN)).json()
    assert team_totals["totals"]["orders"] == 5 and team_totals["agents"] == 1


async def test_agent_kpis_of_the_current_month_follow_a_time_zone_the_process_did_not_hold(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # The read asks for the month of the team as this process holds it, with the team's
    # stream (kpis.agent_and_team); when another replica moved the team to another time zone
    # meanwhile, the current month is another one and must be read again.
    app_clock.set(datetime(2026, 11, 30, 20, 0, tzinfo=UTC))  # December in Seoul, not in UTC
    ctx = context(app_client)
    team = await make_team(app_client, uid, 1, timezone="Asia/Seoul")
    agent = team.agents[0]
    before = await app_client.get(f"/v1/agents/{agent}/kpis", headers=ADMIN)
    assert before.json()["period"] == "2026-12"
    key = held_key(d.team_stream(team.team_id), d.evolve_team, None)
    in_seoul = ctx.states.get(key)
    response = await app_client.put(
        f"/v1/teams/{team.team_id}",
        json={"name": f"Team {uid}", "timezone": "UTC", "currency": "CNY",
              "manager_ids": [team.manager_id]},
        headers=ADMIN)
    assert response.status_code == 200, response.text
    assert in_seoul is not None
    ctx.states.put(key, in_seoul)  # as a process that did not write the change holds it
    await commands.ingest(ctx, f"src-{uid}", [
        sample(f"{uid}-1", agent, "orders", 5, datetime(2026, 11, 30, 12, tzinfo=UTC))])
    body = (await app_client.get(f"/v1/agents/{agent}/kpis", headers=ADMIN)).json()
    assert body["period"] == "2026-11"
    assert body["totals"]["orders"] == 5 and body["samples"] == 1


async def test_the_agent_month_statement_is_planned_once_not_at_every_read(
    db: Database, uid: str
) -> None:
    # A dashboard polls GET /v1/agents/{id}/kpis; PostgreSQL keeps a generic plan of its
    # statement only if that plan looks no costlier than the custom ones (queries.kpis).
    async with db.connection() as conn:
        for i in range(8):
            await conn.fetch(kpis._AGENT_MONTH, f"a-{uid}-{i}", "2026-11", f"cycle-{uid}",
                             *kpis._stream_pairs({f"agent-{uid}-{i}": 1, f"team-{uid}": 2,
                                                  f"scheme-{uid}": 1}))
        plans = await conn.fetchrow(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement = $1", kpis._AGENT_MONTH)
    assert plans is not None and plans["generic_plans"] > 0, dict(plans or {})


async def test_placement_in_sql_follows_the_membership_and_the_local_month_of_each_time(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # The storing statement places samples through the directory read model (memberships cut
    # at each team's local month bounds); it must agree with the domain's rule, m.place, at
    # every edge: before registration, at the transfer instant, at midnight in each zone.
    app_clock.set(datetime(2026, 11, 10, tzinfo=UTC))
    ctx = context(app_client)
    seoul = await make_team(app_client, uid + "s", 1, timezone="Asia/Seoul")
    utc = await make_team(app_client, uid + "u", 0, timezone="UTC")
    agent = seoul.agents[0]
    moved = datetime(2026, 11, 30, 20, tzinfo=UTC)  # 05:00 on 1 December in Seoul
    app_clock.set(moved)
    response = await app_client.put(f"/v1/agents/{agent}",
                                    json={"name": "Mover", "team_id": utc.team_id},
                                    headers=ADMIN)
    assert response.status_code == 200
    for _ in range(500):  # until the read model has the transfer (else streams place it)
        async with ctx.db.transaction() as conn:
            mark = (await store.place(conn, [agent], [])).mark
        if mark is not None:
            break
        await asyncio.sleep(0.02)
    app_clock.set(datetime(2026, 12, 1, 12, tzinfo=UTC))
    tick = timedelta(microseconds=1)
    expected = {
        datetime(2026, 10, 31, 14, tzinfo=UTC): (seoul.team_id, "2026-10"),  # unregistered
        datetime(2026, 10, 31, 15, tzinfo=UTC): (seoul.team_id, "2026-11"),
        datetime(2026, 11, 30, 15, tzinfo=UTC) - tick: (seoul.team_id, "2026-11"),
        datetime(2026, 11, 30, 15, tzinfo=UTC): (seoul.team_id, "2026-12"),
        moved - tick: (seoul.team_id, "2026-12"),
        moved: (utc.team_id, "2026-11"),
        datetime(2026, 12, 1, tzinfo=UTC) - tick: (utc.team_id, "2026-11"),
        datetime(2026, 12, 1, tzinfo=UTC): (utc.team_id, "2026-12"),
    }
    batch = [sample(f"{uid}-{i}", agent, "orders", 1, at) for i, at in enumerate(expected)]
    outcome = await commands.ingest(ctx, f"src-{uid}", batch)
    assert outcome.accepted == len(batch) and not outcome.rejected
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT sample_id, team_id, period FROM metric_sample"
                                " WHERE source = $1", f"src-{uid}")
        found = await store.directory(conn, [agent])
    placed = {r["sample_id"]: (r["team_id"], r["period"]) for r in rows}
    for s, where in zip(batch, expected.values(), strict=True):
        assert placed[s["id"]] == where, s["occurred_at"]
        assert m.place(s, found.agents[agent], found.zones) == where, s["occurred_at"]


async def test_a_batch_plans_generically_up_to_its_storing_statement_or_refusals_look_up(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # The locking statement asks for generic plans. The storing statement sets the mode back
    # when it refused nothing, else the look-up of refused samples' keys that follows does, so
    # what a replay runs after them is planned for its values. The look-up, planned
    # generically, still finds exactly the keys stored.
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 1)
    at = NOW - timedelta(hours=1)
    stored_before = [sample(f"{uid}-0", team.agents[0], "orders", 1, at)]
    assert (await commands.ingest(ctx, f"src-{uid}", stored_before)).accepted == 1
    async with ctx.db.transaction() as conn:
        configured = await conn.fetchval("SHOW plan_cache_mode")
        await store.stage(conn, [(0, f"src-{uid}", f"{uid}-1", team.agents[0], "orders", 1.0,
                                  at.timestamp())])
        months = m.months_spanned(at, at, NOW)
        mark = (await store.place(conn, team.agents, months)).mark
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        await store.settle(conn, NOW, mark, {}, team.agents, months)
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        keys = [(f"src-{uid}", f"{uid}-0"), (f"src-{uid}", f"{uid}-1"),
                (f"other-{uid}", f"{uid}-0")]
        assert await store.stored(conn, keys) == {(f"src-{uid}", f"{uid}-0")}
        assert await conn.fetchval("SHOW plan_cache_mode") == configured
    async with ctx.db.transaction() as conn:
        await store.stage(conn, [(0, f"src-{uid}", f"{uid}-2", team.agents[0], "orders", 1.0,
                                  at.timestamp())])
        for _ in range(500):  # until the read models have the team
            placed = await store.place(conn, team.agents, months)
            if placed.mark is not None and placed.accepts is not None:
                break
            await asyncio.sleep(0.02)
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        judged = await store.settle(conn, NOW, placed.mark, placed.accepts, team.agents,
                                    months, placed.cycles)
        assert (judged.accepted, judged.rejected) == (1, [])
        assert await conn.fetchval("SHOW plan_cache_mode") == configured


async def test_the_staging_table_has_no_toast_table(app_client: httpx.AsyncClient) -> None:
    # Its text columns are bounded by what the API takes, so that every commit's truncation
    # of the stage has no TOAST table and TOAST index to truncate and build again.
    async with context(app_client).db.connection() as conn:
        toast = await conn.fetchval("SELECT reltoastrelid FROM pg_class"
                                    " WHERE oid = 'pg_temp.metric_stage'::regclass")
    assert toast == 0


async def test_a_cycle_begun_after_the_lookup_of_declared_metrics_places_the_batch_again(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # The locking statement looks up what the months accept in its snapshot, taken before it
    # waits for the cycles' locks: a cycle opened meanwhile pins a scheme version the lookup
    # did not see. The storing statement counts the months' cycles again after the locks and
    # writes nothing when they differ from place()'s count (the caller places again).
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 1)
    await team.open("2026-11")
    at = NOW - timedelta(hours=1)
    months = m.months_spanned(at, at, NOW)
    async with ctx.db.transaction() as conn:
        await store.stage(conn, [(0, f"src-{uid}", f"{uid}-1", team.agents[0], "orders", 1.0,
                                  at.timestamp())])
        for _ in range(500):  # until the read models have the team and its cycle
            placed = await store.place(conn, team.agents, months)
            if placed.mark is not None and placed.accepts is not None:
                break
            await asyncio.sleep(0.02)
        assert placed.cycles == 1 and placed.accepts
        seen_before = await store.settle(conn, NOW, placed.mark, placed.accepts, team.agents,
                                         months, placed.cycles - 1)
        assert seen_before.moved and seen_before.accepted == 0
        judged = await store.settle(conn, NOW, placed.mark, placed.accepts, team.agents,
                                    months, placed.cycles)
        assert not judged.moved and judged.accepted == 1


async def test_a_rebuild_from_the_samples_equals_the_live_totals(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 5)
    samples = make_samples(uid, team.agents, 3_000, NOVEMBER, timedelta(days=25), seed=3)
    query = ("SELECT agent_id, team_id, period, metric, total, observations FROM metric_totals"
             " WHERE team_id = $1 ORDER BY 1, 2, 3, 4")
    arrivals = ("SELECT team_id, metric, source, last_occurred_at, samples"
                " FROM metric_arrivals WHERE team_id = $1 ORDER BY 1, 2, 3")
    async with ctx.db.connection() as conn:
        for start in range(0, len(samples), 700):
            await commands.ingest(ctx, f"src-{uid}", samples[start:start + 700])
            await compact(conn, rows=7)  # fold a little now and then, as the live KPI loop does
        live: list[Any] = [tuple(r) for r in await conn.fetch(query, team.team_id)]
        live_arrivals = [tuple(r) for r in await conn.fetch(arrivals, team.team_id)]
        await rebuild(conn)
        rebuilt = [tuple(r) for r in await conn.fetch(query, team.team_id)]
        await compact_pass(conn)
        compacted = [tuple(r) for r in await conn.fetch(query, team.team_id)]
        compacted_arrivals = [tuple(r) for r in await conn.fetch(arrivals, team.team_id)]
    assert rebuilt == live
    assert compacted == live
    assert compacted_arrivals == live_arrivals
    assert await stored_totals(ctx.db, team.team_id, "2026-11") == expected_totals(samples)


async def test_a_compacting_pass_folds_everything_pending_a_step_at_a_time(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 3)
    samples = make_samples(uid, team.agents, 1_200, NOVEMBER, timedelta(days=25), seed=5)
    for start in range(0, len(samples), 400):
        await commands.ingest(ctx, f"src-{uid}", samples[start:start + 400])
    pending = ("SELECT (SELECT count(*) FROM metric_total_delta WHERE team_id = $1)"
               " + (SELECT count(*) FROM metric_arrival_delta WHERE team_id = $1)")
    async with ctx.db.connection() as conn, conn.transaction():
        # The app's own live KPI loop would fold some of them meanwhile (then this pass folded
        # fewer than were pending): its folds wait for this lock until the test's are done.
        await conn.execute("LOCK TABLE metric_total_delta, metric_arrival_delta"
                           " IN SHARE ROW EXCLUSIVE MODE")
        before = await conn.fetchval(pending, team.team_id)
        # steps of 7 rows: many full steps, then one that finds fewer and ends the pass
        folded = await compact_pass(conn, rows=7)
        after = await conn.fetchval(pending, team.team_id)
    assert before > 14
    assert folded >= before
    assert after == 0
    assert await stored_totals(ctx.db, team.team_id, "2026-11") == expected_totals(samples)


async def test_the_command_line_lists_and_replays_the_quarantine(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any, database_url: str
) -> None:
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 0)
    newcomer, source = f"cli-{uid}", f"src-{uid}"
    await commands.ingest(ctx, source, [
        sample(f"{uid}-1", newcomer, "orders", 2, NOW - timedelta(hours=1))])

    async def csperf(*args: str) -> tuple[int, str, str]:
        env = {**os.environ, "CSPERF_DATABASE_URL": database_url}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await csperf("metrics", "quarantine", "list", "--source", source)
    assert code == 0 and f"{uid}-1" in out and "unknown_agent" in out
    await app_client.put(f"/v1/agents/{newcomer}", json={"name": "C", "team_id": team.team_id},
                         headers=ADMIN)
    code, _, err = await csperf("metrics", "replay-quarantine", "--source", source)
    assert code == 0 and "replayed 1," in err
    assert await stored_totals(ctx.db, team.team_id, "2026-11") == {(newcomer, "orders"): (2, 1)}
    code, out, _ = await csperf("metrics", "quarantine", "list", "--source", source,
                                "--status", "all")
    assert "\taccepted\t" in out


async def test_a_batch_that_lost_a_deadlock_is_tried_again_in_a_fresh_transaction(
    app_client: httpx.AsyncClient,
) -> None:
    ctx = context(app_client)
    transactions: list[int] = []

    async def loses_once(conn: Any) -> commands.Settled:
        transactions.append(await conn.fetchval("SELECT txid_current()"))
        if len(transactions) == 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return commands.Settled(accepted=1)

    outcome = await commands._in_transaction(ctx, loses_once)
    assert outcome.accepted == 1
    assert len(transactions) == 2 and transactions[0] != transactions[1]

    def failing(error: Exception) -> Callable[[Any], Awaitable[commands.Settled]]:
        async def fail(conn: Any) -> commands.Settled:
            transactions.append(0)
            raise error
        return fail

    transactions.clear()
    with pytest.raises(asyncpg.DeadlockDetectedError):
        await commands._in_transaction(ctx, failing(asyncpg.DeadlockDetectedError("deadlock")))
    assert len(transactions) == commands.RETRIES

    transactions.clear()
    with pytest.raises(asyncpg.UniqueViolationError):
        await commands._in_transaction(ctx, failing(asyncpg.UniqueViolationError("no")))
    assert len(transactions) == 1  # only a deadlock is worth another try


async def test_replicas_making_the_same_months_at_once_take_turns(
    app_client: httpx.AsyncClient,
) -> None:
    # Each replica (and the first batch of a new month in each) makes the coming months'
    # partitions; doing so at once must not fail on the table the other just created.
    ctx = context(app_client)
    when = datetime(2034, 6, 15, tzinfo=UTC)
    connections = [await asyncpg.connect(ctx.db.url) for _ in range(4)]
    try:
        made = await asyncio.gather(*(metric_partitions.ensure(c, when)
                                      for c in connections))
    finally:
        for c in connections:
            await c.close()
    wanted = metric_partitions.months("2033-06", "2034-09")
    assert sorted(p for each in made for p in each) == wanted  # each month made once
    async with ctx.db.connection() as conn:
        assert await metric_partitions.ensure(conn, when) == []


async def test_every_microsecond_of_a_time_is_stored_as_sent(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # The stage takes times as epoch seconds in a double (store/metrics.py, STAGE).
    app_clock.set(NOW)
    ctx = context(app_client)
    team = await make_team(app_client, uid, 1)
    rng = random.Random(11)
    seoul = timezone(timedelta(hours=9))
    times = [NOVEMBER + timedelta(days=rng.randrange(25), seconds=rng.randrange(86_400),
                                  microseconds=rng.randrange(1_000_000)) for _ in range(2_000)]
    times += [NOVEMBER.replace(microsecond=999_999), NOVEMBER + timedelta(microseconds=1),
              (NOVEMBER + timedelta(days=3, microseconds=500_001)).astimezone(seoul)]
    samples = [sample(f"{uid}-{i}", team.agents[0], "consultations", 1, at)
               for i, at in enumerate(times)]
    assert (await commands.ingest(ctx, f"src-{uid}", samples)).accepted == len(times)
    async with ctx.db.connection() as conn:
        rows = await conn.fetch("SELECT sample_id, occurred_at FROM metric_sample"
                                " WHERE source = $1", f"src-{uid}")
    stored = {r["sample_id"]: r["occurred_at"] for r in rows}
    assert [stored[f"{uid}-{i}"] for i in range(len(times))] == times


async def test_the_staging_copy_begins_the_batch_transaction_when_none_is_open(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    # Ingestion's transaction is begun by its COPY (BEGIN; COPY ...: one round trip fewer):
    # what follows runs in it, commits at the end, and rolls back on an error.
    ctx = context(app_client)
    row = (0, f"src-{uid}", f"{uid}-1", "nobody", "orders", 1.0,
           (NOW - timedelta(hours=1)).timestamp())
    async with ctx.db.transaction_begun_by_work() as conn:
        assert not conn.is_in_transaction()
        await store.stage(conn, [row])
        assert conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM metric_stage") == 1
        await conn.execute(f'CREATE TABLE "kept_{uid}" (x integer)')
    async with ctx.db.connection() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM metric_stage") == 0
        assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"kept_{uid}")
        await conn.execute(f'DROP TABLE "kept_{uid}"')
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction_begun_by_work() as conn:
            await store.stage(conn, [row])
            await conn.execute(f'CREATE TABLE "lost_{uid}" (x integer)')
            raise RuntimeError("the batch failed")
    async with ctx.db.connection() as conn:
        assert not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"lost_{uid}")
    # Inside a transaction already (a replay), the COPY begins nothing.
    async with ctx.db.transaction() as conn:
        began = await conn.fetchval("SELECT txid_current()")
        await store.stage(conn, [row])
        assert await conn.fetchval("SELECT txid_current()") == began
        assert await conn.fetchval("SELECT count(*) FROM metric_stage") == 1


async def test_arrays_sent_in_text_form_arrive_as_sent(app_client: httpx.AsyncClient) -> None:
    # The batch's agents and declared metrics travel as one string each (store.text_array):
    # a quote, a backslash, a comma, a brace, NULL or an empty string must arrive unchanged.
    ctx = context(app_client)
    odd = ["a-1", "NULL", "null", "x,y", 'q"z', "b\\s", "", " sp ", "{}", "é☃", "t\tn\n"]
    async with ctx.db.connection() as conn:
        for values in ([], ["a-1"], odd):
            assert await conn.fetchval("SELECT (SELECT $1::text::text[])",
                                       store.text_array(values)) == values
        for flags in ([], [True], [True, False, False]):
            assert await conn.fetchval("SELECT $1::text::boolean[]",
                                       store.bool_array(flags)) == flags
