"""Operations endpoints and the problem+json shape of framework errors."""

from __future__ import annotations

import httpx


async def test_healthz_and_readyz(app_client: httpx.AsyncClient) -> None:
    assert (await app_client.get("/healthz")).json() == {"status": "ok"}
    ready = await app_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_metrics_exposes_prometheus_text(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await app_client.get("/healthz")
    response = await app_client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    assert "csperf_http_requests_total" in response.text
    assert 'route="/healthz"' in response.text


async def test_unknown_path_is_problem_json(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["type"].endswith("/not-found")
    assert "/no/such/thing" in body["detail"]


async def test_wrong_method_is_problem_json(app_client: httpx.AsyncClient) -> None:
    response = await app_client.delete("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await app_client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_nul_bytes_in_ids_are_422_not_500(
    app_client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for path in ("/v1/teams/%00", "/v1/streams/a%00b/events", "/v1/agents/x%00"):
        response = await app_client.get(path, headers=admin_headers)
        assert response.status_code in (404, 422), (path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
