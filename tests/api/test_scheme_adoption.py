"""Schemes adopted by agreement: proposals, approvals by the people named, quorum, history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import bearer, make_token
from tests.support.raters import use_scheme
from tests.support.scenario import ADMIN, DEFAULT_V1_URL, make_team

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def base_scheme(client: httpx.AsyncClient) -> dict[str, Any]:
    base: dict[str, Any] = (await client.get(DEFAULT_V1_URL, headers=ADMIN)).json()
    base.pop("scheme_id"), base.pop("version")
    return base


def approve_url(scheme_id: str, version: int) -> str:
    return f"/v1/schemes/{scheme_id}/versions/{version}/approve"


async def test_a_proposal_is_usable_only_once_its_approvers_agree(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    scheme_id = f"s-{uid}"
    team = await make_team(app_client, uid, 2)
    a = team.agents[0]
    approvers = [team.manager_id, a]
    proposed = await app_client.put(f"/v1/schemes/{scheme_id}", headers=ADMIN,
                                    json={**await base_scheme(app_client),
                                          "approvers": approvers})
    assert proposed.status_code == 200, proposed.text
    body = proposed.json()
    assert (body["version"], body["status"], body["quorum"]) == (1, "proposed", 2)
    assert body["approvers"] == approvers and body["approvals"] == []
    # the version is the scheme as GET shows it, with how it is being adopted
    assert body["scheme_id"] == scheme_id and body["roles"][0]["role"] == "self"
    # not in force: cannot be read as the scheme, cannot open a cycle
    assert (await app_client.get(f"/v1/schemes/{scheme_id}", headers=ADMIN)).status_code == 409
    await use_scheme(app_client, team.team_id, scheme_id)
    refused = await app_client.post(f"/v1/teams/{team.team_id}/cycles",
                                    json={"period": "2026-11"}, headers=team.manager)
    assert refused.status_code == 409, refused.text
    assert "await approval" in refused.json()["detail"]

    outsider = await app_client.post(approve_url(scheme_id, 1),
                                     headers=bearer(make_token("manager", f"m-x-{uid}")))
    assert outsider.status_code == 403
    assert (await app_client.post(approve_url(scheme_id, 1), headers=ADMIN)).status_code == 403
    first = await app_client.post(approve_url(scheme_id, 1), headers=team.manager,
                                  json={"comment": "targets agreed with the team"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "proposed"
    assert [x["approver_id"] for x in first.json()["approvals"]] == [team.manager_id]
    twice = await app_client.post(approve_url(scheme_id, 1), headers=team.manager)
    assert twice.status_code == 409
    assert (await app_client.post(approve_url(scheme_id, 9), headers=team.agent(a))
            ).status_code == 404
    second = await app_client.post(approve_url(scheme_id, 1), headers=team.agent(a))
    assert second.status_code == 200
    assert second.json()["status"] == "adopted"
    assert second.json()["adopted_at"] == "2026-11-02T09:00:00Z"
    assert (await app_client.get(f"/v1/schemes/{scheme_id}", headers=ADMIN)).json()[
        "version"] == 1
    await team.open("2026-11")
    late = await app_client.post(approve_url(scheme_id, 1), headers=team.agent(a))
    assert late.status_code == 409

    history = (await app_client.get(f"/v1/schemes/{scheme_id}/versions",
                                    headers=team.agent(a))).json()
    assert history["in_force"] == 1
    assert [(v["version"], v["status"]) for v in history["items"]] == [(1, "adopted")]
    approvals = history["items"][0]["approvals"]
    assert [(x["approver_id"], x["comment"]) for x in approvals] == [
        (team.manager_id, "targets agreed with the team"), (a, None)]
    assert history["items"][0]["proposed_by"]


async def test_the_version_in_force_stays_until_a_newer_one_is_adopted(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    scheme_id = f"s-{uid}"
    base = await base_scheme(app_client)
    direct = await app_client.put(f"/v1/schemes/{scheme_id}", json=base, headers=ADMIN)
    assert direct.status_code == 200
    assert (direct.json()["version"], direct.json()["status"]) == (1, "adopted")
    team = await make_team(app_client, uid, 2)
    await use_scheme(app_client, team.team_id, scheme_id)
    changed = {**base, "name": "v2: results policy 200",
               "results": {**base["results"], "reward_amount": 200.0}}
    v2 = await app_client.put(f"/v1/schemes/{scheme_id}", headers=ADMIN,
                              json={**changed, "approvers": [team.manager_id, "hr-1", "ceo"],
                                    "quorum": 2})
    assert (v2.json()["version"], v2.json()["quorum"]) == (2, 2)
    opened = (await team.open("2026-11", scheme_version=None)).json()
    assert opened["scheme_version"] == 1
    assert (await app_client.post(approve_url(scheme_id, 2), headers=team.manager)).json()[
        "status"] == "proposed"
    hr = bearer(make_token("manager", "hr-1"))
    assert (await app_client.post(approve_url(scheme_id, 2), headers=hr)).json()[
        "status"] == "adopted"
    assert (await team.open("2026-12", scheme_version=None)).json()["scheme_version"] == 2
    # a pending proposal is superseded when a newer version comes into force first
    v3 = await app_client.put(f"/v1/schemes/{scheme_id}", headers=ADMIN,
                              json={**base, "approvers": ["ceo"]})
    assert v3.json()["version"] == 3
    v4 = await app_client.put(f"/v1/schemes/{scheme_id}", json=base, headers=ADMIN)
    assert (v4.json()["version"], v4.json()["status"]) == (4, "adopted")
    ceo = bearer(make_token("agent", "ceo"))
    superseded = await app_client.post(approve_url(scheme_id, 3), headers=ceo)
    assert superseded.status_code == 409
    assert superseded.json()["version_status"] == "superseded"
    history = (await app_client.get(f"/v1/schemes/{scheme_id}/versions", headers=ADMIN)).json()
    assert [(v["version"], v["status"]) for v in history["items"]] == [
        (4, "adopted"), (3, "superseded"), (2, "adopted"), (1, "adopted")]
    assert history["in_force"] == 4
    assert (await app_client.post(approve_url(scheme_id, 4), headers=ceo)).status_code == 409


async def test_bad_proposals_are_422(app_client: httpx.AsyncClient, uid: str) -> None:
    base = await base_scheme(app_client)
    url = f"/v1/schemes/s-{uid}"
    cases = [
        ({**base, "approvers": []}, "approvers"),
        ({**base, "approvers": ["a", "b"], "quorum": 3}, "quorum"),
        ({**base, "approvers": ["a b"]}, "approvers[0]"),
        ({**base, "quorum": 1}, "quorum"),
        ({**base, "quorum": 0, "approvers": ["a"]}, "quorum"),
        ({**base, "approvers": ["a"], "roles": [{**base["roles"][0], "weight": 0.9},
                                                *base["roles"][1:]]}, "roles"),
        ({**base, "training_topics": ["yoga"]}, "training_topics[0]"),
    ]
    for body, field in cases:
        response = await app_client.put(url, json=body, headers=ADMIN)
        assert response.status_code == 422, (body.get("approvers"), response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    assert (await app_client.get(f"/v1/schemes/s-{uid}/versions", headers=ADMIN)
            ).status_code == 404
    # only admins propose
    team = await make_team(app_client, uid, 1)
    response = await app_client.put(url, json={**base, "approvers": ["a"]}, headers=team.manager)
    assert response.status_code == 403


async def test_the_built_in_default_is_in_force_from_the_start(
    app_client: httpx.AsyncClient,
) -> None:
    history = (await app_client.get("/v1/schemes/online-shop-cs/versions", headers=ADMIN)).json()
    assert history["items"][-1]["version"] == 1
    assert history["items"][-1]["status"] == "adopted"
    assert history["in_force"] is not None
