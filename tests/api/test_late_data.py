"""Late data is seen: samples for a closed month show on its cycle and to its managers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN, Team, make_team

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
OCTOBER = "2026-10-20T12:00:00+09:00"


def sample(agent_id: str, sample_id: str, value: float = 1, at: str = OCTOBER
           ) -> dict[str, Any]:
    return {"id": sample_id, "agent_id": agent_id, "metric": "conversions", "value": value,
            "occurred_at": at}


async def send(client: httpx.AsyncClient, source: str, samples: list[dict[str, Any]]
               ) -> dict[str, Any]:
    response = await client.post("/v1/metrics", json={"source": source, "samples": samples},
                                 headers=bearer(make_token("ingest", source=source)))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def closed_october(team: Team) -> None:
    await team.open("2026-10")
    await team.evaluate_all("2026-10", dict.fromkeys(team.agents, 80))
    assert (await team.close("2026-10")).status_code == 200


async def quarantine(client: httpx.AsyncClient, headers: dict[str, str], **params: str
                     ) -> httpx.Response:
    return await client.get("/v1/metrics/quarantine", params=params, headers=headers)


async def test_late_samples_count_on_the_closed_month_and_its_managers_read_them(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "o", 1)
    a, b = team.agents
    source = f"chat-{uid}"
    await closed_october(team)
    await closed_october(other)
    quiet = await app_client.get(team.url("2026-10"), headers=team.manager)
    assert quiet.json()["late_samples"] == 0
    assert "late_samples" not in {w["kind"] for w in quiet.json()["warnings"]}

    body = await send(app_client, source, [
        sample(a, f"{uid}-1"), sample(a, f"{uid}-2"), sample(b, f"{uid}-3"),
        sample(other.agents[0], f"{uid}-4"), sample(f"ghost-{uid}", f"{uid}-5"),
        sample(a, f"{uid}-6", value=-1),
    ])
    assert [r["reason"] for r in body["rejected"]] == [
        "period_closed", "period_closed", "period_closed", "period_closed", "unknown_agent",
        "negative_value"]

    cycle = (await app_client.get(team.url("2026-10"), headers=team.manager)).json()
    assert cycle["late_samples"] == 3
    warning = next(w for w in cycle["warnings"] if w["kind"] == "late_samples")
    assert (warning["count"], warning["agents"]) == (3, sorted([a, b]))
    assert "period=2026-10" in warning["detail"]
    # the agents of the team see the warning on their cycle too
    mine = (await app_client.get(team.url("2026-10"), headers=team.agent(a))).json()
    assert mine["late_samples"] == 3

    # the team's manager reads the team's kept samples, and no other team's
    listing = await quarantine(app_client, team.manager, source=source)
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert {i["id"] for i in items} == {f"{uid}-1", f"{uid}-2", f"{uid}-3", f"{uid}-6"}
    assert {(i["team_id"], i["period"]) for i in items} == {(team.team_id, "2026-10")}
    late = await quarantine(app_client, team.manager, team_id=team.team_id, period="2026-10",
                            reason="period_closed")
    assert len(late.json()["items"]) == 3
    foreign = await quarantine(app_client, team.manager, team_id=other.team_id)
    assert foreign.status_code == 403
    theirs = await quarantine(app_client, other.manager, source=source)
    assert [i["id"] for i in theirs.json()["items"]] == [f"{uid}-4"]
    # agents do not read the quarantine; admins see everything, unknown agents included
    assert (await quarantine(app_client, team.agent(a))).status_code == 403
    everything = await quarantine(app_client, ADMIN, source=source)
    assert len(everything.json()["items"]) == 6
    ghost = next(i for i in everything.json()["items"] if i["id"] == f"{uid}-5")
    assert (ghost["team_id"], ghost["period"]) == (None, None)
    bad = await quarantine(app_client, ADMIN, period="2026-13")
    assert bad.status_code == 422

    # once published the count stays; reopened and replayed, the samples count and leave it
    assert (await team.publish("2026-10")).status_code == 200
    published = (await app_client.get(team.url("2026-10"), headers=team.manager)).json()
    assert published["late_samples"] == 3
    reopened = await app_client.post(team.url("2026-10", "/reopen"),
                                     json={"reason": "late conversions"}, headers=team.manager)
    assert reopened.status_code == 200
    replay = await app_client.post("/v1/metrics/quarantine/replay",
                                   json={"source": source, "reason": "period_closed"},
                                   headers=ADMIN)
    assert replay.json()["replayed"] == 3  # a, b (open again); other's month is still closed
    assert (await team.close("2026-10")).status_code == 200
    after = (await app_client.get(team.url("2026-10"), headers=team.manager)).json()
    assert after["late_samples"] == 0
