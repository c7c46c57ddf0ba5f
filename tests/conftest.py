"""Fixtures shared by the integration, API and fault tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.config import Settings
from service.store.database import Database
from tests.support.databases import fresh_database


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database of this test run's own on real PostgreSQL."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    """A pool on the test database."""
    database = Database(database_url, pool_size=60)
    yield database
    await database.close()


@pytest.fixture
def uid() -> str:
    """A short unique id so tests never collide inside the shared database."""
    return uuid.uuid4().hex[:10]


class TestClock:
    """A clock tests can move; the service takes it by injection."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> TestClock:
    """A movable clock."""
    return TestClock()


def test_settings(**overrides: object) -> Settings:
    """Settings for an in-process app under test."""
    values: dict[str, object] = {
        "jwt_secret": "test-secret-with-enough-entropy-0123456789",
        "bootstrap_admin_key": "csk_test_bootstrap_admin_key_0123456789abcdef",
        "projection_poll_seconds": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the whole app, started with its lifespan, on the test database."""
    from service.main import create_app

    app = create_app(test_settings(), database_url=database_url, migrate_on_start=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c
