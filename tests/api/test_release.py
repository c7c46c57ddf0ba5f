"""Feedback before results: open months, releases (interview, manager, scheduler) and what an
agent sees before theirs; appeals and their decisions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from service.commands.release import release_pass
from service.store.database import Database
from tests.api.test_feedback import RECORD, slot
from tests.conftest import bearer, make_token
from tests.support.raters import train
from tests.support.scenario import ADMIN, V1, Team, make_team

PERIOD = "2026-11"
OPENED = datetime(2026, 11, 2, tzinfo=UTC)
PUBLISHED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
#: release_days (3) after the publication.
DUE = PUBLISHED + timedelta(days=3)


async def published_month(client: httpx.AsyncClient, team: Team, clock: Any,
                          scores: list[float], *, version: int | None = None,
                          period: str = PERIOD, at: datetime = PUBLISHED) -> None:
    """Open (version 2 unless told), evaluate, close and publish a month at ``at``."""
    clock.set(at - timedelta(days=29))
    await team.open(period, scheme_version=version)
    await team.evaluate_all(period, dict(zip(team.agents, scores, strict=True)))
    clock.set(at)
    closed = await team.close(period)
    assert closed.status_code == 200, closed.text
    assert (await team.publish(period)).status_code == 200


async def v2_team(client: httpx.AsyncClient, uid: str, agents: int) -> Team:
    team = await make_team(client, uid, agents)
    await train(client, team.manager_id)
    return team


async def result_events(client: httpx.AsyncClient, team: Team, agent: str,
                        period: str = PERIOD) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/streams/result:{team.team_id}:{period}:{agent}/events",
                                headers=ADMIN)
    items: list[dict[str, Any]] = response.json()["items"] if response.status_code == 200 \
        else []
    return items


async def scorecard(client: httpx.AsyncClient, team: Team, agent: str,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(team.url(PERIOD, f"/scorecards/{agent}"),
                                headers=headers or team.agent(agent))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_open_month_shows_the_agent_their_kpis_and_self_evaluation_only(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # Version 1: the rule is a defect fix and holds for every scheme version.
    app_clock.set(OPENED)
    team = await make_team(app_client, uid, 3)
    a = team.agents[0]
    await team.open(PERIOD, scheme_version=V1)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, [90, 80, 70], strict=True)))
    own = await scorecard(app_client, team, a)
    assert (own["rank"], own["composite"], own["places"], own["withheld"]) == (
        None, None, None, True)
    assert [e["rater_role"] for e in own["evaluations"]] == ["self"]
    assert set(own["components"]) == {"self"} and own["work_performance"] is None
    assert own["kpis"]["report_quality"]["value"] is None  # rated by the manager
    assert own["kpis"]["order_amount"]["target"] is not None  # targets stay
    listed = await app_client.get(team.url(PERIOD, "/evaluations"), headers=team.agent(a))
    assert [e["rater_role"] for e in listed.json()["items"]] == ["self"]
    managers = await scorecard(app_client, team, a, team.manager)
    assert managers["rank"] == 1 and managers["composite"] is not None
    assert {e["rater_role"] for e in managers["evaluations"]} == {"self", "manager"}
    assert managers["withheld"] is False


async def test_results_reach_agents_by_manager_interview_and_scheduler_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await v2_team(app_client, uid, 4)
    a, b, c, d = team.agents
    await published_month(app_client, team, app_clock, [90, 80, 70, 60])

    # Before release: 200 without the result; the ranking 403; the month's sanctions hidden.
    before = await scorecard(app_client, team, d)
    assert (before["released"], before["rank"], before["composite"]) == (False, None, None)
    assert before["release_due_at"] == "2026-12-04T09:00:00Z"
    assert [e["rater_role"] for e in before["evaluations"]] == ["self"]
    hidden = await app_client.get(f"/v1/sanctions?agent_id={d}", headers=team.agent(d))
    assert hidden.status_code == 200 and hidden.json()["items"] == []
    plan_url = team.url(PERIOD, f"/improvement-plans/{d}")
    assert (await app_client.get(plan_url, headers=team.agent(d))).status_code == 403
    listed = await app_client.get(team.url(PERIOD, "/evaluations"), headers=team.agent(d))
    assert [e["rater_role"] for e in listed.json()["items"]] == ["self"]
    refused = await app_client.get(team.url(PERIOD, "/ranking"), headers=team.agent(a))
    assert refused.status_code == 403 and refused.json()["waiting"] == 4
    # Managers (and admins, readers) see everything at publication.
    full = await scorecard(app_client, team, d, team.manager)
    assert (full["rank"], full["released"]) == (4, False)
    ledger = await app_client.get(f"/v1/sanctions?team_id={team.team_id}", headers=team.manager)
    assert {i["agent_id"] for i in ledger.json()["items"] if i["kind"] == "deduction"} == {d}
    plans = {i["agent_id"]: i for i in ledger.json()["items"] if i["kind"] == "improvement_plan"}
    # Due plan_deadline_days after the release: at the latest release until released.
    assert {a: p["due_at"] for a, p in plans.items()} == {
        c: "2026-12-11T09:00:00Z", d: "2026-12-11T09:00:00Z"}
    assert "7 days after the result's release" in plans[d]["reason"]
    waiting = await app_client.get(team.url(PERIOD, "/interviews"), headers=team.manager)
    assert waiting.json()["waiting_for_result"] == sorted(team.agents)
    assert waiting.json()["release_due_at"] == "2026-12-04T09:00:00Z"

    # A manager releases d; a second release records nothing.
    app_clock.set(PUBLISHED + timedelta(hours=1))
    url = team.url(PERIOD, f"/releases/{d}")
    assert (await app_client.post(url, headers=team.agent(d))).status_code == 403
    released = await app_client.post(url, headers=team.manager)
    assert released.status_code == 200, released.text
    assert released.json() == {**released.json(), "released": True, "by": "manager",
                               "released_by": team.manager_id,
                               "appeal_until": "2026-12-06T10:00:00Z",
                               "plan_due_at": "2026-12-08T10:00:00Z"}
    assert (await app_client.post(url, headers=team.manager)).json()["by"] == "manager"
    assert [e["type"] for e in await result_events(app_client, team, d)] == ["ResultReleased"]
    after = await scorecard(app_client, team, d)
    assert (after["released"], after["rank"], after["withheld"]) == (True, 4, False)
    shown = await app_client.get(f"/v1/sanctions?agent_id={d}", headers=team.agent(d))
    assert "deduction" in {i["kind"] for i in shown.json()["items"]}
    plan = await app_client.get(plan_url, headers=team.agent(d))
    assert plan.json()["due_at"] == "2026-12-08T10:00:00Z"
    listed = await app_client.get(team.url(PERIOD, "/evaluations"), headers=team.agent(d))
    assert {e["rater_role"] for e in listed.json()["items"]} == {"self", "manager"}
    assert {i["due_at"] for i in shown.json()["items"] if i["kind"] == "improvement_plan"} == {
        "2026-12-08T10:00:00Z"}

    # b's interview is recorded as held: that releases b.
    start = PUBLISHED + timedelta(hours=2)
    interview = team.url(PERIOD, f"/interviews/{b}")
    assert (await app_client.post(interview, json=slot(start), headers=team.manager)
            ).status_code == 201
    app_clock.set(start + timedelta(minutes=50))
    assert (await app_client.put(interview + "/record", json=RECORD, headers=team.manager)
            ).status_code == 200
    events = await result_events(app_client, team, b)
    assert [(e["type"], e["data"]["by"]) for e in events] == [("ResultReleased", "interview")]
    assert (await app_client.get(team.url(PERIOD, "/ranking"), headers=team.agent(b))
            ).status_code == 403

    # The service was down at the due time: the next pass releases a and c, once.
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    app_clock.set(DUE - timedelta(seconds=1))
    await release_pass(ctx)
    assert await result_events(app_client, team, a) == []
    app_clock.set(DUE + timedelta(days=2))
    await release_pass(ctx)
    await release_pass(ctx)
    for agent in (a, c):
        events = await result_events(app_client, team, agent)
        assert [(e["type"], e["data"]["by"]) for e in events] == [
            ("ResultReleased", "automatic")]
        assert events[0]["metadata"]["actor"]["subject"] == "scheduler"
    assert len(await result_events(app_client, team, d)) == 1
    # c's plan: seven days after the automatic release; overdue scanning follows that date.
    plans_now = await app_client.get(f"/v1/sanctions?team_id={team.team_id}"
                                     "&kind=improvement_plan", headers=team.manager)
    assert {i["agent_id"]: i["due_at"] for i in plans_now.json()["items"]} == {
        c: "2026-12-13T09:00:00Z", d: "2026-12-08T10:00:00Z"}
    app_clock.set(datetime(2026, 12, 9, tzinfo=UTC))
    overdue = await app_client.get(f"/v1/sanctions?team_id={team.team_id}&status=overdue",
                                   headers=team.manager)
    assert [i["agent_id"] for i in overdue.json()["items"]] == [d]
    ranking = await app_client.get(team.url(PERIOD, "/ranking"), headers=team.agent(a))
    assert ranking.status_code == 200 and len(ranking.json()["entries"]) == 4
    feed = await app_client.get("/v1/events?type=ResultReleased&limit=1000", headers=ADMIN)
    assert {e["data"]["agent_id"] for e in feed.json()["items"]} >= set(team.agents)


async def test_concurrent_release_and_interview_record_release_once(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await v2_team(app_client, uid, 3)
    a = team.agents[0]
    await published_month(app_client, team, app_clock, [90, 80, 70])
    interview = team.url(PERIOD, f"/interviews/{a}")
    start = PUBLISHED + timedelta(hours=1)
    await app_client.post(interview, json=slot(start), headers=team.manager)
    app_clock.set(start + timedelta(minutes=30))
    answers = await asyncio.gather(
        app_client.post(team.url(PERIOD, f"/releases/{a}"), headers=team.manager),
        app_client.put(interview + "/record", json=RECORD, headers=team.manager),
    )
    assert [x.status_code for x in answers] == [200, 200]
    assert [e["type"] for e in await result_events(app_client, team, a)] == ["ResultReleased"]


async def test_version_1_publication_releases_everyone(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 3)
    a = team.agents[0]
    await published_month(app_client, team, app_clock, [90, 80, 70], version=V1)
    own = await scorecard(app_client, team, a)
    assert (own["released"], own["rank"], own["release_due_at"]) == (True, 1, None)
    assert (await app_client.get(team.url(PERIOD, "/ranking"), headers=team.agent(a))
            ).status_code == 200
    release = await app_client.get(team.url(PERIOD, f"/releases/{a}"), headers=team.agent(a))
    assert release.json() == {**release.json(), "released": True, "by": "publication",
                              "appeal_until": "2026-12-06T09:00:00Z"}
    assert await result_events(app_client, team, a) == []


async def test_releasing_an_agent_who_is_not_ranked_says_why(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await v2_team(app_client, uid, 4)
    away = team.agents[3]
    app_clock.set(OPENED)
    assert (await app_client.put(
        f"/v1/agents/{away}/absences/leave", headers=team.manager,
        json={"from": "2026-10-01", "to": "2026-12-31", "kind": "leave"})).status_code == 201
    await published_month(app_client, team, app_clock, [90, 80, 70, 60])
    released = await app_client.post(team.url(PERIOD, f"/releases/{away}"),
                                     headers=team.manager)
    assert released.status_code == 200, released.text
    assert released.json()["not_ranked"].startswith("active 0 of 30 days")
    own = await scorecard(app_client, team, away)
    assert own["released"] is True and own["rank"] is None
    assert own["eligibility"]["ranked"] is False
    assert any("not ranked" in n for n in own["notes"])
    # The not-ranked agent does not hold the team's ranking back.
    for agent in team.agents[:3]:
        await app_client.post(team.url(PERIOD, f"/releases/{agent}"), headers=team.manager)
    assert (await app_client.get(team.url(PERIOD, "/ranking"), headers=team.agent(away))
            ).status_code == 200


async def test_appeals_once_by_the_agent_within_the_window(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await v2_team(app_client, uid, 3)
    a, b, c = team.agents
    await published_month(app_client, team, app_clock, [90, 80, 70])
    body = {"reason": "my October data was counted in November"}
    url = team.url(PERIOD, f"/appeals/{c}")
    unreleased = await app_client.post(url, json=body, headers=team.agent(c))
    assert unreleased.status_code == 409 and "not been released" in unreleased.json()["detail"]
    app_clock.set(PUBLISHED + timedelta(hours=1))
    await app_client.post(team.url(PERIOD, f"/releases/{c}"), headers=team.manager)
    await app_client.post(team.url(PERIOD, f"/releases/{b}"), headers=team.manager)
    assert (await app_client.post(url, json=body, headers=team.agent(a))).status_code == 403
    assert (await app_client.post(url, json=body, headers=team.manager)).status_code == 403
    assert (await app_client.post(url, json={"reason": ""}, headers=team.agent(c))
            ).status_code == 422
    filed = await app_client.post(url, json=body, headers=team.agent(c))
    assert filed.status_code == 201, filed.text
    assert filed.json() == {**filed.json(), "status": "open", "agent_id": c,
                            "appeal_id": f"{team.team_id}:{PERIOD}:{c}"}
    again = await app_client.post(url, json=body, headers=team.agent(c))
    assert again.status_code == 409 and "once" in again.json()["detail"]
    # b's window: five days after their release, to the second.
    late_url = team.url(PERIOD, f"/appeals/{b}")
    app_clock.set(PUBLISHED + timedelta(hours=1, days=5, seconds=1))
    late = await app_client.post(late_url, json=body, headers=team.agent(b))
    assert late.status_code == 409
    assert late.json()["window_closed_at"] == "2026-12-06T10:00:00+00:00"
    assert "2026-12-06T10:00:00+00:00" in late.json()["detail"]
    listed = await app_client.get(f"/v1/appeals?team_id={team.team_id}&status=open",
                                  headers=team.manager)
    assert [i["agent_id"] for i in listed.json()["items"]] == [c]
    own = await app_client.get("/v1/appeals", headers=team.agent(b))
    assert own.json()["items"] == []
    csv = await app_client.get(f"/v1/appeals?team_id={team.team_id}",
                               headers={**team.manager, "Accept": "text/csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("appeal_id,team_id")


async def test_appeal_decisions_uphold_with_a_note_amend_reopens_never_by_the_appellant(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await v2_team(app_client, uid, 4)
    c, d = team.agents[2:]
    # Agent d is also a manager of the team ("playing manager").
    assert (await app_client.put(
        f"/v1/teams/{team.team_id}", headers=ADMIN,
        json={"name": "T", "timezone": "Asia/Seoul", "currency": "CNY",
              "manager_ids": [team.manager_id, d]})).status_code == 200
    await published_month(app_client, team, app_clock, [90, 80, 70, 60])
    app_clock.set(PUBLISHED + timedelta(hours=1))
    for agent in (c, d):
        await app_client.post(team.url(PERIOD, f"/releases/{agent}"), headers=team.manager)
        filed = await app_client.post(team.url(PERIOD, f"/appeals/{agent}"),
                                      json={"reason": "recount please"}, headers=team.agent(agent))
        assert filed.status_code == 201, filed.text
    d_appeal, c_appeal = (f"{team.team_id}:{PERIOD}:{d}", f"{team.team_id}:{PERIOD}:{c}")
    own = await app_client.post(f"/v1/appeals/{d_appeal}/decision",
                                json={"decision": "uphold", "note": "fine"},
                                headers=team.agent(d))
    assert own.status_code == 403
    as_manager = await app_client.post(
        f"/v1/appeals/{d_appeal}/decision", json={"decision": "uphold", "note": "fine"},
        headers=bearer(make_token("manager", d)))
    assert as_manager.status_code == 403
    assert as_manager.json()["type"].endswith("conflict-of-interest")
    bare = await app_client.post(f"/v1/appeals/{d_appeal}/decision",
                                 json={"decision": "uphold"}, headers=team.manager)
    assert bare.status_code == 422 and bare.json()["errors"][0]["field"] == "note"
    upheld = await app_client.post(f"/v1/appeals/{d_appeal}/decision",
                                   json={"decision": "uphold", "note": "the data stand"},
                                   headers=team.manager)
    assert upheld.status_code == 200, upheld.text
    assert (upheld.json()["status"], upheld.json()["decided_by"]) == ("upheld", team.manager_id)
    twice = await app_client.post(f"/v1/appeals/{d_appeal}/decision",
                                  json={"decision": "amend", "note": "x"}, headers=team.manager)
    assert twice.status_code == 409
    amended = await app_client.post(f"/v1/appeals/{c_appeal}/decision",
                                    json={"decision": "amend", "note": "October data"},
                                    headers=ADMIN)
    assert amended.status_code == 200, amended.text
    assert (amended.json()["status"], amended.json()["cycle_status"]) == ("amended", "open")
    history = await app_client.get(f"/v1/streams/cycle:{team.team_id}:{PERIOD}/events"
                                   "?limit=1000", headers=ADMIN)
    reopened = [e for e in history.json()["items"] if e["type"] == "CycleReopened"]
    assert reopened[0]["data"]["reason"] == f"appeal {c_appeal} amended: October data"
    listed = await app_client.get(f"/v1/appeals?team_id={team.team_id}", headers=ADMIN)
    assert {(i["agent_id"], i["status"]) for i in listed.json()["items"]} == {
        (c, "amended"), (d, "upheld")}



async def test_reward_and_deduction_entries_are_final_once_the_window_passes_or_appeal_decided(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any, db: Database
) -> None:
    team = await v2_team(app_client, uid, 4)
    a, _, c, d = team.agents
    await published_month(app_client, team, app_clock, [90, 80, 70, 60])
    app_clock.set(PUBLISHED + timedelta(minutes=10))
    for agent in team.agents:
        await app_client.post(team.url(PERIOD, f"/releases/{agent}"), headers=team.manager)
    for agent in (c, d):
        assert (await app_client.post(team.url(PERIOD, f"/appeals/{agent}"), headers=team.agent(
            agent), json={"reason": "recount"})).status_code == 201
    payroll = f"/v1/payroll?period={PERIOD}&team_id={team.team_id}"

    async def finals(query: str = "") -> dict[str, bool]:
        response = await app_client.get(payroll + query, headers=team.manager)
        assert response.status_code == 200, response.text
        return {line["agent_id"]: line["final"] for line in response.json()["lines"]}

    assert await finals() == {a: False, d: False}
    assert await finals("&final=true") == {}
    # Decided appeals are final at once; a's window passes unused five days after release.
    app_clock.set(PUBLISHED + timedelta(minutes=20))
    assert (await app_client.post(f"/v1/appeals/{team.team_id}:{PERIOD}:{d}/decision",
                                  json={"decision": "uphold", "note": "the data stand"},
                                  headers=team.manager)).status_code == 200
    assert await finals() == {a: False, d: True}
    app_clock.set(PUBLISHED + timedelta(minutes=10, days=5, seconds=1))
    assert await finals() == {a: True, d: True}
    only = await app_client.get(payroll + "&final=true", headers={**team.manager,
                                                                   "Accept": "text/csv"})
    assert only.text.splitlines()[0].endswith(",final") and len(only.text.splitlines()) == 3
    # c's appeal is open: nothing of c's month is final (their improvement plan included).
    ledger = await app_client.get(f"/v1/sanctions?team_id={team.team_id}&final=false",
                                  headers=team.manager)
    assert {i["agent_id"] for i in ledger.json()["items"]} == {c}
    # BI: the views compare the stored moment with the database's clock.
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT agent_id, final FROM reporting.sanctions"
                                " WHERE team_id = $1", team.team_id)
        lines = await conn.fetch("SELECT agent_id, final FROM reporting.payroll"
                                 " WHERE team_id = $1", team.team_id)
    assert {r["agent_id"]: r["final"] for r in rows if r["agent_id"] in (c, d)} == {
        c: False, d: True}
    assert {r["agent_id"]: r["final"] for r in lines}[d] is True


async def test_a_goal_dispute_blocks_a_plain_close_and_unacknowledged_goals_stay_visible(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(OPENED)
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await team.open(PERIOD, scheme_version=V1)
    goals = team.url(PERIOD, "/goals")
    assert (await app_client.post(f"{goals}/{a}/acknowledge", headers=team.agent(a))
            ).status_code == 200
    assert (await app_client.post(f"{goals}/{b}/dispute", headers=team.agent(b),
                                  json={"comment": "the order target ignores the low season"})
            ).status_code == 200
    await team.evaluate_all(PERIOD, {a: 90, b: 80, c: 70})
    refused = await team.close(PERIOD)
    assert refused.status_code == 409, refused.text
    assert refused.json()["goals_disputed"] == [b] and b in refused.json()["detail"]
    no_reason = await team.close(PERIOD, force=True)
    assert no_reason.status_code == 422
    forced = await team.close(PERIOD, force=True, reason="payroll cut-off; dispute heard later")
    assert forced.status_code == 200, forced.text
    kinds = {w["kind"]: w for w in forced.json()["warnings"]}
    assert kinds["goals_unacknowledged"]["agents"] == [c]
    assert kinds["goals_disputed"]["agents"] == [b]
    assert forced.json()["close_reason"] == "payroll cut-off; dispute heard later"
    month = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert (month["goals_unacknowledged"], month["goals_disputed"]) == ([c], [b])
    cards = {agent: await scorecard(app_client, team, agent, team.manager)
             for agent in team.agents}
    assert {agent: card["goals_status"] for agent, card in cards.items()} == {
        a: "acknowledged", b: "disputed", c: "pending"}


async def test_an_amended_appeal_corrects_the_month_and_a_later_streak_follows(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # Version 1 (released at publication: the window runs from it); c is last three months.
    team = await make_team(app_client, uid, 3)
    c = team.agents[2]
    published = {"2026-09": datetime(2026, 10, 3, 9, tzinfo=UTC),
                 "2026-10": datetime(2026, 11, 3, 9, tzinfo=UTC),
                 "2026-11": datetime(2026, 11, 4, 9, tzinfo=UTC)}
    for month, at in published.items():
        await published_month(app_client, team, app_clock, [90, 80, 70], version=V1,
                              period=month, at=at)
    reviews = await app_client.get(f"/v1/sanctions?team_id={team.team_id}&period=2026-11"
                                   "&kind=reassignment_review", headers=team.manager)
    assert [(i["agent_id"], i["status"]) for i in reviews.json()["items"]] == [(c, "open")]
    app_clock.set(datetime(2026, 11, 5, 9, tzinfo=UTC))
    filed = await app_client.post(team.url("2026-10", f"/appeals/{c}"), headers=team.agent(c),
                                  json={"reason": "my October scores were keyed for b"})
    assert filed.status_code == 201, filed.text
    appeal = filed.json()["appeal_id"]
    amended = await app_client.post(f"/v1/appeals/{appeal}/decision", headers=team.manager,
                                    json={"decision": "amend", "note": "scores swapped"})
    assert amended.json()["cycle_status"] == "open"
    # The manager revises, closes and publishes again: every consequence is re-derived.
    await team.evaluate_all("2026-10", {c: 95})
    assert (await team.close("2026-10")).status_code == 200
    assert (await team.publish("2026-10")).status_code == 200
    october = await app_client.get(f"/v1/sanctions?team_id={team.team_id}&period=2026-10",
                                   headers=team.manager)
    reversal = next(i for i in october.json()["items"] if i["agent_id"] == c
                    and i["kind"] == "deduction" and i["entry"] == "reversal")
    assert f"appeal {appeal} amended: scores swapped" in reversal["reason"]
    november = await app_client.get(f"/v1/sanctions?team_id={team.team_id}&period=2026-11"
                                    "&kind=reassignment_review", headers=team.manager)
    grant, cancellation = november.json()["items"]
    assert grant["status"] == "cancelled" and cancellation["reverses"] == grant["id"]
    assert f"appeal {appeal} amended" in cancellation["reason"]
    # The decided appeal makes c's October final; the feed carries the appeal's events.
    assert all(i["final"] for i in october.json()["items"] if i["agent_id"] == c)
    for kind in ("AppealFiled", "AppealDecided"):
        feed = await app_client.get(f"/v1/events?limit=1000&type={kind}", headers=ADMIN)
        assert [e["data"]["appeal_id"] for e in feed.json()["items"]].count(appeal) == 1
    assert [e["type"] for e in await result_events(app_client, team, c, "2026-10")] == [
        "AppealFiled", "AppealDecided"]
