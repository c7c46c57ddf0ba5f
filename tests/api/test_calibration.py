"""Rater calibration through the API: means and spreads, lenient and strict raters, gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import bearer, make_token
from tests.support.raters import invite, rater, train
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_lenient_and_strict_raters_and_self_gaps_are_flagged(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 4)
    agents = team.agents
    await team.open(PERIOD)
    url = team.url(PERIOD)
    levels = {f"easy-{uid}": 95.0, f"fair1-{uid}": 62.0, f"fair2-{uid}": 58.0,
              f"hard-{uid}": 30.0}
    for rater_id, score in levels.items():
        await train(app_client, rater_id)
        assert (await invite(app_client, url, team.manager, rater_id, "peer", agents)
                ).status_code == 200
        for agent in agents:
            response = await app_client.put(url + f"/evaluations/{agent}/peer",
                                            json={"scores": {"collaboration": score}},
                                            headers=rater(rater_id))
            assert response.status_code == 200, response.text
    for agent in agents:
        await team.manager_eval(PERIOD, agent, 60)
    await team.self_eval(PERIOD, agents[0], 95)  # sees themself far above the manager
    await team.self_eval(PERIOD, agents[1], 65)

    response = await app_client.get(url + "/calibration", headers=team.manager)
    assert response.status_code == 200, response.text
    body = response.json()
    flags = {r["rater_id"]: r["flag"] for r in body["raters"]}
    assert flags == {f"easy-{uid}": "lenient", f"hard-{uid}": "strict", f"fair1-{uid}": None,
                     f"fair2-{uid}": None, team.manager_id: None}
    easy = next(r for r in body["raters"] if r["rater_id"] == f"easy-{uid}")
    assert (easy["count"], easy["mean"], easy["stddev"]) == (4, 95.0, 0.0)
    assert easy["deviation"] > 10 and "above" in easy["reason"]
    # the team: every non-self evaluation (4 raters x 4 agents + 4 by the manager)
    assert body["team"]["count"] == 20
    assert body["team"]["mean"] == pytest.approx((95 + 62 + 58 + 30 + 60) / 5)
    gaps = {g["agent_id"]: g for g in body["self_vs_manager"]}
    assert gaps[agents[0]]["gap"] == pytest.approx(35) and gaps[agents[0]]["flag"] is True
    assert gaps[agents[1]]["gap"] == pytest.approx(5) and gaps[agents[1]]["flag"] is False
    assert gaps[agents[2]]["gap"] is None
    assert body["mean_gap"] == pytest.approx(20)
    assert body["thresholds"]["deviation_points"] == 10


async def test_too_few_ratings_are_not_judged(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 2)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, {team.agents[0]: 90, team.agents[1]: 40})
    body = (await app_client.get(team.url(PERIOD, "/calibration"), headers=ADMIN)).json()
    assert [(r["rater_id"], r["count"], r["flag"]) for r in body["raters"]] == [
        (team.manager_id, 2, None)]
    assert "fewer than 3" in body["raters"][0]["reason"]


async def test_calibration_is_for_admins_and_the_teams_managers(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    other = await make_team(app_client, uid + "o", 1)
    await team.open(PERIOD)
    url = team.url(PERIOD, "/calibration")
    assert (await app_client.get(url, headers=ADMIN)).status_code == 200
    assert (await app_client.get(url, headers=team.manager)).status_code == 200
    for headers in (other.manager, team.agent(team.agents[0]),
                    bearer(make_token("reader", "bi")), rater("r")):
        assert (await app_client.get(url, headers=headers)).status_code == 403
    assert (await app_client.get(team.url("2026-10", "/calibration"), headers=ADMIN)
            ).status_code == 404
