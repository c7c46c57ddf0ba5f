"""Years of samples: monthly partitions, the month without one, and archiving a month."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from service.commands import metrics as commands
from service.context import ServiceContext
from service.domain import metrics as m
from service.store import metric_partitions
from service.store import metrics as store
from tests.conftest import bearer, make_token
from tests.support.metrics import expected_totals, make_samples, stored_totals
from tests.support.scenario import ADMIN, make_team

#: A month of its own: archiving drops a whole month, every team's samples of it.
MONTH = "2024-03"
CLOCK = datetime(2024, 4, 5, 12, 0, tzinfo=UTC)


def context(client: httpx.AsyncClient) -> ServiceContext:
    ctx: ServiceContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


async def test_a_month_without_a_partition_is_rejected_and_kept_not_a_500(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # Partitions cover the months around the clock (made at start, by the compacting replica
    # and before the first batch of a new month); a far-future sample is refused before that
    # (in_future), so the month without one that a client can reach is an old one.
    app_clock.set(datetime(2026, 11, 27, tzinfo=UTC))
    team = await make_team(app_client, uid, 1)
    source = f"chat-{uid}"
    sample = {"id": f"{uid}-old", "agent_id": team.agents[0], "metric": "orders", "value": 1,
              "occurred_at": "2022-06-09T10:00:00Z"}
    response = await app_client.post("/v1/metrics", json={"source": source, "samples": [sample]},
                                     headers=bearer(make_token("ingest", source=source)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 0
    assert [(r["id"], r["reason"]) for r in body["rejected"]] == [
        (f"{uid}-old", m.PERIOD_UNAVAILABLE)]
    kept = (await app_client.get(f"/v1/metrics/quarantine?source={source}",
                                 headers=ADMIN)).json()["items"]
    assert [(i["id"], i["reason"]) for i in kept] == [(f"{uid}-old", m.PERIOD_UNAVAILABLE)]
    # Once the month has its partition, a replay stores it.
    async with context(app_client).db.connection() as conn:
        await metric_partitions.make(conn, "2022-06")
    replayed = await commands.replay(context(app_client), store.QuarantineFilter(source=source),
                                     by="admin-x")
    assert replayed.replayed == 1


async def test_the_months_around_a_new_clock_month_get_their_partition_first(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(datetime(2031, 6, 10, tzinfo=UTC))  # a month no partition was made for
    team = await make_team(app_client, uid, 1)
    outcome = await commands.ingest(context(app_client), f"src-{uid}", [m.Sample(
        id=f"{uid}-1", agent_id=team.agents[0], metric="orders", value=1,
        occurred_at=datetime(2031, 6, 9, tzinfo=UTC))])
    assert (outcome.accepted, outcome.rejected) == (1, [])
    async with context(app_client).db.connection() as conn:
        made = {r["period"] for r in await conn.fetch(
            "SELECT period FROM metric_partition WHERE period >= '2031-01'")}
    assert {"2031-06", "2031-09"} <= made


async def _read_models(client: httpx.AsyncClient, team: Any, conn: Any) -> dict[str, Any]:
    """Every read model that shows the month: KPIs, feeds, ranking, scorecards, BI views."""
    out: dict[str, Any] = {}
    for a in team.agents:
        out[f"kpis {a}"] = (await client.get(f"/v1/agents/{a}/kpis?period={MONTH}",
                                             headers=ADMIN)).json()
        out[f"card {a}"] = (await client.get(team.url(MONTH, f"/scorecards/{a}"),
                                             headers=team.manager)).json()
    out["team"] = (await client.get(f"/v1/teams/{team.team_id}/kpis?period={MONTH}",
                                    headers=ADMIN)).json()
    out["ranking"] = await team.ranking(MONTH)
    in_month = f"team_ids::text LIKE '%' || $1 || '%' AND period = '{MONTH}'"
    for view, where in (("kpi_history", in_month),
                        ("team_kpi_history", "team_id = $1"), ("metric_totals", "team_id = $1"),
                        ("metric_feeds", "team_id = $1")):
        out[view] = [tuple(r) for r in await conn.fetch(
            f"SELECT * FROM reporting.{view} WHERE {where} ORDER BY 1, 2, 3, 4, 5",
            team.team_id)]
    return out


async def _kpis_computed(conn: Any, team_id: str) -> None:
    """Wait (a minute at most) for the live KPI rows of the month (service/projections/
    kpi_values.py, filled by a background loop after its fold): the views compared before
    and after the archive must both show them, not a pass still pending."""
    for _ in range(1200):
        pending = await conn.fetchval(
            "SELECT count(*) FROM reporting.kpi_history WHERE team_ids::text LIKE '%' || $1"
            " || '%' AND period = $2 AND payment_ratio IS NULL", team_id, MONTH)
        if pending == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the live KPI rows of {MONTH} were not computed within a minute")


async def test_archiving_a_month_keeps_every_read_model_and_loses_nothing(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any, database_url: str, tmp_path: Path
) -> None:
    app_clock.set(CLOCK)
    ctx = context(app_client)
    async with ctx.db.connection() as conn:
        await metric_partitions.make(conn, MONTH)
        await metric_partitions.make(conn, "2024-04")
    team = await make_team(app_client, uid, 3)
    source = f"src-{uid}"
    samples = make_samples(uid, team.agents, 2_000, datetime(2024, 3, 2, tzinfo=UTC),
                           timedelta(days=20), seed=5)
    assert (await commands.ingest(ctx, source, samples)).accepted == 2_000
    # A sample once refused (unknown agent), then resent once the agent existed.
    late_agent = f"late-{uid}"
    resent = m.Sample(id=f"{uid}-resent", agent_id=late_agent, metric="orders", value=2,
                      occurred_at=datetime(2024, 3, 20, tzinfo=UTC))
    assert (await commands.ingest(ctx, source, [resent])).rejected
    await app_client.put(f"/v1/agents/{late_agent}", json={"name": "L", "team_id": team.team_id},
                         headers=ADMIN)
    assert (await commands.ingest(ctx, source, [resent])).accepted == 1
    await team.open(MONTH)
    await team.evaluate_all(MONTH, dict.fromkeys([*team.agents, late_agent], 80))
    assert (await team.close(MONTH)).status_code == 200
    assert (await team.publish(MONTH)).status_code == 200

    async with ctx.db.connection() as conn:
        await _kpis_computed(conn, team.team_id)
        before = await _read_models(app_client, team, conn)
        totals_before = await stored_totals(ctx.db, team.team_id, MONTH)
        # An archive stopped halfway: the month marked, a partial file left behind.
        await conn.execute("UPDATE metric_partition SET state = 'archiving' WHERE period = $1",
                           MONTH)
    (tmp_path / f"metric_sample_{MONTH}.csv.gz.part").write_bytes(b"\x1f\x8b partial")

    # Ingestion goes on meanwhile (another team's, whose feeds the read models above do not
    # show), into the next month and into the month being archived.
    other = await make_team(app_client, uid + "o", 2)
    now_month = make_samples(uid + "n", other.agents, 3_000, datetime(2024, 4, 1, tzinfo=UTC),
                             timedelta(days=2), seed=6)
    into_archived = m.Sample(id=f"{uid}-into", agent_id=other.agents[0], metric="orders",
                             value=1, occurred_at=datetime(2024, 3, 27, tzinfo=UTC))

    async def feed() -> list[commands.Settled]:
        done = []
        for start in range(0, len(now_month), 300):
            done.append(await commands.ingest(ctx, source, now_month[start:start + 300]))
        done.append(await commands.ingest(ctx, source + "b", [into_archived]))
        return done

    env = {**os.environ, "CSPERF_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "metrics", "archive", "--before", "2024-04",
        "--to", str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    fed, (out, err) = await asyncio.gather(feed(), process.communicate())
    assert process.returncode == 0, err.decode()
    assert f"{MONTH}\tarchived\t2001\t" in out.decode()
    # Nothing lost meanwhile: the current month's batches stored, the archived month's kept.
    assert sum(o.accepted for o in fed) == 3_000
    assert [r.reason for r in fed[-1].rejected] == [m.PERIOD_UNAVAILABLE]

    # The file holds every sample once, and its checksum is right.
    path = tmp_path / f"metric_sample_{MONTH}.csv.gz"
    data = path.read_bytes()
    listed = (tmp_path / f"metric_sample_{MONTH}.csv.gz.sha256").read_text().split()
    assert listed == [hashlib.sha256(data).hexdigest(), path.name]
    lines = gzip.decompress(data).decode().splitlines()
    assert lines[0].startswith("source,sample_id,agent_id,team_id,period")
    ids = {line.split(",")[1] for line in lines[1:]}
    assert ids == {s["id"] for s in samples} | {f"{uid}-resent"}
    assert not (tmp_path / f"metric_sample_{MONTH}.csv.gz.part").exists()

    async with ctx.db.connection() as conn:
        assert await conn.fetchval("SELECT to_regclass('metric_sample_2024_03')") is None
        assert await conn.fetchval("SELECT state FROM metric_partition WHERE period = $1",
                                   MONTH) == "archived"
        after = await _read_models(app_client, team, conn)
        kept = await store.list_quarantine(
            conn, store.QuarantineFilter(source=source, status=None), 10)
    assert after == before
    assert await stored_totals(ctx.db, team.team_id, MONTH) == totals_before
    assert totals_before == expected_totals([*samples, resent])
    # The quarantine is kept, and still says the resent sample was accepted.
    assert [(r["sample_id"], r["status"]) for r in kept] == [(f"{uid}-resent", "accepted")]
    # A second run has nothing left to do for the month (other tests' months stay: open).
    async with ctx.db.connection() as conn:
        again = await metric_partitions.archive(conn, "2024-04", tmp_path, CLOCK)
    assert MONTH not in {r.period for r in again}
    assert all(isinstance(r, metric_partitions.Skipped) for r in again)
    # The month gone, a sample of it sent now is refused and kept, never a 500.
    late = m.Sample(id=f"{uid}-after", agent_id=other.agents[0], metric="orders", value=1,
                    occurred_at=datetime(2024, 3, 15, tzinfo=UTC))
    assert m.months_spanned(late["occurred_at"], late["occurred_at"], CLOCK) == [MONTH]
    gone = await commands.ingest(ctx, source, [late])
    assert gone.accepted == 0
    assert [r.reason for r in gone.rejected] == [m.PERIOD_UNAVAILABLE]
