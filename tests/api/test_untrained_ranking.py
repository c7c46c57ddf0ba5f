"""A version 2 month whose manager evaluations were recorded without the training version 2
asks of managers: they count as missing, with the reason, instead of emptying the ranking.

The API refuses an untrained manager's evaluation (422), so such evaluations come from an
event appended without the check (an import, or history from before the rule): appended here
straight to the cycle's stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from service.domain.cycle import EvaluationSubmitted, cycle_stream
from service.store.database import Database
from service.store.event_store import NewEvent, append, stream_version
from tests.support.raters import train
from tests.support.scenario import MANAGER_FORM, make_team

PERIOD = "2026-11"
NOW = datetime(2026, 11, 2, tzinfo=UTC)


async def test_an_untrained_managers_evaluation_is_missing_with_its_reason(
    app_client: httpx.AsyncClient, uid: str, db: Database, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 3)
    first, second, third = team.agents
    opened = (await team.open(PERIOD, scheme_version=None)).json()
    assert opened["scheme_version"] >= 2
    refused = await app_client.put(team.url(PERIOD, f"/evaluations/{first}/manager"),
                                   json={"scores": dict.fromkeys(MANAGER_FORM, 80)},
                                   headers=team.manager)
    assert refused.status_code == 422
    for agent in team.agents:
        await team.self_eval(PERIOD, agent, 70)
    # first and second: manager evaluations without training on record.
    legacy = [EvaluationSubmitted(agent_id=a, rater_role="manager", rater_id=team.manager_id,
                                  scores=dict.fromkeys(MANAGER_FORM, 90.0), revision=1,
                                  submitted_at=NOW) for a in (first, second)]
    async with db.connection() as conn:
        stream = cycle_stream(team.team_id, PERIOD)
        await append(conn, stream, [NewEvent(e.type, e.data()) for e in legacy],
                     expected_version=await stream_version(conn, stream),
                     metadata={"actor": {"subject": "import"}}, recorded_at=NOW)
    # third: trained first, then rated through the API.
    await train(app_client, team.manager_id)
    await team.manager_eval(PERIOD, third, 60)

    closed = await team.close(PERIOD)
    assert closed.status_code == 409, closed.text
    missing = closed.json()["missing"]
    assert [(m["agent_id"], m["rater_role"]) for m in missing] == [
        (first, "manager"), (second, "manager")]
    assert all("training" in m["reason"] and "does not count" in m["reason"] for m in missing)

    forced = await team.close(PERIOD, force=True, reason="imported month",
                              missing_policy="zero")
    assert forced.status_code == 200, forced.text
    assert [m["agent_id"] for m in forced.json()["missing_at_close"]] == [first, second]
    assert all(m["reason"] for m in forced.json()["missing_at_close"])
    ranking = await team.ranking(PERIOD)
    entries = {e["agent_id"]: e for e in ranking["entries"]}  # type: ignore[union-attr]
    # Everyone is ranked: the uncounted manager parts score zero under the policy, so the
    # trained manager's 60 puts the third agent first, though the others were rated 90.
    assert set(entries) == set(team.agents)
    assert entries[third]["rank"] == 1
    assert entries[first]["components"]["manager"] == 0.0


async def test_a_never_submitted_evaluation_is_listed_without_a_reason(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    await team.open(PERIOD, scheme_version=None)
    closed = await team.close(PERIOD)
    assert closed.status_code == 409
    assert {"agent_id": team.agents[0], "rater_role": "manager"} in closed.json()["missing"]
