"""Participatory goals through the API: issued targets, acknowledgement, disputes, scoring."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def goals_url(team: Any, agent_id: str = "", action: str = "") -> str:
    tail = f"/goals/{agent_id}" if agent_id else "/goals"
    return team.url(PERIOD, tail + (f"/{action}" if action else ""))


async def test_targets_are_issued_per_position_and_the_cycle_shows_who_has_not_acknowledged(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    await team.open(PERIOD)
    goals = await app_client.get(goals_url(team, a), headers=team.agent(a))
    assert goals.status_code == 200, goals.text
    body = goals.json()
    assert body["status"] == "pending" and body["position"] == "pre-sale"
    assert (body["scheme_id"], body["scheme_version"]) == ("online-shop-cs", 1)
    conversion = body["targets"]["conversion_rate"]
    assert (conversion["target"], conversion["floor"], conversion["weight"]) == (0.3, 0.05, 0.15)
    assert conversion["direction"] == "higher" and conversion["adjusted"] is False
    assert body["targets"]["report_quality"]["kind"] == "rated"
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["goals_unacknowledged"] == [a, b]
    warning = next(w for w in cycle["warnings"] if w["kind"] == "goals_unacknowledged")
    assert warning["agents"] == [a, b]

    acknowledged = await app_client.post(goals_url(team, a, "acknowledge"),
                                         json={"comment": "fair"}, headers=team.agent(a))
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledged_at"] == "2026-11-20T09:00:00Z"
    again = await app_client.post(goals_url(team, a, "acknowledge"), headers=team.agent(a))
    assert again.status_code == 200 and len(again.json()["history"]) == 1
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["goals_unacknowledged"] == [b]
    listed = await app_client.get(goals_url(team), headers=team.manager)
    assert {i["agent_id"]: i["status"] for i in listed.json()["items"]} == {
        a: "acknowledged", b: "pending"}


async def test_only_the_agent_acknowledges_or_disputes_their_goals(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "o", 1)
    a, b = team.agents
    await team.open(PERIOD)
    for headers in (team.agent(b), team.manager, ADMIN, other.agent(other.agents[0])):
        for action, body in (("acknowledge", {}), ("dispute", {"comment": "too high"})):
            response = await app_client.post(goals_url(team, a, action), json=body,
                                             headers=headers)
            assert response.status_code == 403, (action, response.text)
    # reading: the agent, the team's managers; not another agent or another team's manager
    assert (await app_client.get(goals_url(team, a), headers=team.agent(b))).status_code == 403
    assert (await app_client.get(goals_url(team, a), headers=other.manager)).status_code == 403
    assert (await app_client.get(goals_url(team), headers=team.agent(a))).status_code == 403
    # an agent of another team has no goals here
    stranger = other.agents[0]
    response = await app_client.post(goals_url(team, stranger, "acknowledge"),
                                     headers=bearer(make_token("agent", stranger)))
    assert response.status_code == 404


async def test_a_dispute_is_resolved_by_a_manager_and_adjusted_targets_score(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    await team.open(PERIOD)
    bad = [
        ({"comment": ""}, "comment"),
        ({"comment": "   "}, "comment"),
        ({"comment": "no", "kpis": ["happiness"]}, "kpis[0]"),
    ]
    for body, field in bad:
        response = await app_client.post(goals_url(team, b, "dispute"), json=body,
                                         headers=team.agent(b))
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}
    nothing = await app_client.post(goals_url(team, b, "resolve"), headers=team.manager,
                                    json={"decision": "kept", "reason": "no dispute"})
    assert nothing.status_code == 409
    disputed = await app_client.post(
        goals_url(team, b, "dispute"), headers=team.agent(b),
        json={"comment": "order amount target is unreachable in low season",
              "kpis": ["order_amount"]})
    assert disputed.status_code == 200, disputed.text
    assert disputed.json()["status"] == "disputed"
    assert disputed.json()["dispute"]["kpis"] == ["order_amount"]
    twice = await app_client.post(goals_url(team, b, "dispute"), headers=team.agent(b),
                                  json={"comment": "again"})
    assert twice.status_code == 409
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["goals_disputed"] == [b]
    assert any(w["kind"] == "goals_disputed" for w in cycle["warnings"])

    invalid = [
        ({"decision": "adjusted", "reason": "x"}, "targets"),
        ({"decision": "kept", "reason": "x", "targets": {"order_amount": {"target": 1}}},
         "targets"),
        ({"decision": "adjusted", "reason": "x",
          "targets": {"order_amount": {"target": -5}}}, "targets.order_amount.target"),
        ({"decision": "adjusted", "reason": "x",
          "targets": {"report_quality": {"target": 50}}}, "targets.report_quality"),
        ({"decision": "adjusted", "reason": "x", "targets": {"happiness": {"target": 1}}},
         "targets.happiness"),
        ({"decision": "adjusted", "reason": "x", "targets": {"order_amount": {}}},
         "targets.order_amount"),
        ({"decision": "adjusted", "reason": "", "targets": {"order_amount": {"target": 1}}},
         "reason"),
        ({"decision": "maybe", "reason": "x"}, "decision"),
    ]
    for body, field in invalid:
        response = await app_client.post(goals_url(team, b, "resolve"), json=body,
                                         headers=team.manager)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    other = await make_team(app_client, uid + "o", 1)
    assert (await app_client.post(
        goals_url(team, b, "resolve"), headers=other.manager,
        json={"decision": "kept", "reason": "x"})).status_code == 403

    resolved = await app_client.post(
        goals_url(team, b, "resolve"), headers=team.manager,
        json={"decision": "adjusted", "targets": {"order_amount": {"target": 25000}},
              "reason": "low season: half the usual target"})
    assert resolved.status_code == 200, resolved.text
    goals = resolved.json()
    assert goals["status"] == "pending"  # the agent acknowledges the outcome
    assert goals["targets"]["order_amount"]["target"] == 25000
    assert goals["targets"]["order_amount"]["adjusted"] is True
    assert [h["type"] for h in goals["history"]] == ["GoalsDisputed", "GoalDisputeResolved"]
    assert goals["history"][1]["resolved_by"] == team.manager_id
    acknowledged = await app_client.post(goals_url(team, b, "acknowledge"),
                                         headers=team.agent(b))
    assert acknowledged.json()["status"] == "acknowledged"

    # The adjusted target applies to b's scoring only: both sold 25000.
    source = f"shop-{uid}"
    samples = [{"id": f"{uid}-{agent}", "agent_id": agent, "metric": "order_amount",
                "value": 25000, "occurred_at": "2026-11-10T10:00:00+09:00"}
               for agent in (a, b)]
    pushed = await app_client.post("/v1/metrics", json={"source": source, "samples": samples},
                                    headers=bearer(make_token("ingest", source=source)))
    assert pushed.status_code == 200 and pushed.json()["accepted"] == 2, pushed.text
    await team.evaluate_all(PERIOD, {a: 80, b: 80})
    assert (await team.close(PERIOD)).status_code == 200
    cards = {
        agent: (await app_client.get(team.url(PERIOD, f"/scorecards/{agent}"),
                                     headers=team.manager)).json()
        for agent in (a, b)
    }
    assert cards[a]["kpis"]["order_amount"]["target"] == 50000
    assert cards[a]["kpis"]["order_amount"]["attainment"] == pytest.approx(50)
    assert cards[b]["kpis"]["order_amount"]["target"] == 25000
    assert cards[b]["kpis"]["order_amount"]["attainment"] == pytest.approx(100)
    assert any("targets adjusted" in n for n in cards[b]["notes"])
    assert cards[b]["composite"] > cards[a]["composite"]
    # once closed, goals are history
    late = await app_client.post(goals_url(team, a, "dispute"), headers=team.agent(a),
                                 json={"comment": "too late"})
    assert late.status_code == 409


async def test_goals_need_an_open_cycle_and_a_known_agent(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    none = await app_client.get(goals_url(team, a), headers=team.manager)
    assert none.status_code == 404
    bad_period = await app_client.get(f"/v1/teams/{team.team_id}/cycles/2026-13/goals/{a}",
                                      headers=team.manager)
    assert bad_period.status_code == 422
