"""Authentication over HTTP: keys, tokens, revocation, scopes, rate limits, audit and logs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI
from pydantic import ValidationError

from service.api.auth import allow, endpoints, ensure_manager_of, ensure_self, ensure_source
from service.api.keys import register_bootstrap_key
from service.cli import main as cli
from service.commands import keys as key_commands
from service.commands.base import Caller
from service.config import get_settings, settings_problems
from service.context import ServiceContext
from service.domain.principal import Principal
from service.store import event_store, keys
from service.store.database import Database
from tests import conftest
from tests.conftest import TEST_BOOTSTRAP_KEY, bearer, make_token
from tests.support.databases import fresh_database

KeyHeaders = Callable[..., Awaitable[dict[str, str]]]
TokenHeaders = Callable[..., dict[str, str]]

RSA_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_PRIVATE.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()


def unique_ip() -> str:
    """Return a client address of this test's own, so failure counts never leak across tests."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


@asynccontextmanager
async def client_for(app: FastAPI, ip: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Open a client on a running app that connects from its own address."""
    transport = httpx.ASGITransport(app=app, client=(ip or unique_ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as client:
        yield client


@pytest.fixture
async def client(app_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the shared app from an address of this test's own."""
    async with client_for(app_client.app) as c:  # type: ignore[attr-defined]
        yield c


# A small app with test-only routes for the scope helpers, RS256, and a low failure limit.
scratch_router = APIRouter(prefix="/scratch")


@scratch_router.post("/metrics/{source}")
async def push(source: str, principal: Annotated[Principal, allow("ingest")]) -> dict[str, str]:
    """Accept a push for a source (test only)."""
    ensure_source(principal, source)
    return {"source": source}


@scratch_router.get("/teams/{team_id}")
async def team(team_id: str, principal: Annotated[Principal, allow("manager")]) -> dict[str, str]:
    """Read a team managed by m-owner (test only)."""
    ensure_manager_of(principal, ["m-owner"])
    return {"team_id": team_id}


@scratch_router.get("/agents/{agent_id}")
async def agent(
    agent_id: str, principal: Annotated[Principal, allow("agent")]
) -> dict[str, str]:
    """Read an agent (test only)."""
    ensure_self(principal, agent_id)
    return {"agent_id": agent_id}


SCRATCH_LIMIT = 4


@pytest.fixture(scope="module")
async def scratch_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app with test-only routes, RS256 configured and a low failure limit, started."""
    from service.main import create_app

    settings = conftest.test_settings(
        jwt_public_key=RSA_PUBLIC_PEM, auth_failure_limit=SCRATCH_LIMIT, run_projections=False
    )
    app = create_app(settings, database_url=database_url, migrate_on_start=False)
    app.include_router(scratch_router)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def proxied_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app as deployed behind a reverse proxy at 10.99.0.0/16, with a low failure limit."""
    from service.main import create_app

    settings = conftest.test_settings(
        trusted_proxies="10.99.0.0/16", auth_failure_limit=SCRATCH_LIMIT, run_projections=False
    )
    app = create_app(settings, database_url=database_url, migrate_on_start=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def scratch(scratch_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the scratch app from an address of this test's own."""
    async with client_for(scratch_app) as c:
        yield c


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


# -- keys over HTTP ------------------------------------------------------------------------


async def test_bootstrap_admin_key_works(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/keys", headers=bearer(TEST_BOOTSTRAP_KEY))
    assert response.status_code == 200
    boot = [k for k in response.json()["items"] if k["key_id"].startswith("boot")]
    assert boot and boot[0]["role"] == "admin"


async def test_issue_use_list_and_revoke_a_key(
    client: httpx.AsyncClient, admin_headers: dict[str, str], db: Database, uid: str
) -> None:
    created = await client.post(
        "/v1/keys", json={"role": "agent", "subject": f"a-{uid}", "name": "laptop"},
        headers={**admin_headers, "X-Correlation-Id": f"corr-{uid}"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    key, key_id = body["key"], body["key_id"]
    assert key.startswith(f"csk_{key_id}_") and body["prefix"] == key_id
    assert body["role"] == "agent" and body["subject"] == f"a-{uid}"

    # The key works, as the agent it names.
    assert (await client.get("/metrics", headers=bearer(key))).status_code == 403

    listing = await client.get("/v1/keys", headers=admin_headers)
    assert key not in listing.text and "hash" not in listing.text
    mine = next(k for k in listing.json()["items"] if k["key_id"] == key_id)
    boot = await keys.find_by_key(db, TEST_BOOTSTRAP_KEY)
    assert boot is not None
    assert mine["revoked_at"] is None and mine["created_by"] == f"apikey:{boot.key_id}"

    revoked = await client.post(f"/v1/keys/{key_id}/revoke", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_401(await client.get("/metrics", headers=bearer(key)))  # at once, no cache
    again = await client.post(f"/v1/keys/{key_id}/revoke", headers=admin_headers)
    assert again.status_code == 200

    async with db.connection() as conn:
        events = await event_store.read_stream(conn, f"apikey:{key_id}")
    assert [e.type for e in events] == ["ApiKeyIssued", "ApiKeyRevoked"]
    for event in events:
        assert key not in str(event.data) and key.split("_", 2)[2] not in str(event.data)
        assert keys.hash_key(key).hex() not in str(event.data)
        assert event.data["role"] == "agent"
    issued = events[0].metadata
    assert issued["actor"] == {
        "subject": f"apikey:{boot.key_id}", "role": "admin", "key_id": boot.key_id
    }
    assert issued["correlation_id"] == f"corr-{uid}"
    assert issued["request_id"] == created.headers["x-request-id"]
    assert issued["causation_id"] is None


async def test_revoking_an_unknown_key_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post("/v1/keys/nosuchkey/revoke", headers=admin_headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "ingest"}, "source"),
        ({"role": "agent"}, "subject"),
        ({"role": "manager", "source": "x"}, "subject"),
        ({"role": "admin", "source": "chat"}, "source"),
        ({"role": "boss"}, "role"),
        ({"role": "agent", "subject": "not an id!"}, "subject"),
        ({}, "role"),
    ],
)
async def test_key_requests_are_validated(
    client: httpx.AsyncClient, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/keys", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_only_admins_manage_keys(
    client: httpx.AsyncClient, token_headers: TokenHeaders, key_headers: KeyHeaders
) -> None:
    for headers in (token_headers("manager", "m-1"), await key_headers("reader")):
        created = await client.post("/v1/keys", json={"role": "admin"}, headers=headers)
        assert created.status_code == 403
        assert (await client.post("/v1/keys/x/revoke", headers=headers)).status_code == 403
    # Readers see every GET but the key listing.
    assert (await client.get("/v1/keys", headers=await key_headers("reader"))).status_code == 403
    assert (await client.get("/metrics", headers=await key_headers("reader"))).status_code == 200


async def test_an_ingest_key_is_issued_with_its_source(
    client: httpx.AsyncClient, admin_headers: dict[str, str], uid: str
) -> None:
    response = await client.post(
        "/v1/keys", json={"role": "ingest", "source": f"chat-{uid}"}, headers=admin_headers
    )
    assert response.status_code == 201
    assert response.json()["source"] == f"chat-{uid}"


# -- refused credentials -------------------------------------------------------------------


async def test_missing_and_malformed_credentials_are_401(client: httpx.AsyncClient) -> None:
    assert_401(await client.get("/metrics"))
    assert_401(await client.get("/metrics", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_401(await client.get("/metrics", headers={"Authorization": "Bearer"}))
    assert_401(await client.get("/metrics", headers=bearer("garbage")))
    assert_401(await client.get("/metrics", headers=bearer("csk_abcd1234_wrongsecret")))


async def test_bad_tokens_are_401(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    forged = make_token("admin", secret="not-the-service-secret-0123456789abc")
    expired = make_token("admin", expires_in=-3600)
    future = make_token("admin", nbf=now + timedelta(hours=1))
    unsigned = jwt.encode({"sub": "x", "role": "admin", "exp": now + timedelta(hours=1)},
                          key=None, algorithm="none")
    for token in (forged, expired, future, unsigned):
        response = await client.get("/metrics", headers=bearer(token))
        assert_401(response)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "expired" in (await client.get("/metrics", headers=bearer(expired))).json()["detail"]


async def test_a_valid_token_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics", headers=bearer(make_token("reader")))).status_code == 200


# -- scopes, through routes ----------------------------------------------------------------


async def test_an_ingest_key_for_another_source_is_refused(
    scratch: httpx.AsyncClient, key_headers: KeyHeaders, uid: str
) -> None:
    headers = await key_headers("ingest", source=f"chat-{uid}")
    assert (await scratch.post(f"/scratch/metrics/chat-{uid}", headers=headers)).status_code == 200
    other = await scratch.post(f"/scratch/metrics/phone-{uid}", headers=headers)
    assert other.status_code == 403 and other.json()["type"].endswith("/out-of-scope")
    # An ingest credential is for pushing metrics only.
    assert (await scratch.get("/scratch/teams/t", headers=headers)).status_code == 403
    assert (await scratch.get("/metrics", headers=headers)).status_code == 403


async def test_a_manager_of_another_team_is_refused(
    scratch: httpx.AsyncClient, key_headers: KeyHeaders
) -> None:
    owner = await key_headers("manager", "m-owner")
    stranger = await key_headers("manager", "m-stranger")
    assert (await scratch.get("/scratch/teams/t1", headers=owner)).status_code == 200
    refused = await scratch.get("/scratch/teams/t1", headers=stranger)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"


async def test_an_agent_reading_another_agent_is_refused(
    scratch: httpx.AsyncClient, token_headers: TokenHeaders, uid: str
) -> None:
    me = token_headers("agent", f"a-{uid}")
    assert (await scratch.get(f"/scratch/agents/a-{uid}", headers=me)).status_code == 200
    assert (await scratch.get(f"/scratch/agents/b-{uid}", headers=me)).status_code == 403


def _route_exists(app: FastAPI, method: str, path: str) -> bool:
    return any((e.method, e.path) == (method, path) for e in endpoints(app))


async def test_scopes_on_the_directory_routes(
    app_client: httpx.AsyncClient, client: httpx.AsyncClient, admin_headers: dict[str, str],
    token_headers: TokenHeaders, uid: str,
) -> None:
    app: FastAPI = app_client.app  # type: ignore[attr-defined]
    if not (_route_exists(app, "PUT", "/v1/teams/{team_id}")
            and _route_exists(app, "GET", "/v1/agents/{agent_id}")):
        pytest.skip("the directory routes are not in the app yet")
    team_id, manager, agent_id = f"t-{uid}", f"m-{uid}", f"a-{uid}"
    put = await client.put(f"/v1/teams/{team_id}", headers=admin_headers,
                           json={"name": "Team", "manager_ids": [manager]})
    assert put.status_code in (200, 201), put.text
    put = await client.put(f"/v1/agents/{agent_id}", headers=admin_headers,
                           json={"name": "Agent", "team_id": team_id})
    assert put.status_code in (200, 201), put.text

    async def status(path: str, headers: dict[str, str]) -> int:
        return (await client.get(path, headers=headers)).status_code

    assert await status(f"/v1/teams/{team_id}", token_headers("manager", manager)) == 200
    assert await status(f"/v1/teams/{team_id}", token_headers("manager", f"x-{uid}")) == 403
    assert await status(f"/v1/agents/{agent_id}", token_headers("agent", agent_id)) == 200
    assert await status(f"/v1/agents/{agent_id}", token_headers("agent", f"b-{uid}")) == 403
    assert await status(f"/v1/agents/{agent_id}", token_headers("reader")) == 200


# -- RS256 -----------------------------------------------------------------------------------


async def test_rs256_tokens_when_configured(scratch: httpx.AsyncClient) -> None:
    exp = datetime.now(UTC) + timedelta(hours=1)
    good = jwt.encode({"sub": "bi", "role": "reader", "exp": exp}, RSA_PRIVATE, algorithm="RS256")
    assert (await scratch.get("/metrics", headers=bearer(good))).status_code == 200
    # The public key used as an HMAC secret must not verify (algorithm confusion).
    header = {"alg": "HS256", "typ": "JWT"}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = {"sub": "x", "role": "admin", "exp": int(exp.timestamp())}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(RSA_PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    assert_401(await scratch.get("/metrics", headers=bearer(f"{signing_input}.{b64(mac)}")))


# -- rate limit ------------------------------------------------------------------------------


def bad_key(secret: str | None = None, prefix: str | None = None) -> str:
    """Return an API key nobody issued (a fresh secret and prefix unless given)."""
    return f"csk_{prefix or uuid.uuid4().hex[:8]}_{secret or uuid.uuid4().hex}"


def forged_token(subject: str | None = None) -> str:
    """Return a JWT signed with the wrong secret: it proves no identity."""
    return make_token("agent", subject, secret="not-the-service-secret-0123456789abcdef")


async def test_failures_past_the_limit_are_429_with_retry_after(scratch_app: FastAPI) -> None:
    async with client_for(scratch_app) as c:
        for _ in range(SCRATCH_LIMIT):
            assert_401(await c.get("/metrics", headers=bearer(bad_key())))
        limited = await c.get("/metrics", headers=bearer(bad_key()))
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
    async with client_for(scratch_app) as elsewhere:
        assert_401(await elsewhere.get("/metrics", headers=bearer(bad_key())))


async def test_bad_jwts_from_one_address_do_not_lock_out_valid_users_behind_it(
    scratch_app: FastAPI, key_headers: KeyHeaders
) -> None:
    # Issue 17 item 4: 20 bad JWTs behind one address (a proxy, an office) used to refuse
    # every valid JWT from that address for a minute.
    async with client_for(scratch_app) as c:
        answers = [(await c.get("/metrics", headers=bearer(forged_token()))).status_code
                   for _ in range(25)]
        assert answers[:SCRATCH_LIMIT] == [401] * SCRATCH_LIMIT
        assert set(answers[SCRATCH_LIMIT:]) == {429}
        assert (await c.get("/metrics", headers=bearer(make_token("reader")))).status_code == 200
        assert (await c.get("/metrics", headers=await key_headers("reader"))).status_code == 200


async def test_a_brute_force_from_one_address_brakes_failures_only(
    scratch_app: FastAPI, key_headers: KeyHeaders
) -> None:
    async with client_for(scratch_app) as c:
        for _ in range(SCRATCH_LIMIT):
            assert_401(await c.get("/metrics", headers=bearer(bad_key())))
        # A new prefix, a new secret or a JWT instead: still the same address, still braked.
        assert (await c.get("/metrics", headers=bearer(bad_key()))).status_code == 429
        assert (await c.get("/metrics", headers=bearer(forged_token()))).status_code == 429
        # Valid credentials from that address pass.
        assert (await c.get("/metrics", headers=await key_headers("reader"))).status_code == 200
        assert (await c.get("/metrics", headers=bearer(make_token("reader")))).status_code == 200


async def test_a_brute_force_on_one_key_is_braked_whatever_its_prefix_and_address(
    scratch_app: FastAPI,
) -> None:
    secret = uuid.uuid4().hex
    answers = []
    for _ in range(SCRATCH_LIMIT + 2):
        async with client_for(scratch_app) as c:  # a new address each time
            answers.append((await c.get("/metrics", headers=bearer(bad_key(secret)))).status_code)
    assert answers == [401] * SCRATCH_LIMIT + [429, 429]


async def test_a_brute_force_on_one_token_subject_is_braked_but_its_valid_token_passes(
    scratch_app: FastAPI, uid: str
) -> None:
    subject = f"a-{uid}"
    answers = []
    for _ in range(SCRATCH_LIMIT + 2):
        async with client_for(scratch_app) as c:
            expired = make_token("reader", subject, expires_in=-3600)
            answers.append((await c.get("/metrics", headers=bearer(expired))).status_code)
    assert answers == [401] * SCRATCH_LIMIT + [429, 429]
    async with client_for(scratch_app) as c:
        valid = make_token("reader", subject)
        assert (await c.get("/metrics", headers=bearer(valid))).status_code == 200
    # A forged signature proves no subject, so it cannot brake somebody else's name.
    victim = f"v-{uid}"
    for _ in range(SCRATCH_LIMIT + 2):
        async with client_for(scratch_app) as c:
            assert_401(await c.get("/metrics", headers=bearer(forged_token(victim))))


def behind_proxy(app: FastAPI, peer: str) -> httpx.AsyncClient:
    """Return a client reaching the app from ``peer`` through uvicorn's proxy-header handling,
    configured as `csperf serve` configures it."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from service.cli import proxy_options

    proxy_headers, allowed = proxy_options(app.state.ctx.settings)
    assert proxy_headers and allowed is not None
    wrapped = ProxyHeadersMiddleware(app, trusted_hosts=allowed)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=wrapped, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://csperf.test")


def test_without_trusted_proxies_forwarded_headers_are_ignored() -> None:
    from service.cli import proxy_options

    assert proxy_options(conftest.test_settings()) == (False, None)
    assert proxy_options(conftest.test_settings(trusted_proxies="10.0.0.1, 172.16.0.0/12")) == (
        True, ["10.0.0.1", "172.16.0.0/12"]
    )


async def test_the_client_address_comes_from_x_forwarded_for_only_via_a_trusted_proxy(
    proxied_app: FastAPI,
) -> None:
    raw = uuid.uuid4().bytes
    trusted_peer = f"10.99.{raw[0]}.{raw[1]}"  # inside the trusted 10.99.0.0/16
    client_a, client_b = f"203.0.{raw[2]}.1", f"203.0.{raw[2]}.2"
    async with behind_proxy(proxied_app, trusted_peer) as proxy:
        for _ in range(SCRATCH_LIMIT):
            assert_401(await proxy.get("/metrics", headers={
                **bearer(bad_key()), "X-Forwarded-For": client_a}))
        braked = await proxy.get("/metrics", headers={
            **bearer(bad_key()), "X-Forwarded-For": client_a})
        assert braked.status_code == 429
        # Another client behind the same proxy is another address.
        assert_401(await proxy.get("/metrics", headers={
            **bearer(bad_key()), "X-Forwarded-For": client_b}))
    untrusted_peer = f"10.98.{raw[0]}.{raw[1]}"
    async with behind_proxy(proxied_app, untrusted_peer) as direct:
        # Anyone can write X-Forwarded-For: from an untrusted peer it is ignored, so a new
        # value each time does not escape the peer's own bucket.
        answers = [(await direct.get("/metrics", headers={
            **bearer(bad_key()), "X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(SCRATCH_LIMIT + 1)]
        assert answers == [401] * SCRATCH_LIMIT + [429]


async def test_a_missing_credential_is_not_a_failed_guess(scratch_app: FastAPI) -> None:
    async with client_for(scratch_app) as c:
        for _ in range(SCRATCH_LIMIT * 2):
            assert_401(await c.get("/metrics"))


async def sign_in_through(proxy: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    """Post the sign-in form with a reader token and a matching CSRF pair."""
    csrf = uuid.uuid4().hex
    return await proxy.post("/ui/signin", data={"key": make_token("reader"), "csrf_token": csrf},
                            headers={**headers, "Cookie": f"csperf_csrf={csrf}"})


async def test_ui_cookies_are_secure_behind_a_trusted_tls_proxy(proxied_app: FastAPI) -> None:
    # Issue 17 item 5: the scheme was read without proxy headers, so never https behind one.
    raw = uuid.uuid4().bytes
    async with behind_proxy(proxied_app, f"10.99.{raw[0]}.{raw[1]}") as proxy:
        signed_in = await sign_in_through(proxy, {
            "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
            # The browser's Origin is the proxy's https one; the form check must agree.
            "Origin": "https://csperf.test",
        })
        assert signed_in.status_code == 303, signed_in.text
        cookies = signed_in.headers.get_list("set-cookie")
        assert cookies and all("; Secure" in c or "; secure" in c for c in cookies), cookies
    async with behind_proxy(proxied_app, f"10.98.{raw[0]}.{raw[1]}") as untrusted:
        plain = await sign_in_through(untrusted, {"X-Forwarded-Proto": "https"})
        assert plain.status_code == 303, plain.text
        cookies = plain.headers.get_list("set-cookie")
        assert cookies and not [c for c in cookies if "secure" in c.lower()], cookies


# -- bootstrap -------------------------------------------------------------------------------


# Registering another bootstrap key retires the test run's own, so these tests register
# theirs in a database of their own.


@pytest.fixture(scope="module")
def bootstrap_database_url() -> Iterator[str]:
    """A migrated database for the bootstrap tests alone."""
    with fresh_database("csperf_boot") as url:
        yield url


@pytest.fixture
async def boot_db(bootstrap_database_url: str) -> AsyncIterator[Database]:
    """A pool on the bootstrap tests' database."""
    database = Database(bootstrap_database_url, pool_size=10)
    yield database
    await database.close()


def configured(db: Database, key: str) -> ServiceContext:
    """Return a replica's context whose CSPERF_BOOTSTRAP_ADMIN_KEY is ``key``."""
    return ServiceContext(settings=conftest.test_settings(bootstrap_admin_key=key), db=db)


def boot_key() -> str:
    return "csk_boot_" + uuid.uuid4().hex + uuid.uuid4().hex


async def test_bootstrap_registration_is_idempotent_across_replicas(boot_db: Database) -> None:
    key = boot_key()
    replica = configured(boot_db, key)
    await asyncio.gather(*(register_bootstrap_key(replica) for _ in range(8)))
    await register_bootstrap_key(replica)  # a restart
    record = await keys.find_by_key(boot_db, key)
    assert record is not None
    async with boot_db.connection() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM api_key WHERE key_hash = $1",
                                   keys.hash_key(key))
        events = await event_store.read_stream(conn, f"apikey:{record.key_id}")
    assert rows == 1 and [e.type for e in events] == ["ApiKeyIssued"]
    assert events[0].metadata["actor"]["subject"] == "bootstrap"
    assert await keys.find_active(boot_db, key) == record


async def test_a_bootstrap_key_id_reveals_nothing_about_the_key(boot_db: Database) -> None:
    # Issue 17 item 9: the id was "boot" and 12 hex digits of the key's unsalted SHA-256,
    # and it is public (actor.key_id on the event feed).
    key = boot_key()
    record, created = await key_commands.ensure_bootstrap(configured(boot_db, key), Caller({}),
                                                          key)
    assert created and record.key_id.startswith("boot") and len(record.key_id) == 16
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert record.key_id[4:] not in digest and record.key_id[4:] not in key
    # The id is drawn at random, so the same key would get another id in another database.
    assert len({keys.new_bootstrap_key_id() for _ in range(50)}) == 50


async def test_a_changed_bootstrap_key_retires_the_previous_one(boot_db: Database) -> None:
    old, new = boot_key(), boot_key()
    await register_bootstrap_key(configured(boot_db, old))
    first = await keys.find_by_key(boot_db, old)
    await register_bootstrap_key(configured(boot_db, new))
    assert await keys.find_active(boot_db, old) is None
    current = await keys.find_active(boot_db, new)
    assert current is not None and first is not None and current.key_id != first.key_id
    # A replica still configured with the old key restarts: it neither revives the old key
    # nor retires the new one.
    await register_bootstrap_key(configured(boot_db, old))
    assert await keys.find_active(boot_db, old) is None
    assert await keys.find_active(boot_db, new) == current


async def test_a_revoked_bootstrap_key_stays_revoked(boot_db: Database) -> None:
    key = boot_key()
    replica = configured(boot_db, key)
    await register_bootstrap_key(replica)
    record = await keys.find_by_key(boot_db, key)
    assert record is not None
    await key_commands.revoke(replica, Caller({}), record.key_id, revoked_by="test")
    await register_bootstrap_key(replica)  # a restart with the same setting
    assert await keys.find_active(boot_db, key) is None


async def test_a_weak_bootstrap_key_is_refused_by_the_settings_and_the_registration(
    app_client: httpx.AsyncClient, db: Database
) -> None:
    with pytest.raises(ValidationError) as refused:
        conftest.test_settings(bootstrap_admin_key="admin")
    assert settings_problems(refused.value) == [
        "invalid setting CSPERF_BOOTSTRAP_ADMIN_KEY: the key must start with 'csk_'"
    ]
    with pytest.raises(ValueError, match="CSPERF_BOOTSTRAP_ADMIN_KEY") as caught:
        await key_commands.ensure_bootstrap(app_client.app.state.ctx,  # type: ignore[attr-defined]
                                            Caller({}), "csk_short")
    assert "csk_short" not in str(caught.value)


# -- logs never hold secrets ---------------------------------------------------------------


async def test_logs_and_answers_hold_no_secret(
    client: httpx.AsyncClient, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture,
    uid: str,
) -> None:
    caplog.set_level(logging.INFO, logger="csperf.auth")
    secret = f"S3cretS3cret{uid}"
    refused = await client.get("/metrics", headers=bearer(f"csk_abcd1234_{secret}"))
    assert secret not in refused.text
    created = await client.post("/v1/keys", json={"role": "reader", "name": uid},
                                headers=admin_headers)
    issued = created.json()["key"]
    await client.post(f"/v1/keys/{created.json()['key_id']}/revoke", headers=admin_headers)
    await client.get("/metrics", headers=bearer(make_token("agent")))

    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert secret not in text and issued not in text and TEST_BOOTSTRAP_KEY not in text
    assert "csk_abcd1234" in text  # the public prefix is what identifies the attempt
    reasons = {getattr(r, "reason", None) for r in caplog.records}
    assert {"unknown-key", "key-issued", "key-revoked", "role"} <= reasons


# -- command line ----------------------------------------------------------------------------


async def test_cli_creates_lists_and_revokes_keys(
    database_url: str, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], uid: str,
) -> None:
    monkeypatch.setenv("CSPERF_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(
            cli, ["keys", "create", "--role", "manager", "--subject", f"m-{uid}", "--name", uid]
        ) == 0
        key = capsys.readouterr().out.strip()
        assert key.startswith("csk_")
        key_id = keys.key_prefix(key)
        assert (await client.get("/metrics", headers=bearer(key))).status_code == 403  # manager

        assert await asyncio.to_thread(cli, ["keys", "list"]) == 0
        listing = capsys.readouterr().out
        assert key_id in listing and f"m-{uid}" in listing and key not in listing

        assert await asyncio.to_thread(cli, ["keys", "revoke", str(key_id)]) == 0
        assert_401(await client.get("/metrics", headers=bearer(key)))
        assert await asyncio.to_thread(cli, ["keys", "revoke", "nosuchkey"]) == 1
        assert await asyncio.to_thread(cli, ["keys", "create", "--role", "ingest"]) == 2
    finally:
        get_settings.cache_clear()
