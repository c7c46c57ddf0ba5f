"""Teams and agents through the API."""

from __future__ import annotations

import httpx

from tests.support.scenario import ADMIN, make_team


async def test_put_team_creates_then_updates(app_client: httpx.AsyncClient, uid: str) -> None:
    url = f"/v1/teams/t-{uid}"
    created = await app_client.put(url, json={"name": "Pre-sale", "timezone": "Asia/Seoul"},
                                   headers=ADMIN)
    assert created.status_code == 201
    assert created.json()["timezone"] == "Asia/Seoul"
    assert created.json()["scheme_id"] == "online-shop-cs"
    updated = await app_client.put(url, json={"name": "Pre-sale A", "manager_ids": ["m1"]},
                                   headers=ADMIN)
    assert updated.status_code == 200
    body = updated.json()
    assert body["name"] == "Pre-sale A" and body["timezone"] == "Asia/Seoul"
    assert body["manager_ids"] == ["m1"] and body["version"] == 2


async def test_bad_team_fields_are_named(app_client: httpx.AsyncClient, uid: str) -> None:
    response = await app_client.put(
        f"/v1/teams/t-{uid}", json={"name": "x", "timezone": "Mars/Base", "currency": "12"},
        headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"timezone", "currency"}


async def test_bad_ids_are_refused(app_client: httpx.AsyncClient) -> None:
    response = await app_client.put("/v1/teams/bad%20id", json={"name": "x"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "team_id"
    too_long = "t" * 65
    response = await app_client.put(f"/v1/teams/{too_long}", json={"name": "x"}, headers=ADMIN)
    assert response.status_code == 422


async def test_agent_in_unknown_team_is_422(app_client: httpx.AsyncClient, uid: str) -> None:
    response = await app_client.put(f"/v1/agents/a-{uid}",
                                    json={"name": "A", "team_id": f"none-{uid}"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "team_id"


async def test_transfer_keeps_history_and_moves_the_listing(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    first = await make_team(app_client, uid + "a", 2)
    second = await make_team(app_client, uid + "b", 1)
    mover = first.agents[0]
    moved = await app_client.put(f"/v1/agents/{mover}",
                                 json={"name": "Agent 0", "team_id": second.team_id},
                                 headers=ADMIN)
    assert moved.status_code == 200
    history = moved.json()["history"]
    assert [h["team_id"] for h in history] == [first.team_id, second.team_id]
    assert history[0]["until"] == history[1]["since"]
    listed = await app_client.get(f"/v1/teams/{second.team_id}/agents", headers=ADMIN)
    assert {a["agent_id"] for a in listed.json()["items"]} == {mover, second.agents[0]}
    listed = await app_client.get(f"/v1/teams/{first.team_id}/agents", headers=ADMIN)
    assert {a["agent_id"] for a in listed.json()["items"]} == {first.agents[1]}


async def test_manager_cannot_move_an_agent_out_of_another_team(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    mine = await make_team(app_client, uid + "a", 1)
    theirs = await make_team(app_client, uid + "b", 1)
    response = await app_client.put(
        f"/v1/agents/{theirs.agents[0]}", json={"name": "X", "team_id": mine.team_id},
        headers=mine.manager)
    assert response.status_code == 403


async def test_agent_reads_self_but_not_a_colleague(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 2)
    own = await app_client.get(f"/v1/agents/{team.agents[0]}", headers=team.agent(team.agents[0]))
    assert own.status_code == 200
    other = await app_client.get(f"/v1/agents/{team.agents[1]}",
                                 headers=team.agent(team.agents[0]))
    assert other.status_code == 403
