"""Helpers for tests of invited raters: training on record, schemes that weigh raters."""

from __future__ import annotations

from typing import Any

import httpx

from service.domain.training import TOPICS
from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN

COMPLETED = "2026-01-10T09:00:00+00:00"
VALID_UNTIL = "2027-01-10T09:00:00+00:00"


def rater(rater_id: str) -> dict[str, str]:
    """Headers of a rater credential for rater_id."""
    return bearer(make_token("rater", rater_id))


async def train(client: httpx.AsyncClient, evaluator_id: str, *, topics: tuple[str, ...] = TOPICS,
                completed_at: str = COMPLETED, valid_until: str = VALID_UNTIL) -> None:
    """Record completed training on each topic for an evaluator (as admin)."""
    for topic in topics:
        response = await client.put(
            f"/v1/training/{evaluator_id}/{topic}",
            json={"completed_at": completed_at, "valid_until": valid_until}, headers=ADMIN)
        assert response.status_code == 200, response.text


async def scheme_with(client: httpx.AsyncClient, scheme_id: str, weights: dict[str, float],
                      **changes: Any) -> dict[str, Any]:
    """Publish a copy of the default scheme with other role weights (and other changes)."""
    base = (await client.get("/v1/schemes/online-shop-cs?version=1", headers=ADMIN)).json()
    base.pop("scheme_id"), base.pop("version")
    base["roles"] = [{**r, "weight": weights.get(r["role"], 0.0)} for r in base["roles"]]
    base.update(changes)
    response = await client.put(f"/v1/schemes/{scheme_id}", json=base, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def use_scheme(client: httpx.AsyncClient, team_id: str, scheme_id: str) -> None:
    """Point a team at a scheme."""
    response = await client.put(f"/v1/teams/{team_id}", json={"name": "T", "scheme_id": scheme_id},
                                headers=ADMIN)
    assert response.status_code == 200, response.text


async def invite(client: httpx.AsyncClient, url: str, headers: dict[str, str], rater_id: str,
                 role: str, agents: list[str]) -> httpx.Response:
    """POST an invitation."""
    return await client.post(url + "/invitations", headers=headers,
                             json={"rater_id": rater_id, "rater_role": role, "agent_ids": agents})
