"""What the API fuzz run found, pinned as ordinary tests (they run in `make test`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from service.api.problems import PROBLEM_JSON
from service.openapi import render


async def test_a_405_allows_every_method_of_the_resource(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    # GET and PUT /v1/teams/{id} are two routes; Allow must name both (RFC 9110).
    response = await app_client.request("DELETE", f"/v1/teams/t-{uid}", headers=admin_headers)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "PUT"} <= allowed


async def test_a_body_that_is_not_utf8_is_a_documented_400(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    response = await app_client.put(
        f"/v1/teams/t-{uid}", content=b"\xff\xfe{", headers={
            **admin_headers, "content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "'400':" in render().split("/v1/teams/{team_id}:")[1].split("/v1/")[0]


async def test_force_must_be_a_boolean_not_a_number(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    # `"force": 0` was read as false: a client's mistake passed for a decision.
    response = await app_client.post(
        f"/v1/teams/t-{uid}/cycles/2026-11/close", json={"force": 0}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "force"


async def test_scheme_weights_near_the_float_limit_are_a_422(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    # math.fsum overflowed on them: 500 instead of "weights must sum to 1".
    scheme = (await app_client.get("/v1/schemes/online-shop-cs?version=1",
                                   headers=admin_headers)).json()
    scheme.pop("version", None)
    scheme["scheme_id"] = f"s-{uid}"
    for role in scheme["roles"]:
        role["weight"] = 1.7976931348623157e308
    response = await app_client.put(f"/v1/schemes/s-{uid}", json=scheme, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert any(e["field"] == "roles" for e in response.json()["errors"])


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 65536 + 1):
        yield b" " * 65536


async def test_a_chunked_body_over_the_limit_is_413_not_400(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    # Without Content-Length the limit trips while FastAPI reads the body, which turned any
    # error there into "400 There was an error parsing the body".
    limit = app_client.app.state.ctx.settings.max_body_bytes  # type: ignore[attr-defined]
    response = await app_client.put(
        f"/v1/teams/t-{uid}", content=_chunks(limit + 1),
        headers={**admin_headers, "content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"].endswith("/payload-too-large")


def test_every_error_response_is_documented_as_problem_json() -> None:
    text = render()
    assert "HTTPValidationError" not in text
    assert "application/problem+json" in text
    assert "#/components/responses/Unauthorized" in text
