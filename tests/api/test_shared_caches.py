"""Caches held by each process and dropped in all of them at once: a second app instance on
the same database (a replica) sees a revocation and a correction with its next request, and
serves nothing held for more than the short time-to-live while it cannot hear the changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.main import create_app
from service.store.database import Database
from service.store.errors import DatabaseUnavailable
from service.store.invalidation import CacheListener
from tests.conftest import SESSION_CLOCK, bearer
from tests.conftest import test_settings as settings_with
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
#: Any GET a reader key may make.
SCHEME = "/v1/schemes/online-shop-cs"
#: How long the replica may take to hear a notification: far under the entries' lifetimes
#: while listening (minutes) and under the 1 s they have while not listening.
HEARD_WITHIN = 0.3


@pytest.fixture
async def replica(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A second instance of the app on the session's database; the session app projects."""
    app = create_app(settings_with(run_projections=False), database_url=database_url,
                     migrate_on_start=False, clock=SESSION_CLOCK)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica.test") as c:
            c.app = app  # type: ignore[attr-defined]
            await _until(lambda: _listening(c))
            yield c


def _ctx(client: httpx.AsyncClient) -> Any:
    return client.app.state.ctx  # type: ignore[attr-defined]


def _listening(client: httpx.AsyncClient) -> bool:
    return all(cache.listening for cache in _ctx(client).shared_caches())


async def _until(condition: Any, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def _status_within(client: httpx.AsyncClient, url: str, headers: dict[str, str],
                         status: int, seconds: float) -> int:
    """Return the status answered within seconds, stopping at the one expected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        answered = (await client.get(url, headers=headers)).status_code
        if answered == status or loop.time() > deadline:
            return answered
        await asyncio.sleep(0.01)


async def _issue_key(client: httpx.AsyncClient, uid: str) -> tuple[str, str]:
    created = await client.post("/v1/keys", json={"role": "reader", "name": f"bi-{uid}"},
                                headers=ADMIN)
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["key_id"]


async def test_a_key_revoked_on_one_instance_is_refused_by_the_other_at_once(
    app_client: httpx.AsyncClient, replica: httpx.AsyncClient, uid: str
) -> None:
    key, key_id = await _issue_key(app_client, uid)
    assert (await replica.get(SCHEME, headers=bearer(key))).status_code == 200
    # Held now: the replica answers without asking the database for the key.
    assert len(_ctx(replica).keys) >= 1
    revoked = await app_client.post(f"/v1/keys/{key_id}/revoke", headers=ADMIN)
    assert revoked.status_code == 200
    assert await _status_within(replica, SCHEME, bearer(key), 401, HEARD_WITHIN) == 401
    assert (await app_client.get(SCHEME, headers=bearer(key))).status_code == 401


async def test_a_corrected_month_republished_on_one_instance_is_what_the_other_serves(
    app_client: httpx.AsyncClient, replica: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, {a: 90, b: 60})
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    url = team.url(PERIOD, "/ranking")
    first = await replica.get(url, headers=team.manager)
    while first.json()["status"] != "published":  # the session app projects; it may lag
        await asyncio.sleep(0.02)
        first = await replica.get(url, headers=team.manager)
    assert [e["agent_id"] for e in first.json()["entries"]] == [a, b]
    assert _ctx(replica).rankings.get((team.team_id, PERIOD)) is not None

    reopened = await app_client.post(team.url(PERIOD, "/reopen"),
                                     json={"reason": "dispute upheld"}, headers=team.manager)
    assert reopened.status_code == 200
    await team.evaluate_all(PERIOD, {b: 95})
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    again = await replica.get(url, headers={**team.manager,
                                            "If-None-Match": first.headers["etag"]})
    assert again.status_code == 200
    assert [e["agent_id"] for e in again.json()["entries"]] == [b, a]
    assert again.headers["etag"] != first.headers["etag"]
    assert again.content == (await app_client.get(url, headers=team.manager)).content


class _Away:
    """A database that cannot be reached (for the listener only)."""

    async def connect_single(self) -> Any:
        raise DatabaseUnavailable("ConnectionRefusedError")


async def test_while_the_listener_is_down_held_entries_live_the_short_ttl(
    app_client: httpx.AsyncClient, replica: httpx.AsyncClient, db: Database, uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, key_id = await _issue_key(app_client, uid)
    assert (await replica.get(SCHEME, headers=bearer(key))).status_code == 200
    listener: CacheListener = replica.app.state.cache_listener  # type: ignore[attr-defined]
    pid = listener._conn.get_server_pid()  # type: ignore[union-attr]
    monkeypatch.setattr(listener, "db", _Away())  # it cannot listen again
    await db.fetchval("SELECT pg_terminate_backend($1)", pid)
    await _until(lambda: not _listening(replica))

    revoked = await app_client.post(f"/v1/keys/{key_id}/revoke", headers=ADMIN)
    assert revoked.status_code == 200  # unheard by the replica
    ttl = _ctx(replica).keys.fallback_ttl
    assert ttl <= 1.0
    await asyncio.sleep(ttl + 0.1)
    assert (await replica.get(SCHEME, headers=bearer(key))).status_code == 401

    # Listening again, it drops what it held (it may have missed changes) and trusts anew.
    monkeypatch.undo()
    await _until(lambda: _listening(replica), seconds=10)
    assert len(_ctx(replica).keys) == 0
