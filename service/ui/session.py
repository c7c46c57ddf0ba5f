"""Signing in to the pages: the key in a cookie, the API's own authentication, CSRF tokens.

The pages authenticate exactly as the API does. Signing in stores the credential (an API key
or a JWT) in an HttpOnly, SameSite=Strict cookie; each page's rule (``ui_allow``) is an
``Allow`` of ``service.api.auth`` that takes its credential from that cookie and then runs the
API's own check: the same lookup of the key's hash (revocation is immediate), the same JWT
verification, the same failed-authentication limit, the same role list. Without a credential
a page redirects to the sign-in form instead of answering 401.

Why the cookie holds the credential itself and not a server-side session id (issue 17): the
credential is checked on every request exactly as the API checks it, so revoking a key, or a
JWT expiring, ends its browser sessions at once on every replica, with no session state for
the replicas to share. A session table would be a second, parallel credential store: written
outside the event-sourced commands, read on every page, with its own expiry and revocation
rules that must never outlive the key's (the classic bug of such tables). What it would buy is
narrow: a stolen cookie would be a 12-hour page session rather than the key. The cookie is
already out of reach of scripts (HttpOnly), of other sites (SameSite=Strict), of the JSON API
paths (Path=/ui) and, behind TLS, of the network (Secure, below); what remains is a
compromised browser or machine, which also holds the key its user pasted. Signing out forgets
the cookie; to end a key everywhere, revoke it.

Cookies are Secure when the page was served over HTTPS. Behind a TLS-terminating proxy the
scheme is the proxy's X-Forwarded-Proto, which uvicorn believes only from the peers listed in
CSPERF_TRUSTED_PROXIES (``service.cli.proxy_options``); the same scheme decides the Origin
check of forms.

Forms that change something carry a CSRF token (double submit): a random token in a second
cookie, echoed in a hidden field, compared in constant time. SameSite=Strict already keeps
other sites' forms from carrying the session; the token and the Origin check are the second
lock on the door. A request that carries an ``Authorization`` header instead of the cookie is
no CSRF risk (a browser never adds that header on its own), so it needs no token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, Request

from service import observability
from service.api.auth import Allow, bearer_credential
from service.api.problems import Problem
from service.domain.policy import SAFE_METHODS
from service.domain.principal import Principal

log = logging.getLogger("csperf.auth")

SESSION_COOKIE = "csperf_session"
CSRF_COOKIE = "csperf_csrf"
CSRF_FIELD = "csrf_token"
COOKIE_PATH = "/ui"
#: A browser forgets the session after this long; the key itself lives on.
SESSION_SECONDS = 12 * 3600
#: Form bodies are small; anything bigger is not one of ours.
MAX_FORM_BYTES = 64 * 1024
#: Roles that have pages to see (ingest keys only push metrics; raters have no pages yet).
UI_ROLES = ("admin", "manager", "agent", "reader")


class SignInRequired(Exception):
    """No usable credential: send the browser to the sign-in form."""

    def __init__(self, next_url: str, reason: str | None = None) -> None:
        super().__init__(reason or "sign in")
        self.next_url = next_url
        self.reason = reason


def safe_next(value: str | None, default: str = "/ui") -> str:
    """Return value if it is a path of these pages (never another site), else the default."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "\\" in value:
        return default
    if value.startswith("//"):
        return default
    return value


def here(request: Request) -> str:
    """Return the path and query of the request, to come back to after signing in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def signin_url(next_url: str, reason: str | None = None) -> str:
    """Return the sign-in page's URL that leads back to next_url."""
    url = f"/ui/signin?next={quote(safe_next(next_url), safe='/')}"
    return url + (f"&reason={quote(reason)}" if reason else "")


def csrf_token(request: Request) -> str:
    """Return the request's CSRF token, making one (set by ``remember_csrf``) if it has none."""
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        request.state.csrf_token = token
    return token


def secure(request: Request) -> bool:
    """Tell whether cookies must be Secure (served over HTTPS, or behind a trusted TLS proxy)."""
    return request.url.scheme == "https"


async def form_data(request: Request) -> dict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body (first value of each field)."""
    cached: dict[str, str] | None = getattr(request.state, "form_data", None)
    if cached is not None:
        return cached
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Problem(413, "the form is too large")
    if body and kind != "application/x-www-form-urlencoded":
        raise Problem(415, "forms are sent as application/x-www-form-urlencoded")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "the form could not be read") from exc
    data = {name: values[0] for name, values in fields.items() if values}
    request.state.form_data = data
    return data


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Old browsers send no Origin on same-site form posts; the token decides then.
        return origin is None
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin == expected


async def require_csrf(request: Request) -> None:
    """Refuse (403) a form post whose token does not match its cookie or that comes from
    another origin."""
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = (await form_data(request)).get(CSRF_FIELD)
    if not _same_origin(request) or not cookie or not sent or not hmac.compare_digest(
        cookie.encode(), sent.encode()
    ):
        observability.AUTH_FAILURES.labels("csrf").inc()
        log.warning("form refused: missing or mismatched CSRF token",
                    extra={"reason": "csrf", "actor": {"path": request.url.path}})
        raise Problem(403, "this form has expired or did not come from these pages; reload the"
                      " page and try again", kind="csrf")


class UiAllow(Allow):
    """A page's rule: the API's ``Allow`` with the credential taken from the session cookie."""

    def __repr__(self) -> str:
        return "ui_" + super().__repr__()

    async def __call__(self, request: Request) -> Principal:
        """Authenticate with the session cookie (or a bearer header) and check the role."""
        credential = bearer_credential(request)
        from_cookie = credential is None
        if from_cookie:
            credential = request.cookies.get(SESSION_COOKIE)
            if not credential:
                raise SignInRequired(here(request) if request.method in SAFE_METHODS
                                     else "/ui")
        try:
            principal = await self.admit(request, credential)
        except Problem as exc:
            if exc.status == 401 and from_cookie:
                raise SignInRequired(here(request) if request.method in SAFE_METHODS else "/ui",
                                     "expired") from None
            raise
        if from_cookie and request.method not in SAFE_METHODS:
            await require_csrf(request)
        return principal


def ui_allow(*roles: str) -> Any:
    """Return the dependency that admits ``roles`` (and admin, and reader on GET) to a page."""
    return Depends(UiAllow(roles, reads=True))


def set_session(response: Any, request: Request, credential: str) -> None:
    """Store the credential in the session cookie."""
    response.set_cookie(SESSION_COOKIE, credential, max_age=SESSION_SECONDS, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=secure(request))


def clear_session(response: Any, request: Request) -> None:
    """Forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=secure(request))


def remember_csrf(response: Any, request: Request) -> None:
    """Set the CSRF cookie when the request did not carry the token it was given."""
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is not None and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True,
                            samesite="strict", secure=secure(request))
