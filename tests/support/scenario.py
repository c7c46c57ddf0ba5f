"""Build teams, agents and cycles through the real API for tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from tests.conftest import TEST_BOOTSTRAP_KEY, bearer, make_token

ADMIN = bearer(TEST_BOOTSTRAP_KEY)
#: The tests written for version 1 of online-shop-cs open their months on it explicitly:
#: version 2 (fair months) is in force on every installation, and tests of its rules open
#: their months with ``scheme_version=None`` (tests/api/test_fair_months.py).
V1 = 1
#: Version 1 of the built-in scheme, the base of the schemes tests publish.
DEFAULT_V1_URL = "/v1/schemes/online-shop-cs?version=1"
MANAGER_FORM = ("work_ability", "cooperation", "service", "report_timeliness",
                "report_reliability", "report_quality")


@dataclass
class Team:
    """A team created for a test, with its manager's headers and its agents."""

    client: httpx.AsyncClient
    team_id: str
    manager_id: str
    agents: list[str] = field(default_factory=list)

    @property
    def manager(self) -> dict[str, str]:
        return bearer(make_token("manager", self.manager_id))

    def agent(self, agent_id: str) -> dict[str, str]:
        return bearer(make_token("agent", agent_id))

    def url(self, period: str, tail: str = "") -> str:
        return f"/v1/teams/{self.team_id}/cycles/{period}{tail}"

    async def open(self, period: str, scheme_version: int | None = V1) -> httpx.Response:
        body: dict[str, object] = {"period": period}
        if scheme_version is not None:
            body["scheme_version"] = scheme_version
        response = await self.client.post(f"/v1/teams/{self.team_id}/cycles",
                                          json=body, headers=self.manager)
        assert response.status_code == 201, response.text
        return response

    async def self_eval(self, period: str, agent_id: str, score: float) -> httpx.Response:
        response = await self.client.put(
            self.url(period, f"/evaluations/{agent_id}/self"),
            json={"scores": {"task_completion": score}}, headers=self.agent(agent_id))
        assert response.status_code == 200, response.text
        return response

    async def manager_eval(self, period: str, agent_id: str, score: float) -> httpx.Response:
        response = await self.client.put(
            self.url(period, f"/evaluations/{agent_id}/manager"),
            json={"scores": dict.fromkeys(MANAGER_FORM, score)}, headers=self.manager)
        assert response.status_code == 200, response.text
        return response

    async def evaluate_all(self, period: str, scores: dict[str, float]) -> None:
        for agent_id, score in scores.items():
            await self.self_eval(period, agent_id, score)
            await self.manager_eval(period, agent_id, score)

    async def close(self, period: str, **body: object) -> httpx.Response:
        return await self.client.post(self.url(period, "/close"), json=body,
                                      headers=self.manager)

    async def publish(self, period: str) -> httpx.Response:
        return await self.client.post(self.url(period, "/publish"), headers=self.manager)

    async def ranking(self, period: str) -> dict[str, object]:
        response = await self.client.get(self.url(period, "/ranking"), headers=self.manager)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body


async def make_team(
    client: httpx.AsyncClient, uid: str, agents: int, *, timezone: str = "Asia/Seoul",
    positions: tuple[str, ...] = ("pre-sale",),
) -> Team:
    """Create a team with a manager and n agents through the API."""
    team = Team(client, f"t-{uid}", f"m-{uid}")
    response = await client.put(
        f"/v1/teams/{team.team_id}",
        json={"name": f"Team {uid}", "timezone": timezone, "currency": "CNY",
              "manager_ids": [team.manager_id]},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    for i in range(agents):
        agent_id = f"a-{uid}-{i}"
        response = await client.put(
            f"/v1/agents/{agent_id}",
            json={"name": f"Agent {i}", "team_id": team.team_id,
                  "position": positions[i % len(positions)]},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        team.agents.append(agent_id)
    return team


def uniform_composite(score: float) -> float:
    """Composite of an agent rated `score` on every criterion, with no metrics at all.

    Worked by hand from domain.md's default scheme: with no samples only order_amount has a
    value (0, at its floor: attainment 0, weight 0.15); the ratio KPIs have no data and drop
    out; the three rated report KPIs (0.10 each) score `score`. So work_performance =
    0.30 * score / 0.45 = 2/3 score; manager = (2/3 + 3) / 4 * score = 11/12 score;
    composite = 0.3 * score + 0.7 * 11/12 * score.
    """
    return round(0.3 * score + 0.7 * 11 / 12 * score, 4)
