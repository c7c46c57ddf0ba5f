"""Process monitoring through the API: what drifts from the plan, per cycle and per team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.raters import invite, train
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
DEADLINE = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # the 7th, end of day in Seoul


def kinds(cycle: dict[str, Any]) -> set[str]:
    return {w["kind"] for w in cycle["warnings"]}


async def test_an_open_cycle_warns_about_goals_evaluations_and_invited_ratings(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(datetime(2026, 11, 3, tzinfo=UTC))
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    await team.open(PERIOD)
    r = f"r-{uid}"
    await train(app_client, r)
    assert (await invite(app_client, team.url(PERIOD), team.manager, r, "customer", [a])
            ).status_code == 200
    early = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert "goals_unacknowledged" in kinds(early)
    assert not kinds(early) & {"evaluations_due_soon", "invited_ratings_due_soon"}
    await app_client.post(team.url(PERIOD, f"/goals/{a}/acknowledge"), headers=team.agent(a))
    await app_client.post(team.url(PERIOD, f"/goals/{b}/acknowledge"), headers=team.agent(b))
    await team.evaluate_all(PERIOD, {a: 80})
    app_clock.set(DEADLINE - timedelta(days=1))
    near = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert "goals_unacknowledged" not in kinds(near) and near["goals_unacknowledged"] == []
    due = next(w for w in near["warnings"] if w["kind"] == "evaluations_due_soon")
    assert {(m["agent_id"], m["rater_role"]) for m in due["missing"]} == {
        (b, "self"), (b, "manager")}
    invited = next(w for w in near["warnings"] if w["kind"] == "invited_ratings_due_soon")
    assert invited["missing"] == [{"rater_id": r, "rater_role": "customer", "agent_id": a}]
    app_clock.set(DEADLINE + timedelta(hours=1))
    late = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert {"evaluations_overdue", "invited_ratings_overdue"} <= kinds(late)


async def test_a_published_cycle_warns_about_interviews_and_overdue_plans(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    published = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    app_clock.set(published)
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, {a: 90, b: 80, c: 70})
    assert (await team.close(PERIOD)).status_code == 200
    closed = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    # Nobody acknowledged their goals: that stays visible on the closed month (issue 16).
    assert [w["kind"] for w in closed["warnings"]] == ["goals_unacknowledged"]
    assert closed["goals_unacknowledged"] == [a, b, c] and closed["interviews_missing"] == []
    assert (await team.publish(PERIOD)).status_code == 200
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["interviews_missing"] == [a, b, c]
    missing = next(w for w in cycle["warnings"] if w["kind"] == "interviews_missing")
    assert {m["status"] for m in missing["missing"]} == {"unscheduled"}
    start = published + timedelta(days=1)
    scheduled = await app_client.post(
        team.url(PERIOD, f"/interviews/{a}"), headers=team.manager,
        json={"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1))
              .isoformat(), "place": "room 1"})
    assert scheduled.status_code == 201
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    statuses = {m["agent_id"]: m["status"] for m in next(
        w for w in cycle["warnings"] if w["kind"] == "interviews_missing")["missing"]}
    assert statuses == {a: "scheduled", b: "unscheduled", c: "unscheduled"}

    app_clock.set(published + timedelta(days=8))
    late = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert "interviews_overdue" in kinds(late)
    plans = next(w for w in late["warnings"] if w["kind"] == "plans_overdue")
    assert {p["agent_id"] for p in plans["plans"]} == {b, c}

    overview = await app_client.get(f"/v1/teams/{team.team_id}/overview", headers=team.manager)
    assert overview.status_code == 200, overview.text
    months = overview.json()["cycles"]
    assert [(m["period"], m["status"]) for m in months] == [(PERIOD, "published")]
    assert {"interviews_overdue", "plans_overdue"} <= {w["kind"] for w in months[0]["warnings"]}
    assert months[0]["interviews_missing"] == [a, b, c]


async def test_the_team_overview_lists_each_cycle_newest_first(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(datetime(2026, 11, 3, tzinfo=UTC))
    team = await make_team(app_client, uid, 1)
    other = await make_team(app_client, uid + "o", 1)
    a = team.agents[0]
    await team.open("2026-10")
    await team.evaluate_all("2026-10", {a: 70})
    assert (await team.close("2026-10")).status_code == 200
    await team.open(PERIOD)
    url = f"/v1/teams/{team.team_id}/overview"
    body = (await app_client.get(url, headers=team.manager)).json()
    assert [(m["period"], m["status"]) for m in body["cycles"]] == [
        (PERIOD, "open"), ("2026-10", "closed")]
    assert body["cycles"][0]["goals_unacknowledged"] == [a]
    one = (await app_client.get(url + "?months=1", headers=ADMIN)).json()
    assert len(one["cycles"]) == 1
    assert (await app_client.get(url + "?months=0", headers=ADMIN)).status_code == 422
    assert (await app_client.get(url, headers=other.manager)).status_code == 403
    assert (await app_client.get(url, headers=team.agent(a))).status_code == 403
    assert (await app_client.get(f"/v1/teams/none-{uid}/overview", headers=ADMIN)
            ).status_code == 404
