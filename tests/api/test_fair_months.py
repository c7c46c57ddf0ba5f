"""Fair months through the API: employment span, absences, and months on version 2 of
online-shop-cs (not ranked, one yardstick, pro-rated targets, warnings)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from service.store import reporting
from service.store.database import Database
from tests.conftest import bearer, make_token
from tests.support.raters import train
from tests.support.scenario import ADMIN, Team, make_team

PERIOD = "2026-11"


def ingest(source: str) -> dict[str, str]:
    return bearer(make_token("ingest", source=source))


async def put_agent(client: httpx.AsyncClient, team: Team, agent_id: str, **fields: Any
                    ) -> httpx.Response:
    return await client.put(f"/v1/agents/{agent_id}", headers=ADMIN,
                            json={"name": "A", "team_id": team.team_id, **fields})


async def absence(client: httpx.AsyncClient, headers: dict[str, str], agent_id: str,
                  absence_id: str, start: str, end: str, kind: str = "leave",
                  **extra: Any) -> httpx.Response:
    return await client.put(f"/v1/agents/{agent_id}/absences/{absence_id}", headers=headers,
                            json={"from": start, "to": end, "kind": kind, **extra})


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


async def test_employment_span_is_set_kept_cleared_and_checked(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    backwards = await put_agent(app_client, team, a, hired_on="2026-11-10", left_on="2026-11-09")
    assert backwards.status_code == 422 and fields(backwards) == ["left_on"]
    assert "before hired_on" in backwards.json()["errors"][0]["reason"]
    hired = await put_agent(app_client, team, a, hired_on="2026-11-10")
    assert (hired.json()["hired_on"], hired.json()["left_on"]) == ("2026-11-10", None)
    # Left out: kept. A left_on before the kept hired_on is still refused.
    kept = await put_agent(app_client, team, a, name="Renamed")
    assert kept.json()["hired_on"] == "2026-11-10"
    assert (await put_agent(app_client, team, a, left_on="2026-11-01")).status_code == 422
    left = await put_agent(app_client, team, a, left_on="2026-11-20")
    assert (left.json()["hired_on"], left.json()["left_on"]) == ("2026-11-10", "2026-11-20")
    cleared = await put_agent(app_client, team, a, left_on=None)
    assert cleared.json()["left_on"] is None
    history = await app_client.get(f"/v1/streams/agent:{a}/events", headers=ADMIN)
    changes = [e["data"] for e in history.json()["items"]
               if e["type"] == "AgentEmploymentChanged"]
    assert [(c["hired_on"], c["left_on"]) for c in changes] == [
        ("2026-11-10", None), ("2026-11-10", "2026-11-20"), ("2026-11-10", None)]


async def test_absences_are_checked_recorded_changed_and_cancelled_with_history(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 2)
    a = team.agents[0]
    await put_agent(app_client, team, a, hired_on="2026-03-01", left_on="2026-12-31")
    backwards = await absence(app_client, team.manager, a, "x", "2026-11-10", "2026-11-03")
    assert backwards.status_code == 422 and fields(backwards) == ["to"]
    before = await absence(app_client, team.manager, a, "x", "2026-02-20", "2026-03-05")
    assert before.status_code == 422 and fields(before) == ["from"]
    after = await absence(app_client, team.manager, a, "x", "2026-12-20", "2027-01-05")
    assert after.status_code == 422 and fields(after) == ["to"]
    kind = await absence(app_client, team.manager, a, "x", "2026-11-01", "2026-11-02", "party")
    assert kind.status_code == 422
    bad_date = await absence(app_client, team.manager, a, "x", "2026-11-31", "2026-12-01")
    assert bad_date.status_code == 422
    bad_id = await absence(app_client, team.manager, a, "no spaces", "2026-11-01", "2026-11-02")
    assert bad_id.status_code == 422

    created = await absence(app_client, team.manager, a, "leave-1", "2026-11-03", "2026-11-20",
                            note="parental leave")
    assert created.status_code == 201, created.text
    assert created.json() == {**created.json(), "from": "2026-11-03", "to": "2026-11-20",
                              "kind": "leave", "status": "active", "revision": 1,
                              "note": "parental leave"}
    again = await absence(app_client, team.manager, a, "leave-1", "2026-11-03", "2026-11-20",
                          note="parental leave")
    assert again.status_code == 200 and again.json()["revision"] == 1
    changed = await absence(app_client, ADMIN, a, "leave-1", "2026-11-03", "2026-11-25")
    assert changed.status_code == 200 and changed.json()["revision"] == 2
    url = f"/v1/agents/{a}/absences/leave-1"
    cancelled = await app_client.delete(url, headers=team.manager)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await app_client.delete(url, headers=team.manager)).status_code == 200
    assert (await app_client.delete(f"/v1/agents/{a}/absences/nope",
                                    headers=team.manager)).status_code == 404
    listing = await app_client.get(f"/v1/agents/{a}/absences", headers=team.agent(a))
    assert [(i["absence_id"], i["status"], i["to"]) for i in listing.json()["items"]] == [
        ("leave-1", "cancelled", "2026-11-25")]
    one = await app_client.get(url, headers=bearer(make_token("reader")))
    assert one.status_code == 200 and one.json()["status"] == "cancelled"
    history = await app_client.get(f"/v1/streams/agent:{a}/events", headers=ADMIN)
    assert [e["type"] for e in history.json()["items"] if "Absence" in e["type"]] == [
        "AbsenceRecorded", "AbsenceRecorded", "AbsenceCancelled"]


async def test_who_may_write_and_read_absences(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "x", 1)
    a, b = team.agents
    own = await absence(app_client, team.agent(a), a, "s", "2026-11-03", "2026-11-04", "sick")
    assert own.status_code == 403
    assert (await absence(app_client, other.manager, a, "s", "2026-11-03", "2026-11-04")
            ).status_code == 403
    assert (await absence(app_client, bearer(make_token("reader")), a, "s", "2026-11-03",
                          "2026-11-04")).status_code == 403
    assert (await absence(app_client, team.manager, a, "s", "2026-11-03", "2026-11-04",
                          "sick")).status_code == 201
    assert (await app_client.get(f"/v1/agents/{a}/absences", headers=team.agent(a))
            ).status_code == 200
    assert (await app_client.get(f"/v1/agents/{a}/absences", headers=team.agent(b))
            ).status_code == 403
    assert (await app_client.get(f"/v1/agents/{a}/absences", headers=other.manager)
            ).status_code == 403
    assert (await app_client.delete(f"/v1/agents/{a}/absences/s", headers=team.agent(a))
            ).status_code == 403


async def test_concurrent_absence_writes_for_one_agent_lose_nothing(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    writes = [absence(app_client, team.manager, a, f"abs-{i}", f"2026-11-{i + 1:02d}",
                      f"2026-11-{i + 1:02d}", "training") for i in range(20)]
    # The same absence changed by many writers at once: every change is a revision.
    writes += [absence(app_client, ADMIN, a, "shared", "2026-12-01", f"2026-12-{i + 1:02d}")
               for i in range(10)]
    answers = await asyncio.gather(*writes)
    assert sorted({r.status_code for r in answers}) in ([200, 201], [201])
    listing = (await app_client.get(f"/v1/agents/{a}/absences", headers=ADMIN)).json()
    assert len(listing["items"]) == 21
    shared = next(i for i in listing["items"] if i["absence_id"] == "shared")
    history = await app_client.get(f"/v1/streams/agent:{a}/events?limit=100", headers=ADMIN)
    recorded = [e["data"] for e in history.json()["items"] if e["type"] == "AbsenceRecorded"]
    assert len([r for r in recorded if r["absence_id"] != "shared"]) == 20
    # Ten distinct ends: ten revisions, and the last one written is what stands.
    shared_events = [r for r in recorded if r["absence_id"] == "shared"]
    assert len(shared_events) == shared["revision"] == 10
    assert shared_events[-1]["to_date"] == shared["to"]


async def fair_team(client: httpx.AsyncClient, uid: str, agents: int) -> Team:
    """A team in Seoul whose manager has the training version 2 asks of managers."""
    team = await make_team(client, uid, agents, timezone="Asia/Seoul")
    await train(client, team.manager_id)
    return team


async def send(client: httpx.AsyncClient, samples: list[tuple[str, str, float, str]],
               db: Database) -> None:
    body = {"source": "chat", "samples": [
        {"id": f"{agent}-{metric}-{i}", "agent_id": agent, "metric": metric, "value": value,
         "occurred_at": at} for i, (agent, metric, value, at) in enumerate(samples)]}
    response = await client.post("/v1/metrics", json=body, headers=ingest("chat"))
    # Totals are fresh at commit: the 200 means the close and the KPI reads include the batch.
    assert response.status_code == 200 and not response.json()["rejected"], response.text


async def test_a_version_2_month_ranks_by_presence_one_yardstick_and_prorated_targets(
    app_client: httpx.AsyncClient, uid: str, db: Database, app_clock: Any
) -> None:
    app_clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    team = await fair_team(app_client, uid, 6)
    full, half, quiet, leave, hire, third = team.agents
    opened = (await team.open(PERIOD, scheme_version=None)).json()
    scheme = (await app_client.get(f"/v1/schemes/online-shop-cs?version="
                                   f"{opened['scheme_version']}", headers=ADMIN)).json()
    assert scheme["results"]["fair_months"] is True
    # Parental leave all month; a hire on the 28th; "half" away 16-30 November: 15 of 30 days,
    # exactly the minimum share, in Seoul, whose November starts on 31 October in UTC.
    await put_agent(app_client, team, hire, name="Agent 4", hired_on="2026-11-28")
    assert (await absence(app_client, team.manager, leave, "parental", "2026-10-01",
                          "2027-03-31", note="parental leave")).status_code == 201
    assert (await absence(app_client, team.manager, half, "h", "2026-11-16", "2026-11-30")
            ).status_code == 201
    first_hour = "2026-11-01T00:30:00+09:00"  # 31 October, 15:30 UTC
    samples = [(a, metric, value, first_hour) for a in (full, half, third)
               for metric, value in (("consultations", 10.0), ("conversions", 3.0))]
    samples += [(full, "order_amount", 50000.0, first_hour),
                (half, "order_amount", 25000.0, first_hour),
                (third, "order_amount", 10000.0, first_hour)]
    await send(app_client, samples, db)
    ranked = {full: 90, half: 80, quiet: 70, third: 60}
    await team.evaluate_all(PERIOD, ranked)
    # Monitoring says so while the month is open, so that the feed can be fixed first.
    before = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    no_data = next(w for w in before["warnings"] if w["kind"] == "kpi_no_data")
    assert [a["agent_id"] for a in no_data["agents"]] == [quiet]
    # No evaluation of the agent on leave nor of the new hire: the close does not wait.
    closed = await team.close(PERIOD)
    assert closed.status_code == 200, closed.text
    kinds = {w["kind"]: w for w in closed.json()["warnings"]}
    assert kinds["kpi_no_data"]["agents"] == [{"agent_id": quiet, "kpis": [
        "churn_rate", "conversion_rate", "order_amount"]}]
    assert set(kinds["kpi_unavailable"]["kpis"]) == {
        "avg_response_time_seconds", "valid_order_ratio", "payment_ratio", "refund_ratio",
        "avg_order_value"}
    ranking = await team.ranking(PERIOD)
    assert {e["agent_id"] for e in ranking["entries"]} == set(ranked)  # type: ignore
    assert ranking["not_ranked"] == [  # sorted by agent id: a-..-3 (leave), a-..-4 (hire)
        {"agent_id": leave, "name": "Agent 3", "reason": "active 0 of 30 days",
         "active_days": 0, "days": 30},
        {"agent_id": hire, "name": "Agent 4", "reason": "active 3 of 30 days",
         "active_days": 3, "days": 30}]
    assert ranking["unavailable_kpis"] == sorted(kinds["kpi_unavailable"]["kpis"])

    card = (await app_client.get(team.url(PERIOD, f"/scorecards/{half}"),
                                 headers=team.agent(half))).json()
    assert card["eligibility"] == {"days": 30, "active_days": 15, "share": 0.5, "ranked": True,
                                   "reason": None, "days_in_team": 15}
    amount = card["kpis"]["order_amount"]
    assert (amount["target"], amount["floor"], amount["attainment"], amount["status"]) == (
        25000.0, 0.0, 100.0, "measured")
    assert card["kpis"]["payment_ratio"]["status"] == "unavailable"
    quiet_card = (await app_client.get(team.url(PERIOD, f"/scorecards/{quiet}"),
                                       headers=team.manager)).json()
    assert quiet_card["kpis"]["conversion_rate"]["status"] == "no_data"
    assert quiet_card["kpis"]["conversion_rate"]["attainment"] == 0.0
    leave_card = (await app_client.get(team.url(PERIOD, f"/scorecards/{leave}"),
                                       headers=team.manager)).json()
    assert leave_card["eligibility"]["ranked"] is False and leave_card["rank"] is None

    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert {"kpi_no_data", "kpi_unavailable"} <= {w["kind"] for w in cycle["warnings"]}
    assert (await team.publish(PERIOD)).status_code == 200
    sanctions = (await app_client.get(f"/v1/sanctions?team_id={team.team_id}&period={PERIOD}",
                                      headers=team.manager)).json()["items"]
    touched = {i["agent_id"] for i in sanctions}
    assert leave not in touched and hire not in touched
    assert {(i["kind"], i["agent_id"]) for i in sanctions if i["kind"] in ("reward",
                                                                          "deduction")} == {
        ("reward", full), ("deduction", third)}
    # BI reads who was ranked, and why not, from the scorecards view.
    rows: list[Any] = []
    for _ in range(200):
        async with db.connection() as conn:
            await reporting.ensure_reporting(conn)
            rows = await conn.fetch(
                "SELECT agent_id, ranked, active_days, days, not_ranked_reason"
                " FROM reporting.scorecards WHERE team_id = $1 AND agent_id = ANY($2::text[])"
                " AND status = 'published'", team.team_id, [leave, half])
        if len(rows) == 2:
            break
        await asyncio.sleep(0.05)
    assert {tuple(r) for r in rows} == {(leave, False, 0, 30, "active 0 of 30 days"),
                                        (half, True, 15, 30, None)}


async def test_version_1_months_are_unchanged_by_absences(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 3)
    await absence(app_client, team.manager, team.agents[0], "l", "2026-10-01", "2026-12-31")
    await team.open(PERIOD)  # version 1, explicitly
    closed = await team.close(PERIOD)
    assert closed.status_code == 409  # everyone's evaluations are expected, as before
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (50, 60, 70), strict=True)))
    # No fair months' warning; the goals nobody acknowledged are warned about (issue 16).
    warnings = (await team.close(PERIOD)).json()["warnings"]
    assert [w["kind"] for w in warnings] == ["goals_unacknowledged"]
    ranking = await team.ranking(PERIOD)
    assert len(ranking["entries"]) == 3 and ranking["not_ranked"] == []  # type: ignore
