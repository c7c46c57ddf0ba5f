"""SIGKILL the service under mixed load and restart it: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import httpx
import pytest

from service.projections.admin import rebuild
from service.store.database import Database
from tests.conftest import make_token
from tests.support.scenario import ADMIN, MANAGER_FORM
from tests.support.server import ServiceProcess

pytestmark = pytest.mark.faults
PERIOD = "2026-11"


async def _snapshot(db: Database, table: str, key: str) -> list[tuple[object, ...]]:
    async with db.connection() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
    return [tuple(r.values()) for r in rows]


async def test_sigkill_under_load_loses_no_acknowledged_write(
    db: Database, database_url: str, uid: str
) -> None:
    service = ServiceProcess(database_url)
    await asyncio.to_thread(service.start)
    team = f"crash-{uid}"
    manager = {"Authorization": f"Bearer {make_token('manager', f'm-{uid}')}"}
    acknowledged: list[tuple[str, str, float]] = []  # (kind, id, value)
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            r = await client.put(f"/v1/teams/{team}", headers=ADMIN,
                                 json={"name": "Crash", "manager_ids": [f"m-{uid}"]})
            assert r.status_code == 201
            r = await client.post(f"/v1/teams/{team}/cycles", headers=manager,
                                  json={"period": PERIOD, "scheme_version": 1})
            assert r.status_code == 201

            stop_at = time.monotonic() + 2.0

            async def worker(n: int) -> None:
                rng = random.Random(n)
                i = 0
                while time.monotonic() < stop_at:
                    i += 1
                    agent = f"a-{uid}-{n}-{i}"
                    try:
                        r = await client.put(f"/v1/agents/{agent}", headers=ADMIN,
                                             json={"name": f"N{i}", "team_id": team})
                        if r.status_code in (200, 201):
                            acknowledged.append(("agent", agent, 0))
                        score = float(rng.randint(0, 100))
                        r = await client.put(
                            f"/v1/teams/{team}/cycles/{PERIOD}/evaluations/{agent}/manager",
                            headers=manager, json={"scores": dict.fromkeys(MANAGER_FORM, score)})
                        if r.status_code == 200:
                            acknowledged.append(("evaluation", agent, score))
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)  # the service is down; keep trying

            async def killer() -> None:
                await asyncio.sleep(1.0)
                service.kill()

            await asyncio.gather(*[worker(n) for n in range(8)], killer())
        assert acknowledged, "no write was acknowledged before the kill"

        await asyncio.to_thread(service.start)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            events = (await client.get(f"/v1/streams/cycle:{team}:{PERIOD}/events",
                                       params={"limit": 1000}, headers=ADMIN)).json()["items"]
            stored = {e["data"]["agent_id"]: e["data"]["scores"]["work_ability"]
                      for e in events if e["type"] == "EvaluationSubmitted"}
            for kind, agent, value in acknowledged:
                if kind == "agent":
                    r = await client.get(f"/v1/agents/{agent}", headers=ADMIN)
                    assert r.status_code == 200, f"acknowledged agent {agent} lost"
                else:
                    assert stored.get(agent) == value, f"acknowledged evaluation of {agent} lost"
            # The read models have caught up with everything that was stored...
            listed = {a["agent_id"] for a in (await client.get(
                f"/v1/teams/{team}/agents", params={"limit": 1000},
                headers=ADMIN)).json()["items"]}
            assert {a for k, a, _ in acknowledged if k == "agent"} <= listed

        # ...and equal a rebuild from zero.
        before = await _snapshot(db, "agents", "agent_id")
        assert await rebuild(db, "directory") == 0
        after = await _snapshot(db, "agents", "agent_id")
        assert after == before
    finally:
        await asyncio.to_thread(service.stop)
