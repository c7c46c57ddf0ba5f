"""Feedback communication through the API: classification, interviews, records, acknowledgement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.scenario import ADMIN, Team, make_team

PERIOD = "2026-11"
PUBLISHED = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
RECORD = {
    "expectations": "answer within 30 s and convert a third of consultations",
    "achievements": "answered in 40 s on average, converted a quarter",
    "reasons": "weekend queue understaffed; new product line unfamiliar",
    "improvements": "product training; weekend rota",
    "agreed_actions": [{"action": "complete product training", "due_date": "2026-12-15"},
                       {"action": "swap two weekend shifts"}],
    "next_cycle_plan": "conversion 0.30, response time 30 s in December",
}


async def publish(team: Team, clock: Any, period: str, scores: list[float],
                  at: datetime) -> None:
    clock.set(at)
    await team.open(period)
    await team.evaluate_all(period, dict(zip(team.agents, scores, strict=True)))
    assert (await team.close(period)).status_code == 200
    assert (await team.publish(period)).status_code == 200


def slot(start: datetime, minutes: int = 60, **extra: Any) -> dict[str, Any]:
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(minutes=minutes))
            .isoformat(), "place": "meeting room 2 (quiet)", **extra}


async def test_nothing_before_publication(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(PUBLISHED)
    team = await make_team(app_client, uid, 3)
    a = team.agents[0]
    await team.open(PERIOD)
    url = team.url(PERIOD, f"/interviews/{a}")
    response = await app_client.post(url, json=slot(PUBLISHED), headers=team.manager)
    assert response.status_code == 409, response.text
    assert response.json()["cycle_status"] == "open"
    classified = await app_client.get(team.url(PERIOD, "/feedback/classification"),
                                      headers=team.manager)
    assert classified.status_code == 409
    await team.evaluate_all(PERIOD, dict.fromkeys(team.agents, 70))
    assert (await team.close(PERIOD)).status_code == 200
    closed = await app_client.post(url, json=slot(PUBLISHED), headers=team.manager)
    assert closed.status_code == 409 and closed.json()["cycle_status"] == "closed"
    missing = await app_client.post(team.url("2026-10", f"/interviews/{a}"),
                                    json=slot(PUBLISHED), headers=team.manager)
    assert missing.status_code == 404


async def test_agents_are_classified_by_band_and_trend(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 4)
    a, b, c, d = team.agents
    await publish(team, app_clock, "2026-10", [60, 80, 70, 90], PUBLISHED - timedelta(days=30))
    await publish(team, app_clock, PERIOD, [90, 80, 70, 60], PUBLISHED)
    response = await app_client.get(team.url(PERIOD, "/feedback/classification"),
                                    headers=team.manager)
    assert response.status_code == 200, response.text
    body = response.json()
    grid = {(i["agent_id"]): (i["band"], i["trend"], i["category"]) for i in body["items"]}
    assert grid == {
        a: ("top", "improving", "rising_star"),
        b: ("middle", "steady", "core"),
        c: ("middle", "steady", "core"),
        d: ("bottom", "declining", "at_risk"),
    }
    assert len(body["categories"]) == 9
    assert {x["category"] for x in body["categories"]} >= {"star", "struggling", "climber"}
    first = next(i for i in body["items"] if i["agent_id"] == a)
    assert first["delta"] > 0 and first["previous_score"] is not None
    # without a previous published month the trend is steady, and the focus says why
    solo = await make_team(app_client, uid + "s", 3)
    await publish(solo, app_clock, PERIOD, [90, 80, 70], PUBLISHED)
    items = (await app_client.get(solo.url(PERIOD, "/feedback/classification"),
                                  headers=solo.manager)).json()["items"]
    assert {i["trend"] for i in items} == {"steady"}
    assert all("no previous published month" in i["focus"] for i in items)
    assert [i["band"] for i in sorted(items, key=lambda i: i["rank"])] == [
        "top", "middle", "bottom"]
    assert (await app_client.get(team.url(PERIOD, "/feedback/classification"),
                                 headers=team.agent(a))).status_code == 403


async def test_one_managers_interviews_never_overlap(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await publish(team, app_clock, PERIOD, [90, 80, 70], PUBLISHED)
    ten = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    first = await app_client.post(team.url(PERIOD, f"/interviews/{a}"),
                                  json=slot(ten, participants=["hr-1"]), headers=team.manager)
    assert first.status_code == 201, first.text
    interview = first.json()
    assert interview["status"] == "scheduled" and interview["manager_id"] == team.manager_id
    assert interview["participants"] == [team.manager_id, a, "hr-1"]
    clash = await app_client.post(team.url(PERIOD, f"/interviews/{b}"),
                                  json=slot(ten + timedelta(minutes=30)), headers=team.manager)
    assert clash.status_code == 409, clash.text
    assert clash.json()["clash"]["interview_id"] == f"{team.team_id}:{PERIOD}:{a}"
    assert a in clash.json()["detail"]
    back_to_back = await app_client.post(team.url(PERIOD, f"/interviews/{b}"),
                                         json=slot(ten + timedelta(minutes=60)),
                                         headers=team.manager)
    assert back_to_back.status_code == 201
    # moving a's interview onto b's slot clashes too; moving it elsewhere is fine (200)
    moved = await app_client.post(team.url(PERIOD, f"/interviews/{a}"),
                                  json=slot(ten + timedelta(minutes=90)), headers=team.manager)
    assert moved.status_code == 409
    moved = await app_client.post(team.url(PERIOD, f"/interviews/{a}"),
                                  json=slot(ten + timedelta(hours=3)), headers=team.manager)
    assert moved.status_code == 200 and moved.json()["revision"] == 2
    # the old slot is free again
    freed = await app_client.post(team.url(PERIOD, f"/interviews/{c}"), json=slot(ten),
                                  headers=team.manager)
    assert freed.status_code == 201
    # the calendar is the manager's, across teams
    other = Team(app_client, f"t-{uid}x", team.manager_id)
    assert (await app_client.put(f"/v1/teams/{other.team_id}", headers=ADMIN, json={
        "name": "second team", "manager_ids": [team.manager_id]})).status_code == 201
    for i in range(3):
        agent_id = f"a-{uid}x-{i}"
        await app_client.put(f"/v1/agents/{agent_id}", headers=ADMIN,
                             json={"name": f"X{i}", "team_id": other.team_id})
        other.agents.append(agent_id)
    await publish(other, app_clock, PERIOD, [90, 80, 70], PUBLISHED)
    elsewhere = await app_client.post(other.url(PERIOD, f"/interviews/{other.agents[0]}"),
                                      json=slot(ten + timedelta(minutes=15)),
                                      headers=team.manager)
    assert elsewhere.status_code == 409
    assert elsewhere.json()["clash"]["interview_id"] == f"{team.team_id}:{PERIOD}:{c}"


async def test_interview_inputs_are_checked(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 3)
    other = await make_team(app_client, uid + "o", 1)
    a = team.agents[0]
    await publish(team, app_clock, PERIOD, [90, 80, 70], PUBLISHED)
    url = team.url(PERIOD, f"/interviews/{a}")
    ten = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    cases = [
        (slot(ten, minutes=0), "ends_at"),
        (slot(ten, minutes=-30), "ends_at"),
        (slot(ten, minutes=9 * 60), "ends_at"),
        ({**slot(ten), "starts_at": "2026-12-04T10:00:00"}, "starts_at"),
        ({**slot(ten), "starts_at": "1999-12-04T10:00:00+00:00"}, "starts_at"),
        ({**slot(ten), "ends_at": "9999-12-31T23:59:59-14:00"}, "ends_at"),
        ({**slot(ten), "place": " "}, "place"),
        ({**slot(ten), "place": ""}, "place"),
        (slot(ten, participants=["not an id"]), "participants.0"),
    ]
    for body, field in cases:
        response = await app_client.post(url, json=body, headers=team.manager)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    for body in (slot(ten), slot(ten, manager_id=f"nobody-{uid}")):
        # an admin names a manager of the team to hold it
        response = await app_client.post(url, json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "manager_id"
    stranger = await app_client.post(team.url(PERIOD, f"/interviews/{other.agents[0]}"),
                                     json=slot(ten), headers=team.manager)
    assert stranger.status_code == 422
    assert (await app_client.post(url, json=slot(ten), headers=other.manager)).status_code == 403
    assert (await app_client.post(url, json=slot(ten), headers=team.agent(a))).status_code == 403
    # another manager's diary is not the caller's to fill
    response = await app_client.post(url, json=slot(ten, manager_id=other.manager_id),
                                     headers=team.manager)
    assert response.status_code == 403
    # an admin schedules for a manager of the team
    by_admin = await app_client.post(url, json=slot(ten, manager_id=team.manager_id),
                                     headers=ADMIN)
    assert by_admin.status_code == 201 and by_admin.json()["manager_id"] == team.manager_id


async def test_outline_record_and_acknowledgement(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 3)
    a, b, c = team.agents
    await publish(team, app_clock, PERIOD, [90, 80, 70], PUBLISHED)
    url = team.url(PERIOD, f"/interviews/{a}")
    ten = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    not_yet = await app_client.put(url + "/outline", headers=team.manager,
                                   json={"objective": "x", "questions": ["q"]})
    assert not_yet.status_code == 409
    assert (await app_client.get(url, headers=team.manager)).status_code == 404
    assert (await app_client.post(url, json=slot(ten), headers=team.manager)).status_code == 201
    bad_outlines = [
        ({"objective": "x", "questions": []}, "questions"),
        ({"objective": "x", "questions": ["fine", " "]}, "questions[1]"),
        ({"objective": " ", "questions": ["q"]}, "objective"),
    ]
    for body, field in bad_outlines:
        response = await app_client.put(url + "/outline", json=body, headers=team.manager)
        assert response.status_code == 422, response.text
        assert field in {e["field"] for e in response.json()["errors"]}
    outline = {"objective": "agree how to keep first place",
               "sub_objectives": ["recognise the month", "agree stretch goals"],
               "questions": ["What went well?", "What got in the way?", "What next?"]}
    prepared = await app_client.put(url + "/outline", json=outline, headers=team.manager)
    assert prepared.status_code == 200, prepared.text
    assert prepared.json()["outline"]["questions"] == outline["questions"]
    # not before it starts
    app_clock.set(ten - timedelta(minutes=5))
    early = await app_client.put(url + "/record", json=RECORD, headers=team.manager)
    assert early.status_code == 409
    app_clock.set(ten + timedelta(minutes=50))
    for field in ("expectations", "achievements", "reasons", "improvements", "next_cycle_plan"):
        for value in ("", "  "):
            response = await app_client.put(url + "/record", json={**RECORD, field: value},
                                            headers=team.manager)
            assert response.status_code == 422, (field, value, response.text)
            assert field in {e["field"] for e in response.json()["errors"]}
    no_actions = await app_client.put(url + "/record", json={**RECORD, "agreed_actions": []},
                                      headers=team.manager)
    assert no_actions.status_code == 422
    # the agent cannot acknowledge what is not recorded yet
    assert (await app_client.post(url + "/acknowledge", headers=team.agent(a))).status_code == 409
    recorded = await app_client.put(url + "/record", json=RECORD, headers=team.manager)
    assert recorded.status_code == 200, recorded.text
    body = recorded.json()
    assert body["status"] == "recorded"
    assert body["record"]["reasons"] == RECORD["reasons"]
    assert body["record"]["agreed_actions"][0] == {"action": "complete product training",
                                                   "due_date": "2026-12-15"}
    # recorded interviews are not moved
    assert (await app_client.post(url, json=slot(ten + timedelta(days=1)),
                                  headers=team.manager)).status_code == 409
    for headers in (team.agent(b), team.manager, ADMIN):
        assert (await app_client.post(url + "/acknowledge", headers=headers)).status_code == 403
    acknowledged = await app_client.post(url + "/acknowledge", json={"comment": "agreed"},
                                         headers=team.agent(a))
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["status"] == "acknowledged"
    assert acknowledged.json()["acknowledgement"]["comment"] == "agreed"
    assert (await app_client.post(url + "/acknowledge", headers=team.agent(a))).status_code == 409
    assert (await app_client.put(url + "/record", json=RECORD,
                                 headers=team.manager)).status_code == 409
    # the agent reads their own interview, not another's
    assert (await app_client.get(url, headers=team.agent(a))).status_code == 200
    assert (await app_client.get(url, headers=team.agent(b))).status_code == 403

    listed = await app_client.get(team.url(PERIOD, "/interviews"), headers=team.manager)
    assert listed.status_code == 200, listed.text
    assert [(i["agent_id"], i["status"], i["outline"]) for i in listed.json()["items"]] == [
        (a, "acknowledged", True)]
    assert [m["agent_id"] for m in listed.json()["missing"]] == [b, c]
    cycle = (await app_client.get(team.url(PERIOD), headers=team.manager)).json()
    assert cycle["interviews_missing"] == [b, c]


async def test_concurrent_overlapping_schedulings_let_exactly_one_through(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    team = await make_team(app_client, uid, 6)
    await publish(team, app_clock, PERIOD, [90, 80, 70, 60, 50, 40], PUBLISHED)
    ten = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    responses = await asyncio.gather(*[
        app_client.post(team.url(PERIOD, f"/interviews/{agent}"),
                        json=slot(ten + timedelta(minutes=5 * i)), headers=team.manager)
        for i, agent in enumerate(team.agents)
    ])
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
