"""The demo shop in a database of its own, and the app (with its pages) on top of it."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service import demo
from service.ui.session import CSRF_COOKIE, CSRF_FIELD
from tests.conftest import TestClock, bearer, test_settings
from tests.support.databases import fresh_database

#: The demo fills August to October 2026 and November up to this moment.
DEMO_NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
BASE = "http://csperf.test"
#: What a browser set to English sends: the demo's Shanghai team defaults to Chinese, and the
#: page tests read the English pages unless they ask for another language.
BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


@dataclass
class Shop:
    """The seeded demo: its app, its keys, where it lives."""

    app: FastAPI
    keys: dict[str, str]
    database_url: str
    keys_file: Path
    clock: TestClock

    def api(self, label: str) -> dict[str, str]:
        """Return API headers for one of the demo's keys."""
        return bearer(self.keys[label])


@pytest.fixture(scope="session")
def demo_database_url() -> Iterator[str]:
    """A database of its own: the demo's fixed ids must not meet other tests' data."""
    with fresh_database("csperf_ui") as url:
        yield url


@pytest.fixture(scope="session")
async def shop(demo_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[Shop]:
    """Seed the demo (as `csperf demo` does) and start the app on its database."""
    from service.main import create_app

    keys_file = tmp_path_factory.mktemp("demo") / "demo-keys.json"
    # Small pools: the test server's connections are shared with the rest of the suite.
    keys = await demo.run(test_settings(db_pool_size=8), demo_database_url, now=DEMO_NOW,
                          keys_file=keys_file, out=io.StringIO())
    clock = TestClock(DEMO_NOW + timedelta(minutes=5))
    app = create_app(test_settings(run_scheduler=False, db_pool_size=8),
                     database_url=demo_database_url, migrate_on_start=False, clock=clock)
    async with app.router.lifespan_context(app):
        yield Shop(app, keys, demo_database_url, keys_file, clock)


@pytest.fixture
async def anonymous(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client without a session."""
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=BROWSER) as client:
        yield client


def csrf_of(client: httpx.AsyncClient) -> str:
    """Return the CSRF token the client's cookie jar holds."""
    token = client.cookies.get(CSRF_COOKIE, path="/ui")
    assert token, "no CSRF cookie yet"
    return str(token)


def hidden_token(html: str) -> str:
    """Return the CSRF token a page's form carries."""
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


SignIn = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def sign_in(shop: Shop) -> AsyncIterator[SignIn]:
    """Return a factory of clients signed in with one of the demo's keys (or any key)."""
    clients: list[httpx.AsyncClient] = []

    async def make(label_or_key: str) -> httpx.AsyncClient:
        key = shop.keys.get(label_or_key, label_or_key)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=shop.app), base_url=BASE,
                                   headers=BROWSER)
        clients.append(client)
        page = await client.get("/ui/signin")
        assert page.status_code == 200
        response = await client.post("/ui/signin", data={
            "key": key, CSRF_FIELD: hidden_token(page.text), "next": "/ui"})
        assert response.status_code == 303, response.text
        return client

    yield make
    for client in clients:
        await client.aclose()
