"""Closed months' rankings answered before FastAPI (service/api/frozen.py): the same answers
as the route gives, for every caller, and the route still decides every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.responses import Response

from service.api import cycles
from service.queries import results
from service.store.errors import DatabaseUnavailable
from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"


@pytest.fixture
def answered_early(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Record, per ranking request, whether it was answered before FastAPI."""
    seen: list[bool] = []
    original = cycles.stored_ranking_response

    async def spy(*args: Any) -> Response | None:
        response = await original(*args)
        seen.append(response is not None)
        return response

    monkeypatch.setattr(cycles, "stored_ranking_response", spy)
    yield seen


async def test_a_closed_ranking_is_answered_early_and_every_refusal_by_the_route(
    app_client: httpx.AsyncClient, uid: str, answered_early: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team = await make_team(app_client, uid, 3)
    stranger = bearer(make_token("manager", f"m-stranger-{uid}"))
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80, 70), strict=True)))
    url = team.url(PERIOD, "/ranking")

    async def get(headers: dict[str, str], **extra: str) -> tuple[int, bool]:
        answered_early.clear()
        response = await app_client.get(url, headers={**headers, **extra})
        return response.status_code, answered_early == [True]

    assert await get(team.manager) == (200, False)  # open: provisional, the route's work
    assert (await team.close(PERIOD)).status_code == 200
    first = await app_client.get(url, headers=team.manager)
    assert await get(team.manager) == (200, True)
    assert await get(ADMIN) == (200, True)
    assert await get(bearer(make_token("reader", "bi"))) == (200, True)
    assert await get(team.manager, **{"if-none-match": first.headers["etag"]}) == (304, True)
    # Refusals are the route's, with its problem documents, logs and counters.
    assert await get(team.agent(team.agents[0])) == (403, False)  # not published yet
    assert await get(stranger) == (403, False)
    assert await get({}) == (401, False)
    assert await get(bearer("csk_nope_not-a-key")) == (401, False)
    assert (await team.publish(PERIOD)).status_code == 200
    # Agents always take the route: it checks that every ranked agent's result is released
    # (under version 1, the publication released everyone).
    assert await get(team.agent(team.agents[0])) == (200, False)

    # What is answered early is exactly what the route answers.
    early = await app_client.get(url, headers=team.manager)

    async def declined(*_: Any) -> None:
        return None

    monkeypatch.setattr(cycles, "stored_ranking_response", declined)
    late = await app_client.get(url, headers=team.manager)
    assert late.status_code == early.status_code == 200
    assert late.content == early.content
    same = ("content-type", "etag", "cache-control", "content-length")
    assert {h: late.headers[h] for h in same} == {h: early.headers[h] for h in same}


async def test_a_database_error_on_the_early_path_is_the_routes_problem_not_a_500(
    app_client: httpx.AsyncClient, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = await make_team(app_client, uid, 2)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80), strict=True)))
    assert (await team.close(PERIOD)).status_code == 200

    async def away(*_: Any) -> None:
        raise DatabaseUnavailable("ConnectionRefusedError")

    monkeypatch.setattr(results, "stored_ranking", away)
    response = await app_client.get(team.url(PERIOD, "/ranking"), headers=team.manager)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
