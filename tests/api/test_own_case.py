"""Nobody judges their own case; a refused untrained rater is told how to get trained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import TestClock as PinnedClock
from tests.conftest import bearer, make_token
from tests.support.raters import scheme_with, train, use_scheme
from tests.support.scenario import ADMIN, MANAGER_FORM, Team, make_team

PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
FORM = {"scores": dict.fromkeys(MANAGER_FORM, 70)}
PLAN = {"root_causes": "too few follow-ups",
        "actions": [{"action": "call back within a day", "due_date": "2027-01-15"}]}


def manager(subject: str) -> dict[str, str]:
    return bearer(make_token("manager", subject))


async def playing_team(client: httpx.AsyncClient, uid: str, *, other_manager: bool
                       ) -> tuple[Team, str]:
    """A team of three whose manager p is also one of its agents (and perhaps a second one)."""
    team = await make_team(client, uid, 2)
    player = f"p-{uid}"
    managers = [player] + ([team.manager_id] if other_manager else [])
    updated = await client.put(f"/v1/teams/{team.team_id}",
                               json={"name": "Playing", "manager_ids": managers}, headers=ADMIN)
    assert updated.status_code == 200, updated.text
    added = await client.put(f"/v1/agents/{player}",
                             json={"name": "Player", "team_id": team.team_id}, headers=ADMIN)
    assert added.status_code == 201, added.text
    team.manager_id = player
    team.agents.append(player)
    return team, player


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("conflict-of-interest"), body
    return body


async def test_a_playing_manager_alone_is_rated_by_an_admin_and_by_nobody_else(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    team, player = await playing_team(app_client, uid, other_manager=False)
    await team.open("2026-11")
    url = team.url("2026-11", f"/evaluations/{player}/manager")
    refused = _problem(await app_client.put(url, json=FORM, headers=manager(player)))
    assert "an admin" in refused["detail"] and player in refused["detail"]
    assert refused["may_act"] == ["admin"]
    # a manager of another team is out of scope, not a way round the rule
    other = await make_team(app_client, uid + "o", 1)
    assert (await app_client.put(url, json=FORM, headers=other.manager)).status_code == 403
    # nor does the player's own self-evaluation count as the manager's
    assert (await app_client.put(url, json=FORM, headers=team.agent(player))).status_code == 403
    rated = await app_client.put(url, json=FORM, headers=ADMIN)
    assert rated.status_code == 200, rated.text
    assert rated.json()["rater_role"] == "manager" and rated.json()["rater_id"] != player
    # his own self-evaluation stays his; he still rates his agents as their manager
    await team.self_eval("2026-11", player, 90)
    await team.manager_eval("2026-11", team.agents[0], 80)


async def test_another_manager_of_the_team_rates_the_playing_manager(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    team, player = await playing_team(app_client, uid, other_manager=True)
    colleague = f"m-{uid}"
    await team.open("2026-11")
    url = team.url("2026-11", f"/evaluations/{player}/manager")
    refused = _problem(await app_client.put(url, json=FORM, headers=manager(player)))
    assert f"another manager of team {team.team_id} ({colleague})" in refused["detail"]
    assert refused["may_act"] == [colleague, "admin"]
    rated = await app_client.put(url, json=FORM, headers=manager(colleague))
    assert rated.status_code == 200, rated.text
    assert rated.json()["rater_id"] == colleague


async def _player_last_three_months(client: httpx.AsyncClient, team: Team, player: str,
                                    clock: PinnedClock) -> None:
    colleague = manager(f"m-{team.team_id.removeprefix('t-')}")
    for i, month in enumerate(("2026-09", "2026-10", "2026-11")):
        clock.set(PUBLISHED + timedelta(days=31 * i - 62))
        await team.open(month)
        for agent_id, score in zip(team.agents, (90, 80, 50), strict=True):
            await team.self_eval(month, agent_id, score)
            rater = colleague if agent_id == player else team.manager
            response = await client.put(team.url(month, f"/evaluations/{agent_id}/manager"),
                                        json={"scores": dict.fromkeys(MANAGER_FORM, score)},
                                        headers=rater)
            assert response.status_code == 200, response.text
        assert (await team.close(month)).status_code == 200
        assert (await team.publish(month)).status_code == 200


async def test_nobody_reviews_their_own_plan_or_decides_their_own_review(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team, player = await playing_team(app_client, uid, other_manager=True)
    await _player_last_three_months(app_client, team, player, app_clock)
    plan = team.url("2026-11", f"/improvement-plans/{player}")
    submitted = await app_client.put(plan, json=PLAN, headers=team.agent(player))
    assert submitted.status_code == 200, submitted.text
    review = {"decision": "approved", "comment": "fine"}
    refused = _problem(await app_client.post(plan + "/review", json=review,
                                             headers=manager(player)))
    assert "review the improvement plan" in refused["detail"]
    approved = await app_client.post(plan + "/review", json=review,
                                     headers=manager(f"m-{uid}"))
    assert approved.status_code == 200, approved.text

    decision = f"/v1/reassignment-reviews/{team.team_id}:2026-11:{player}/decision"
    body = {"decision": "retain", "note": "I am doing fine"}
    refused = _problem(await app_client.post(decision, json=body, headers=manager(player)))
    assert "decide the reassignment review" in refused["detail"]
    assert (await app_client.post(decision, json=body, headers=ADMIN)).status_code == 200


async def test_an_untrained_manager_is_told_which_topics_and_where_to_record_them(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    scheme_id = f"trained-managers-{uid}"
    await scheme_with(app_client, scheme_id, {"self": 0.3, "manager": 0.7},
                      requires_training=["manager"])
    team = await make_team(app_client, uid, 1)
    await use_scheme(app_client, team.team_id, scheme_id)
    await team.open("2026-11")
    agent = team.agents[0]
    await train(app_client, team.manager_id, topics=("ethics", "tools"))
    url = team.url("2026-11", f"/evaluations/{agent}/manager")
    refused = await app_client.put(url, json=FORM, headers=team.manager)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["missing_training"] == ["criteria", "policy"]
    assert body["record_with"] == [f"PUT /v1/training/{team.manager_id}/criteria",
                                   f"PUT /v1/training/{team.manager_id}/policy"]
    assert "criteria, policy" in body["detail"]
    assert f"PUT /v1/training/{team.manager_id}/criteria" in body["detail"]
    await train(app_client, team.manager_id, topics=("criteria", "policy"))
    assert (await app_client.put(url, json=FORM, headers=team.manager)).status_code == 200


async def test_an_evaluation_after_the_deadline_is_accepted_and_marked_late(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    # Seoul: November's deadline is the end of 7 December, 2026-12-07T15:00:00Z
    app_clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await team.open("2026-11")
    on_time = await team.self_eval("2026-11", a, 80)
    assert (on_time.json()["late"], on_time.json()["deadline"]) == (False,
                                                                   "2026-12-07T15:00:00Z")
    app_clock.set(datetime(2026, 12, 7, 15, 0, tzinfo=UTC))
    assert (await team.manager_eval("2026-11", a, 80)).json()["late"] is False
    app_clock.set(datetime(2026, 12, 7, 15, 0, 1, tzinfo=UTC))
    late = await team.manager_eval("2026-11", b, 70)
    assert (late.json()["late"], late.json()["deadline"]) == (True, "2026-12-07T15:00:00Z")
    for agent_id, score in ((b, 70), (c, 60)):
        await team.self_eval("2026-11", agent_id, score)
    await team.manager_eval("2026-11", c, 60)

    cycle = (await app_client.get(team.url("2026-11"), headers=team.manager)).json()
    warning = next(w for w in cycle["warnings"] if w["kind"] == "evaluations_late")
    assert warning["deadline"] == "2026-12-07T15:00:00+00:00"
    assert {(e["agent_id"], e["rater_role"]) for e in warning["evaluations"]} == {
        (b, "manager"), (b, "self"), (c, "self"), (c, "manager")}
    assert all("rater_id" not in e for e in warning["evaluations"])
    # on the scorecard, open and then frozen at close
    assert (await team.close("2026-11")).status_code == 200
    card = (await app_client.get(team.url("2026-11", f"/scorecards/{b}"),
                                 headers=team.manager)).json()
    assert {e["rater_role"]: e["late"] for e in card["evaluations"]} == {"self": True,
                                                                        "manager": True}
    card = (await app_client.get(team.url("2026-11", f"/scorecards/{a}"),
                                 headers=team.manager)).json()
    assert {e["rater_role"]: e["late"] for e in card["evaluations"]} == {"self": False,
                                                                        "manager": False}
    closed = (await app_client.get(team.url("2026-11"), headers=team.manager)).json()
    assert "evaluations_late" in {w["kind"] for w in closed["warnings"]}
