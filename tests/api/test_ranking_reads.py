"""A closed month's ranking through its one route: the same document, ETag and 304 for every
caller the route admits, and the route's own refusals and problems for everyone else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.queries import results
from service.store.errors import DatabaseUnavailable
from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"


async def test_a_closed_ranking_answers_every_caller_by_the_route_rules(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 3)
    stranger = bearer(make_token("manager", f"m-stranger-{uid}"))
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80, 70), strict=True)))
    url = team.url(PERIOD, "/ranking")

    async def get(headers: dict[str, str], **extra: str) -> httpx.Response:
        return await app_client.get(url, headers={**headers, **extra})

    assert "etag" not in (await get(team.manager)).headers  # open: computed live
    assert (await team.close(PERIOD)).status_code == 200
    first = await get(team.manager)
    assert first.status_code == 200 and first.json()["status"] == "closed"
    assert [e["agent_id"] for e in first.json()["entries"]] == team.agents
    same = ("content-type", "etag", "cache-control", "content-length")
    for who in (team.manager, ADMIN, bearer(make_token("reader", "bi"))):
        again = await get(who)
        assert again.status_code == 200 and again.content == first.content
        assert {h: again.headers[h] for h in same} == {h: first.headers[h] for h in same}
        unchanged = await get(who, **{"if-none-match": first.headers["etag"]})
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == first.headers["etag"]

    refused = await get(team.agent(team.agents[0]))  # not published yet
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await get(stranger)).status_code == 403
    # A refusal is refused whatever the caller claims to hold already.
    assert (await get(stranger, **{"if-none-match": first.headers["etag"]})).status_code == 403
    missing = await get({})
    assert missing.status_code == 401 and "www-authenticate" in missing.headers
    assert (await get(bearer("csk_nope_not-a-key"))).status_code == 401

    assert (await team.publish(PERIOD)).status_code == 200
    published = await get(team.agent(team.agents[0]))
    assert published.status_code == 200 and published.json()["status"] == "published"
    assert published.headers["etag"] != first.headers["etag"]
    assert (await get(team.manager)).content == published.content


async def test_a_database_error_on_a_ranking_read_is_a_problem_not_a_500(
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
