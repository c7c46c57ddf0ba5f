"""Every route of the app, enumerated from the app itself, against every role.

A route without a rule fails ``test_every_route_declares_a_rule``; each route with an
``allow()`` rule is then checked for 401 without a credential and with bad or expired ones,
403 for each role its rule refuses, and neither for each role it admits. The pages under /ui
(``ui_allow()``, the same rule reading a session cookie) are checked the same way, except
that no credential is a redirect to the sign-in page and a refusal is a page, not JSON.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from service.api.auth import Allow, Public, endpoints
from service.domain import policy
from service.domain.principal import ROLES
from service.main import create_app
from service.ui.session import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, UiAllow
from tests import conftest
from tests.conftest import bearer, make_token

#: Routes anyone may call: the probes a load balancer and an orchestrator use.
PUBLIC_PATHS = {("GET", "/healthz"), ("GET", "/readyz")}
#: The pages' own public routes: signing in and out, the stylesheet.
UI_PUBLIC_PATHS = {("GET", "/ui/signin"), ("POST", "/ui/signin"), ("POST", "/ui/signout"),
                   ("GET", "/ui/static/{name}")}
#: The API documentation pages and their assets (service/docs.py).
DOCS_PUBLIC_PATHS = {("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
                     ("GET", "/docs/assets/{name}")}
#: FastAPI's own pages and schema (not APIRoutes, so they carry no rule of ours).
FRAMEWORK_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
#: The only route an ingest credential may use.
INGEST_ROUTES = {("POST", "/v1/metrics")}
BODY_METHODS = {"POST", "PUT", "PATCH"}

# Built without starting: the routes are what the app under test serves.
APP = create_app(conftest.test_settings())
ENDPOINTS = endpoints(APP)
PROTECTED = [(e.method, e.path) for e in ENDPOINTS
             if isinstance(e.rule, Allow) and not isinstance(e.rule, UiAllow)]
PAGES = [(e.method, e.path) for e in ENDPOINTS if isinstance(e.rule, UiAllow)]


def rule_of(app: FastAPI, method: str, path: str) -> Allow | Public | None:
    """Return the rule of the route serving method and path in app."""
    for endpoint in endpoints(app):
        if (endpoint.method, endpoint.path) == (method, path):
            return endpoint.rule
    raise LookupError(f"{method} {path} is not a route of the app")


def test_the_app_has_routes_to_check() -> None:
    assert ("GET", "/metrics") in PROTECTED and ("POST", "/v1/keys") in PROTECTED
    assert ("GET", "/ui/teams/{team_id}") in PAGES
    assert ("POST", "/ui/teams/{team_id}/months/{period}/publish") in PAGES


def test_every_route_declares_a_rule() -> None:
    undeclared = [
        f"{e.method} {e.path}"
        for e in ENDPOINTS
        if e.rule is None and (e.is_api or e.path not in FRAMEWORK_PATHS)
    ]
    assert not undeclared, f"routes without allow() or public(): {undeclared}"


def test_only_the_probes_are_public() -> None:
    public = {(e.method, e.path) for e in ENDPOINTS if isinstance(e.rule, Public)}
    assert public == PUBLIC_PATHS | UI_PUBLIC_PATHS | DOCS_PUBLIC_PATHS


def test_ingest_only_pushes_metrics() -> None:
    for e in ENDPOINTS:
        if isinstance(e.rule, Allow) and (e.method, e.path) not in INGEST_ROUTES:
            assert "ingest" not in e.rule.roles, f"{e.method} {e.path} admits ingest"


def test_readers_never_write() -> None:
    for e in ENDPOINTS:
        if isinstance(e.rule, Allow) and e.method not in ("GET", "HEAD"):
            assert not e.rule.permits("reader", e.method), f"{e.method} {e.path} admits reader"


def expected_roles(rule: Allow, method: str) -> set[str]:
    """Return the roles the policy says a route with this rule admits (tests/unit/test_policy.py
    holds the policy to the brief's table: its list, admin, and reader on reads)."""
    return {role for role in ROLES
            if policy.route_admits(rule.roles, role, method, reads=rule.reads)}


def concrete(path: str, value: str) -> str:
    """Fill every path parameter with a dummy id."""
    return re.sub(r"{[^}]+}", value, path)


def token_for(role: str, subject: str) -> str:
    source = "perm-source" if role == "ingest" else None
    return make_token(role, subject, source=source)


@pytest.fixture
async def client(app_client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared app from its own address, so failed logins here limit no one."""
    raw = uuid.uuid4().bytes
    transport = httpx.ASGITransport(
        app=app_client.app,  # type: ignore[attr-defined]
        client=(f"10.{raw[0]}.{raw[1]}.{raw[2]}", 40000),
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as c:
        yield c


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body: dict[str, Any] = {"json": {}} if method in BODY_METHODS else {}
    return await client.request(method, path, headers=headers, **body)


def is_role_refusal(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json().get("type", "").endswith("/forbidden")


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
async def test_route_permissions(
    client: httpx.AsyncClient, app_client: httpx.AsyncClient, method: str, path: str
) -> None:
    rule = rule_of(app_client.app, method, path)  # type: ignore[attr-defined]
    assert isinstance(rule, Allow)
    dummy = f"perm-{uuid.uuid4().hex[:8]}"
    url = concrete(path, dummy)

    refusals = {
        "no credential": {},
        "garbage": bearer("garbage"),
        # A secret of this test's own: failures are counted per presented key as well.
        "unknown key": bearer(f"csk_perm0000_{uuid.uuid4().hex}"),
        "forged token": bearer(make_token("admin", secret="wrong-secret-0123456789abcdefghij")),
        "expired token": bearer(make_token("admin", expires_in=-120)),
    }
    for label, headers in refusals.items():
        response = await call(client, method, url, headers)
        assert response.status_code == 401, f"{label}: {response.status_code} {response.text}"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"

    allowed = expected_roles(rule, method)
    for role in ROLES:
        response = await call(client, method, url, bearer(token_for(role, dummy)))
        if role in allowed:
            assert response.status_code != 401, f"{role}: {response.text}"
            assert not is_role_refusal(response), f"{role} was refused: {response.text}"
            assert response.status_code < 500, f"{role}: {response.status_code} {response.text}"
        else:
            assert is_role_refusal(response), f"{role}: {response.status_code} {response.text}"


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC_PATHS))
async def test_public_routes_need_no_credential(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 200


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
async def test_framework_pages_are_public(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


def _page_refusal(response: httpx.Response) -> bool:
    return response.status_code == 403 and 'data-problem="forbidden"' in response.text


def _to_signin(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/ui/signin")


async def call_page(
    client: httpx.AsyncClient, method: str, path: str, credential: str | None
) -> httpx.Response:
    cookies = {CSRF_COOKIE: "perm-csrf-token"}
    if credential is not None:
        cookies[SESSION_COOKIE] = credential
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
    if method in BODY_METHODS:
        return await client.request(method, path, headers=headers,
                                    data={CSRF_FIELD: "perm-csrf-token"})
    return await client.request(method, path, headers=headers)


@pytest.mark.parametrize(("method", "path"), PAGES, ids=[f"{m} {p}" for m, p in PAGES])
async def test_page_permissions(
    client: httpx.AsyncClient, app_client: httpx.AsyncClient, method: str, path: str
) -> None:
    rule = rule_of(app_client.app, method, path)  # type: ignore[attr-defined]
    assert isinstance(rule, UiAllow)
    dummy = f"perm-{uuid.uuid4().hex[:8]}"
    url = concrete(path, dummy)

    refusals = {
        "no credential": None,
        "garbage": "garbage",
        "unknown key": f"csk_perm0000_{uuid.uuid4().hex}",
        "forged token": make_token("admin", secret="wrong-secret-0123456789abcdefghij"),
        "expired token": make_token("admin", expires_in=-120),
    }
    for label, credential in refusals.items():
        response = await call_page(client, method, url, credential)
        assert _to_signin(response), f"{label}: {response.status_code} {response.text[:200]}"
        if credential is not None and method == "GET":
            assert f"{SESSION_COOKIE}=" in response.headers.get("set-cookie", ""), label

    allowed = expected_roles(rule, method)
    for role in ROLES:
        response = await call_page(client, method, url, token_for(role, dummy))
        if role in allowed:
            assert not _to_signin(response), f"{role}: {response.text[:200]}"
            assert not _page_refusal(response), f"{role} was refused: {response.text[:300]}"
            assert response.status_code < 500, f"{role}: {response.status_code}"
        else:
            assert _page_refusal(response), f"{role}: {response.status_code} {response.text[:200]}"
