"""Bad input is a 4xx naming the field, never a 500 (issue 17: the input-validation part)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn

from service.api.problems import PROBLEM_JSON
from tests.conftest import TEST_BOOTSTRAP_KEY, bearer, make_token
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import MANAGER_FORM, Team, make_team
from tests.support.server import free_port

JSON = {"content-type": "application/json"}


def _fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json().get("errors") or []}


def _refused(response: httpx.Response, status: int = 422) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
async def team(app_client: httpx.AsyncClient, uid: str) -> Team:
    """A team of two agents with November open."""
    team = await make_team(app_client, uid, 2)
    await team.open("2026-11")
    return team


# -- 1. lone surrogates ---------------------------------------------------------------------


async def test_a_lone_surrogate_in_a_score_key_is_a_422_echoed_safely(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    agent = team.agents[0]
    response = await app_client.put(
        team.url("2026-11", f"/evaluations/{agent}/self"),
        content=b'{"scores":{"x\\ud800":70}}', headers={**team.agent(agent), **JSON})
    _refused(response)
    # The key is echoed, made safe to encode, not dropped.
    assert [f for f in _fields(response) if f.startswith("scores.x")], response.text


async def test_a_lone_surrogate_in_invited_agent_ids_is_a_422(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    response = await app_client.post(
        team.url("2026-11", "/invitations"),
        content=b'{"rater_id":"peer-1","rater_role":"peer","agent_ids":["a-\\ud800"]}',
        headers={**team.manager, **JSON})
    _refused(response)
    assert _fields(response) == {"agent_ids.0"}, response.text


async def test_a_lone_surrogate_in_a_resolved_target_key_is_a_422(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    agent = team.agents[0]
    response = await app_client.post(
        team.url("2026-11", f"/goals/{agent}/resolve"),
        content=b'{"decision":"adjusted","reason":"ok","targets":{"k\\ud800":{"target":5}}}',
        headers={**team.manager, **JSON})
    _refused(response)
    assert any(f.startswith("targets.k") for f in _fields(response)), response.text


@pytest.mark.parametrize("text", ["\\u0000", "a\\ud800b", "\\udfff"])
async def test_free_text_with_a_nul_or_a_lone_surrogate_is_refused_naming_the_field(
    app_client: httpx.AsyncClient, team: Team, text: str
) -> None:
    # PostgreSQL stores neither (text nor JSONB): refused before anything is stored.
    agent = team.agents[0]
    response = await app_client.put(
        team.url("2026-11", f"/evaluations/{agent}/self"),
        content=b'{"scores":{"task_completion":70},"comment":"' + text.encode() + b'"}',
        headers={**team.agent(agent), **JSON})
    _refused(response)
    assert _fields(response) == {"comment"}
    assert "Error" not in response.text  # no driver class names


@contextlib.asynccontextmanager
async def _served(app_client: httpx.AsyncClient) -> AsyncIterator[int]:
    """Serve the session's app (already started) with real uvicorn on a loopback port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app_client.app, host="127.0.0.1", port=port, lifespan="off",  # type: ignore[attr-defined]
        log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines[1:])
                  if k.lower() == "content-length")
    return status, await reader.readexactly(length)


async def test_the_connection_lives_on_after_a_lone_surrogate(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    # uvicorn closes a keep-alive connection after a 500; the next request on it was reset.
    agent = team.agents[0]
    body = b'{"scores":{"x\\ud800":70}}'
    auth = team.agent(agent)["Authorization"].encode()
    put = (f"PUT {team.url('2026-11', f'/evaluations/{agent}/self')} HTTP/1.1\r\n"
           f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n").encode() + b"Authorization: " + auth
    get = (f"GET /v1/teams/{team.team_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {TEST_BOOTSTRAP_KEY}\r\n\r\n").encode()
    async with _served(app_client) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, _ = await _exchange(reader, writer, put + b"\r\n\r\n" + body)
            assert status == 422
            status, answer = await _exchange(reader, writer, get)
            assert status == 200, answer
        finally:
            writer.close()


# -- 2. periods from 2000-01 to ten years ahead -----------------------------------------------


@pytest.mark.parametrize("period", ["0000-01", "0001-01", "1999-12", "2037-01", "9999-12"])
async def test_a_period_out_of_range_is_a_422_naming_period_everywhere(
    app_client: httpx.AsyncClient, team: Team, app_clock: PinnedClock, period: str
) -> None:
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))  # the last month is 2036-12
    agent = team.agents[0]
    admin = {"Authorization": f"Bearer {TEST_BOOTSTRAP_KEY}"}
    for response in (
        await app_client.post(f"/v1/teams/{team.team_id}/cycles", json={"period": period},
                              headers=team.manager),
        await app_client.get(team.url(period), headers=team.manager),
        await app_client.get(team.url(period, "/ranking"), headers=team.manager),
        await app_client.put(team.url(period, f"/evaluations/{agent}/self"),
                             json={"scores": {"task_completion": 70}}, headers=team.agent(agent)),
        await app_client.get(team.url(period, "/goals"), headers=team.manager),
        await app_client.get("/v1/payroll", params={"period": period}, headers=admin),
        await app_client.get("/v1/sanctions", params={"period": period}, headers=admin),
        await app_client.get(f"/v1/agents/{agent}/kpis", params={"period": period},
                             headers=admin),
    ):
        _refused(response)
        assert _fields(response) == {"period"}, (response.request.url, response.text)


async def test_the_first_and_last_periods_open(
    app_client: httpx.AsyncClient, team: Team, app_clock: PinnedClock
) -> None:
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    for period in ("2000-01", "2036-12"):
        response = await app_client.post(f"/v1/teams/{team.team_id}/cycles",
                                         json={"period": period}, headers=team.manager)
        assert response.status_code == 201, response.text


# -- 7. ids and text the database cannot store ----------------------------------------------


async def test_a_nul_in_an_id_is_a_422_naming_it_in_path_body_and_query(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    admin = {"Authorization": f"Bearer {TEST_BOOTSTRAP_KEY}"}
    cases = [
        (await app_client.get("/v1/teams/t%00", headers=admin), "team_id"),
        (await app_client.get(team.url("2026-11", "/scorecards/a%00"), headers=admin),
         "agent_id"),
        (await app_client.get("/v1/agents/a%00/kpis", headers=admin), "agent_id"),
        (await app_client.get("/v1/schemes/s%00", headers=admin), "scheme_id"),
        (await app_client.put("/v1/agents/a-1", json={"name": "A", "team_id": "t\x00"},
                              headers=admin), "team_id"),
        (await app_client.put(f"/v1/teams/{team.team_id}",
                              json={"name": "T", "manager_ids": ["m\x00"]}, headers=admin),
         "manager_ids.0"),
        (await app_client.get("/v1/keys", params={"subject": "a\x00"}, headers=admin),
         "subject"),
        (await app_client.get("/v1/metrics/quarantine", params={"agent_id": "a\x00"},
                              headers=admin), "agent_id"),
        (await app_client.get("/v1/metrics/quarantine", params={"reason": "r\x00"},
                              headers=admin), "reason"),
        (await app_client.get(f"/v1/teams/{team.team_id}/agents", params={"position": "p\x00"},
                              headers=admin), "position"),
    ]
    for response, field in cases:
        _refused(response)
        assert field in _fields(response), (response.request.url, response.text)
        assert "Error" not in response.text  # no driver class names


# -- 3. scores and targets are JSON numbers only ----------------------------------------------


@pytest.mark.parametrize("score", [b"true", b"false", b'"80"', b"NaN", b"Infinity", b"null"])
async def test_a_score_that_is_not_a_json_number_is_a_422_naming_the_criterion(
    app_client: httpx.AsyncClient, team: Team, score: bytes
) -> None:
    agent = team.agents[0]
    response = await app_client.put(
        team.url("2026-11", f"/evaluations/{agent}/self"),
        content=b'{"scores":{"task_completion":' + score + b"}}",
        headers={**team.agent(agent), **JSON})
    _refused(response)
    assert _fields(response) == {"scores.task_completion"}, response.text


async def test_scores_as_integers_and_decimals_are_taken(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    agent = team.agents[0]
    for score in (70, 72.5):
        response = await app_client.put(
            team.url("2026-11", f"/evaluations/{agent}/self"),
            json={"scores": {"task_completion": score}}, headers=team.agent(agent))
        assert response.status_code == 200, response.text
        assert response.json()["scores"] == {"task_completion": score}


@pytest.mark.parametrize("value", ["5", True])
async def test_a_target_that_is_not_a_json_number_is_a_422(
    app_client: httpx.AsyncClient, team: Team, value: object
) -> None:
    agent = team.agents[0]
    response = await app_client.post(
        team.url("2026-11", f"/goals/{agent}/resolve"),
        json={"decision": "adjusted", "reason": "ok",
              "targets": {"order_amount": {"target": value}}}, headers=team.manager)
    _refused(response)
    assert _fields(response) == {"targets.order_amount.target"}, response.text


# -- 8. POST /v1/metrics reads JSON only --------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "application/xml", "*/*", None])
async def test_a_metrics_batch_in_another_media_type_is_a_415(
    app_client: httpx.AsyncClient, uid: str, content_type: str | None
) -> None:
    source = f"chat-{uid}"
    headers = bearer(make_token("ingest", source=source))
    if content_type is not None:
        headers["content-type"] = content_type
    body = b'{"source":"' + source.encode() + b'","samples":[]}'
    response = await app_client.post("/v1/metrics", content=body, headers=headers)
    _refused(response, 415)
    assert response.headers["accept-post"] == "application/json, text/csv, application/x-ndjson"


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "application/vnd.csperf+json"])
async def test_a_metrics_batch_in_json_is_read(
    app_client: httpx.AsyncClient, uid: str, content_type: str
) -> None:
    source = f"chat-{uid}"
    headers = {**bearer(make_token("ingest", source=source)), "content-type": content_type}
    body = b'{"source":"' + source.encode() + b'","samples":[]}'
    response = await app_client.post("/v1/metrics", content=body, headers=headers)
    assert response.status_code == 200, response.text


# -- HEAD answers as GET without a body -------------------------------------------------------


async def test_head_answers_every_get_route_as_get_without_a_body(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    admin = {"Authorization": f"Bearer {TEST_BOOTSTRAP_KEY}"}
    csv = {**admin, "accept": "text/csv"}
    for url, headers in (
        ("/healthz", {}),
        (f"/v1/teams/{team.team_id}", admin),
        (f"/v1/teams/{team.team_id}/agents", csv),
        (team.url("2026-11", "/ranking"), csv),
        ("/v1/events/stream", {**admin, "accept": "text/event-stream"}),
    ):
        got = await app_client.head(url, headers=headers)
        assert got.status_code == 200, (url, got.text)
        assert got.content == b"", url
        if "stream" not in url:
            full = await app_client.get(url, headers=headers)
            assert got.headers["content-type"] == full.headers["content-type"], url
            assert got.headers.get("content-length") == full.headers.get("content-length"), url
    # The checks of GET run: no credential is still a 401, and an unknown team a 404.
    assert (await app_client.head(f"/v1/teams/{team.team_id}")).status_code == 401
    assert (await app_client.head("/v1/teams/t-none-such", headers=admin)).status_code == 404
    # A path without GET still refuses HEAD, and Allow names HEAD beside GET where it can.
    refused = await app_client.head(f"/v1/teams/{team.team_id}/cycles", headers=admin)
    assert refused.status_code == 405
    allowed = await app_client.delete(f"/v1/teams/{team.team_id}", headers=admin)
    assert {"GET", "HEAD", "PUT"} <= {m.strip() for m in allowed.headers["allow"].split(",")}


async def test_head_over_a_real_connection_keeps_it_usable(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    head = b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    get = (f"GET /v1/teams/{team.team_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: Bearer {TEST_BOOTSTRAP_KEY}\r\n\r\n").encode()
    async with _served(app_client) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head)
            await writer.drain()
            answer = await reader.readuntil(b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200"), answer
            status, body = await _exchange(reader, writer, get)  # no stray body before it
            assert status == 200, body
        finally:
            writer.close()


# -- only the agent submits their self-evaluation ---------------------------------------------


async def test_an_admin_may_not_submit_an_agents_self_evaluation(
    app_client: httpx.AsyncClient, team: Team
) -> None:
    agent = team.agents[0]
    admin = {"Authorization": f"Bearer {TEST_BOOTSTRAP_KEY}"}
    url = team.url("2026-11", f"/evaluations/{agent}/self")
    refused = await app_client.put(url, json={"scores": {"task_completion": 90}}, headers=admin)
    body = _refused(refused, 403)
    assert body["detail"] == "only the agent may submit their own self-evaluation"
    # Nothing was stored, and the agent's own goes through; an admin still rates as manager.
    listed = await app_client.get(team.url("2026-11", "/evaluations"), headers=admin)
    assert listed.json()["items"] == []
    await team.self_eval("2026-11", agent, 70.0)
    manager = await app_client.put(
        team.url("2026-11", f"/evaluations/{agent}/manager"),
        json={"scores": dict.fromkeys(MANAGER_FORM, 60)}, headers=admin)
    assert manager.status_code == 200, manager.text
