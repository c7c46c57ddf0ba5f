"""Invited raters through the API: invitations, training gates, weights, peer anonymity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.raters import invite, rater, scheme_with, train, use_scheme
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def peer_eval(score: float) -> dict[str, Any]:
    return {"scores": {"collaboration": score}}


async def test_only_invited_raters_rate_and_only_whom_they_were_invited_for(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await team.open(PERIOD)
    url = team.url(PERIOD)
    r1 = f"r1-{uid}"
    await train(app_client, r1)
    # not invited at all
    response = await app_client.put(url + f"/evaluations/{a}/peer", json=peer_eval(70),
                                    headers=rater(r1))
    assert response.status_code == 403, response.text
    assert response.json()["type"].endswith("/out-of-scope")
    invited = await invite(app_client, url, team.manager, r1, "peer", [a, b])
    assert invited.status_code == 200, invited.text
    assert invited.json()["items"] == [
        {"rater_id": r1, "rater_role": "peer", "agent_ids": sorted([a, b]), "submitted": []}]
    # invited for a and b, not c; invited as peer, not as customer
    assert (await app_client.put(url + f"/evaluations/{c}/peer", json=peer_eval(70),
                                 headers=rater(r1))).status_code == 403
    assert (await app_client.put(url + f"/evaluations/{a}/customer",
                                 json={"scores": {"satisfaction": 70}},
                                 headers=rater(r1))).status_code == 403
    ok = await app_client.put(url + f"/evaluations/{a}/peer", json=peer_eval(70),
                              headers=rater(r1))
    assert ok.status_code == 200, ok.text
    assert ok.json()["rater_id"] == r1
    # an agent cannot submit as a peer (the role belongs to rater credentials)
    assert (await app_client.put(url + f"/evaluations/{b}/peer", json=peer_eval(70),
                                 headers=team.agent(a))).status_code == 403
    listed = await app_client.get(url + "/invitations", headers=rater(r1))
    assert listed.json()["items"][0]["submitted"] == [a]
    others = await app_client.get(url + "/invitations", headers=rater(f"x-{uid}"))
    assert others.json()["items"] == []


async def test_invitation_inputs_are_checked(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "o", 1)
    a, b = team.agents
    url = team.url(PERIOD)
    assert (await invite(app_client, url, team.manager, "r", "peer", [a])).status_code == 404
    await team.open(PERIOD)
    cases = [
        ({"rater_id": "r x", "rater_role": "peer", "agent_ids": [a]}, "rater_id"),
        ({"rater_id": "r", "rater_role": "manager", "agent_ids": [a]}, "rater_role"),
        ({"rater_id": "r", "rater_role": "peer", "agent_ids": []}, "agent_ids"),
        ({"rater_id": "r", "rater_role": "peer", "agent_ids": [other.agents[0]]},
         "agent_ids[0]"),
        ({"rater_id": a, "rater_role": "peer", "agent_ids": [b, a]}, "agent_ids[1]"),
    ]
    for body, field in cases:
        response = await app_client.post(url + "/invitations", json=body, headers=team.manager)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    # only the team's managers invite
    response = await invite(app_client, url, other.manager, "r", "peer", [a])
    assert response.status_code == 403
    response = await invite(app_client, url, team.agent(a), "r", "peer", [b])
    assert response.status_code == 403
    # not after the close
    await team.evaluate_all(PERIOD, {a: 70, b: 60})
    assert (await team.close(PERIOD)).status_code == 200
    late = await invite(app_client, url, team.manager, "r", "peer", [a])
    assert late.status_code == 409


async def test_an_untrained_rater_is_refused_naming_the_missing_training(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    await team.open(PERIOD)
    url = team.url(PERIOD)
    r = f"r-{uid}"
    assert (await invite(app_client, url, team.manager, r, "expert", [a])).status_code == 200
    body = {"scores": {"professionalism": 80}}
    refused = await app_client.put(url + f"/evaluations/{a}/expert", json=body, headers=rater(r))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["missing_training"] == ["ethics", "tools", "criteria", "policy"]
    assert {e["field"] for e in problem["errors"]} == {
        "training.ethics", "training.tools", "training.criteria", "training.policy"}
    # two topics done, one of them expired by now: both gaps are named
    await train(app_client, r, topics=("ethics", "tools"))
    await train(app_client, r, topics=("criteria",), valid_until="2026-11-01T00:00:00+00:00")
    refused = await app_client.put(url + f"/evaluations/{a}/expert", json=body, headers=rater(r))
    assert refused.status_code == 422
    errors = {e["field"]: e["reason"] for e in refused.json()["errors"]}
    assert set(errors) == {"training.criteria", "training.policy"}
    assert "expired" in errors["training.criteria"]
    assert "no training" in errors["training.policy"]
    await train(app_client, r, topics=("criteria", "policy"))
    accepted = await app_client.put(url + f"/evaluations/{a}/expert", json=body,
                                    headers=rater(r))
    assert accepted.status_code == 200, accepted.text
    # training that expires later refuses the next revision at its submission time
    app_clock.set(datetime(2027, 2, 1, tzinfo=UTC))
    expired = await app_client.put(url + f"/evaluations/{a}/expert", json=body, headers=rater(r))
    assert expired.status_code == 422
    assert len(expired.json()["missing_training"]) == 4


async def test_weighted_peer_ratings_count_and_unrated_agents_renormalise(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    scheme_id = f"peers-{uid}"
    await scheme_with(app_client, scheme_id, {"self": 0.3, "manager": 0.6, "peer": 0.1},
                      requires_training=["peer"])
    team = await make_team(app_client, uid, 3)
    await use_scheme(app_client, team.team_id, scheme_id)
    a, b, c = team.agents
    await team.open(PERIOD)
    url = team.url(PERIOD)
    p1, p2 = f"p1-{uid}", f"p2-{uid}"
    for p in (p1, p2):
        await train(app_client, p)
        assert (await invite(app_client, url, team.manager, p, "peer", [a, b])).status_code == 200
    for p, score in ((p1, 40), (p2, 60)):
        response = await app_client.put(url + f"/evaluations/{a}/peer", json=peer_eval(score),
                                        headers=rater(p))
        assert response.status_code == 200, response.text
    await team.evaluate_all(PERIOD, dict.fromkeys(team.agents, 80))
    closed = await team.close(PERIOD)
    assert closed.status_code == 200, closed.text
    scores = {e["agent_id"]: e["score"] for e in (await team.ranking(PERIOD))["entries"]}
    manager = 11 / 12 * 80  # see tests.support.scenario.uniform_composite
    # a: the two peers average 50, weighted 0.1
    assert scores[a] == pytest.approx(0.3 * 80 + 0.6 * manager + 0.1 * 50, abs=1e-3)
    # b (invited raters did not answer) and c (none invited): the peer part drops out
    expected = (0.3 * 80 + 0.6 * manager) / 0.9
    assert scores[b] == pytest.approx(expected, abs=1e-3)
    assert scores[c] == pytest.approx(expected, abs=1e-3)
    card = (await app_client.get(url + f"/scorecards/{b}", headers=team.manager)).json()
    assert card["components"]["peer"]["status"] == "unrated"
    assert any("peer" in n and "re-normalised" in n for n in card["notes"])


async def test_peer_ratings_are_anonymous_to_the_agent_but_not_to_managers(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    await team.open(PERIOD)
    url = team.url(PERIOD)
    p = f"p-{uid}"
    await train(app_client, p)
    await invite(app_client, url, team.manager, p, "peer", [a])
    assert (await app_client.put(url + f"/evaluations/{a}/peer", json=peer_eval(55),
                                 headers=rater(p))).status_code == 200
    await team.evaluate_all(PERIOD, {a: 70, b: 60})
    # While the month is open (and until their result is released) the agent sees their own
    # self-evaluation only (issue 16: no anchoring on other raters' scores).
    early = await app_client.get(url + f"/evaluations?agent_id={a}", headers=team.agent(a))
    assert [e["rater_role"] for e in early.json()["items"]] == ["self"]
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    for headers, expected in ((team.agent(a), "anonymous"), (team.manager, p), (ADMIN, p)):
        listed = await app_client.get(url + f"/evaluations?agent_id={a}", headers=headers)
        assert listed.status_code == 200, listed.text
        peers = [e for e in listed.json()["items"] if e["rater_role"] == "peer"]
        assert [e["rater_id"] for e in peers] == [expected]
        assert peers[0]["scores"] == {"collaboration": 55}
    # an agent sees only their own evaluations
    assert (await app_client.get(url + f"/evaluations?agent_id={a}",
                                 headers=team.agent(b))).status_code == 403
    own = await app_client.get(url + "/evaluations", headers=team.agent(b))
    assert {e["agent_id"] for e in own.json()["items"]} == {b}
    card = (await app_client.get(url + f"/scorecards/{a}", headers=team.agent(a))).json()
    peers = [e for e in card["evaluations"] if e["rater_role"] == "peer"]
    assert [e["rater_id"] for e in peers] == ["anonymous"]
