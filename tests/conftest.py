"""Fixtures shared by the integration, API and fault tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
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


#: The HS256 secret and the bootstrap admin key of the app under test.
TEST_JWT_SECRET = "test-secret-with-enough-entropy-0123456789"
TEST_BOOTSTRAP_KEY = "csk_test_bootstrap_admin_key_0123456789abcdef"


class TestClock:
    """A clock tests can move; the service takes it by injection."""

    def __init__(self, start: datetime | None = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)) -> None:
        self.pinned = start

    @property
    def now(self) -> datetime:
        return self.pinned or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.pinned = moment

    def advance(self, **kwargs: float) -> None:
        self.pinned = self.now + timedelta(**kwargs)


#: The clock of the session's app: real time unless a test pins it (and it is reset after).
SESSION_CLOCK = TestClock(None)


@pytest.fixture
def app_clock() -> Iterator[TestClock]:
    """The session app's clock, pinned for one test and released afterwards."""
    yield SESSION_CLOCK
    SESSION_CLOCK.pinned = None


@pytest.fixture
def clock() -> TestClock:
    """A movable clock."""
    return TestClock()


def test_settings(**overrides: object) -> Settings:
    """Settings for an in-process app under test."""
    values: dict[str, object] = {
        "jwt_secret": TEST_JWT_SECRET,
        "bootstrap_admin_key": TEST_BOOTSTRAP_KEY,
        "projection_poll_seconds": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def app_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the whole app, started with its lifespan, on the test database."""
    from service.main import create_app

    app = create_app(test_settings(), database_url=database_url, migrate_on_start=False,
                     clock=SESSION_CLOCK)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


def bearer(credential: str) -> dict[str, str]:
    """Return the Authorization header for a credential."""
    return {"Authorization": f"Bearer {credential}"}


def make_token(
    role: str,
    subject: str | None = None,
    *,
    source: str | None = None,
    expires_in: float = 3600,
    secret: str = TEST_JWT_SECRET,
    **claims: object,
) -> str:
    """Return an HS256 JWT for the app under test (subject defaults to a unique id)."""
    now = datetime.now(UTC)
    payload: dict[str, object] = {
        "sub": subject or f"{role}-{uuid.uuid4().hex[:8]}",
        "role": role,
        "iat": now,
        "exp": now + timedelta(seconds=expires_in),
    }
    if source is not None:
        payload["source"] = source
    payload.update(claims)
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture
def admin_headers() -> dict[str, str]:
    """Headers with the bootstrap admin key of the app under test."""
    return bearer(TEST_BOOTSTRAP_KEY)


@pytest.fixture
def token_headers() -> Callable[..., dict[str, str]]:
    """Make headers with a JWT: ``token_headers("manager", "m-1")``, ``(.., source="x")``."""

    def make(role: str, subject: str | None = None, **kwargs: Any) -> dict[str, str]:
        return bearer(make_token(role, subject, **kwargs))

    return make


@pytest.fixture
def key_headers(
    app_client: httpx.AsyncClient,
) -> Callable[..., Awaitable[dict[str, str]]]:
    """Make headers with a real API key: ``await key_headers("agent", "a-1")``."""
    from service.commands import keys
    from service.commands.base import Caller
    from service.domain.principal import CLI_PRINCIPAL, event_metadata

    async def make(
        role: str,
        subject: str | None = None,
        *,
        source: str | None = None,
        name: str | None = None,
    ) -> dict[str, str]:
        ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
        if subject is None and role in ("manager", "agent", "rater"):
            subject = f"{role}-{uuid.uuid4().hex[:8]}"
        issued = await keys.issue(
            ctx, Caller(event_metadata(CLI_PRINCIPAL, request_id=None)), role=role,
            subject=subject, source=source, name=name or "test", created_by="tests",
        )
        return bearer(issued.key)

    return make
