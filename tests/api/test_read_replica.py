"""CSPERF_READ_DATABASE_URL: reads that tolerate lag go to the replica, read-your-writes never."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from service.context import ServiceContext
from service.main import create_app
from tests import conftest
from tests.api.test_metrics import NOW, ingest, kpis_url, one, post
from tests.support.databases import fresh_database
from tests.support.scenario import ADMIN, make_team


@asynccontextmanager
async def replica_app(primary: str, replica: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second replica of the service on the test database, reading lag-tolerant lists from
    ``replica`` (the session app's projections keep the read models it reads)."""
    settings = conftest.test_settings(run_scheduler=False, run_projections=False,
                                      db_pool_size=4, read_database_url=replica)
    app = create_app(settings, database_url=primary, migrate_on_start=False,
                     clock=conftest.SESSION_CLOCK)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


def context(client: httpx.AsyncClient) -> ServiceContext:
    ctx: ServiceContext = client.app.state.ctx  # type: ignore[attr-defined]
    return ctx


@pytest.fixture
def behind_url() -> Iterator[str]:
    """A database on the same server that has none of the primary's rows: a replica that has
    not caught up at all."""
    with fresh_database("csperf_replica") as url:
        yield url


async def _quarantined(client: httpx.AsyncClient, source: str) -> list[str]:
    response = await client.get(f"/v1/metrics/quarantine?source={source}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_the_same_server_as_replica_serves_every_read(
    app_client: httpx.AsyncClient, database_url: str, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a, source = team.agents[0], f"chat-{uid}"
    async with replica_app(database_url, database_url) as client:
        ctx = context(client)
        assert ctx.read_db is not None and ctx.lag_tolerant() is ctx.read_db
        assert ctx.read_db is not ctx.db
        batch = [one(a, f"{uid}-1", "consultations", 2), one(f"nobody-{uid}", f"{uid}-2",
                                                             "consultations", 1)]
        answer = await post(client, source, batch, ingest(source))
        assert answer.status_code == 200, answer.text
        assert await _quarantined(client, source) == [f"{uid}-2"]
        kpis = (await client.get(kpis_url(a), headers=team.manager)).json()
        assert kpis["samples"] == 1


async def test_a_lagging_replica_serves_the_quarantine_but_never_kpis_after_a_write(
    app_client: httpx.AsyncClient, database_url: str, behind_url: str, uid: str,
    app_clock: Any,
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a, source = team.agents[0], f"chat-{uid}"
    async with replica_app(database_url, behind_url) as client:
        batch = [one(a, f"{uid}-1", "consultations", 2), one(f"nobody-{uid}", f"{uid}-2",
                                                             "consultations", 1)]
        answer = await post(client, source, batch, ingest(source))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
        # The listing is the replica's: it has not seen the kept sample yet ...
        assert await _quarantined(client, source) == []
        # ... while the totals read right after the 200 are the primary's: read-your-writes.
        kpis = (await client.get(kpis_url(a), headers=team.manager)).json()
        assert kpis["samples"] == 1 and kpis["totals"]["consultations"] == 2
    # The primary has it, as the app without a replica shows.
    assert await _quarantined(app_client, source) == [f"{uid}-2"]
