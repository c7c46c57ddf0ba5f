"""Operations endpoints and the problem+json shape of framework errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from service.main import create_app
from tests import conftest
from tests.conftest import TEST_BOOTSTRAP_KEY, bearer
from tests.support.databases import fresh_database


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
    # Every live projection's lag (events that count for it, past its checkpoint).
    lags = [line for line in response.text.splitlines()
            if line.startswith("csperf_projection_lag_events{")]
    assert any('projection="directory"' in line for line in lags)
    assert all(float(line.rsplit(" ", 1)[1]) >= 0 for line in lags)


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


@pytest.fixture
def new_database_url() -> Iterator[str]:
    with fresh_database("csperf_first_read") as url:
        yield url


async def test_a_new_database_serves_its_first_read_without_a_missing_table(
    new_database_url: str,
) -> None:
    # The read models' tables are made by the projections as they start; a start waits for
    # them, so even the very first ranking read of a new installation is a plain 404.
    app = create_app(conftest.test_settings(run_scheduler=False, db_pool_size=4),
                     database_url=new_database_url, migrate_on_start=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await client.get("/v1/teams/nobody/cycles/2026-11/ranking",
                                     headers=bearer(TEST_BOOTSTRAP_KEY))
    assert first.status_code == 404, first.text
