"""Evaluator training records through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.raters import rater, train
from tests.support.scenario import ADMIN, make_team

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
BODY = {"completed_at": "2026-06-01T09:00:00+00:00", "valid_until": "2027-06-01T09:00:00+00:00"}


async def test_admins_record_training_and_everyone_sees_its_status(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    r = f"r-{uid}"
    empty = await app_client.get(f"/v1/training/{r}", headers=rater(r))
    assert empty.status_code == 200
    assert {t["topic"]: t["status"] for t in empty.json()["topics"]} == dict.fromkeys(
        ("ethics", "tools", "criteria", "policy"), "missing")
    await train(app_client, r, topics=("ethics", "tools"))
    await train(app_client, r, topics=("criteria",), completed_at="2025-01-01T00:00:00+00:00",
                valid_until="2026-01-01T00:00:00+00:00")
    body = (await app_client.get(f"/v1/training/{r}", headers=ADMIN)).json()
    assert {t["topic"]: t["status"] for t in body["topics"]} == {
        "ethics": "valid", "tools": "valid", "criteria": "expired", "policy": "missing"}
    ethics = body["topics"][0]
    assert ethics["valid_until"] == "2027-01-10T09:00:00Z" and ethics["recorded_by"]
    assert len(body["history"]) == 3
    # renewing a topic replaces its record; the history keeps both
    await train(app_client, r, topics=("criteria",))
    body = (await app_client.get(f"/v1/training/{r}", headers=ADMIN)).json()
    assert body["topics"][2]["status"] == "valid" and len(body["history"]) == 4
    # the same record again changes nothing
    await train(app_client, r, topics=("criteria",))
    assert len((await app_client.get(f"/v1/training/{r}", headers=ADMIN)).json()["history"]) == 4


async def test_who_records_and_who_reads(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    for headers in (team.manager, team.agent(a), rater(a)):
        response = await app_client.put(f"/v1/training/{a}/ethics", json=BODY, headers=headers)
        assert response.status_code == 403
    assert (await app_client.get(f"/v1/training/{a}", headers=team.agent(a))).status_code == 200
    assert (await app_client.get(f"/v1/training/{a}", headers=team.manager)).status_code == 200
    assert (await app_client.get(f"/v1/training/{a}",
                                 headers=rater(f"x-{uid}"))).status_code == 403


async def test_bad_training_records_are_422(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    url = f"/v1/training/r-{uid}"
    cases = [
        ("/karate", BODY, "topic"),
        ("/ethics", {**BODY, "valid_until": "2026-05-01T00:00:00+00:00"}, "valid_until"),
        ("/ethics", {**BODY, "valid_until": BODY["completed_at"]}, "valid_until"),
        ("/ethics", {**BODY, "completed_at": "2026-12-01T00:00:00+00:00",
                     "valid_until": "2027-12-01T00:00:00+00:00"}, "completed_at"),
        ("/ethics", {**BODY, "completed_at": "2026-06-01T09:00:00"}, "completed_at"),
        ("/ethics", {**BODY, "completed_at": "0001-01-01T00:00:00+14:00"}, "completed_at"),
        ("/ethics", {**BODY, "valid_until": "9999-12-31T23:59:59-14:00"}, "valid_until"),
        ("/ethics", {"completed_at": BODY["completed_at"]}, "valid_until"),
        ("/ethics", {**BODY, "extra": 1}, "extra"),
    ]
    for tail, body, field in cases:
        response = await app_client.put(url + tail, json=body, headers=ADMIN)
        assert response.status_code == 422, (tail, body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.json()
    bad_id = await app_client.put("/v1/training/not%20an%20id/ethics", json=BODY, headers=ADMIN)
    assert bad_id.status_code == 422
