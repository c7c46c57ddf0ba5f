"""Authentication and authorisation for every route: credentials, role rules, scopes, actors.

Every route declares its rule as a dependency, which ``route_rule`` can read back so a test can
check every route of the app:

- ``allow(*roles)``: a bearer credential is required and its role must be listed. ``admin`` is
  always allowed. ``reader`` is allowed on every GET/HEAD route (``reads=True``, the default)
  and never on anything else, whatever the list says; ``reads=False`` keeps readers off a GET
  that is not business data (the key listing). ``ingest`` belongs only on ``POST /v1/metrics``.
- ``public()``: no credential (health probes).

Handlers then narrow the role to the data with ``ensure_manager_of``, ``ensure_self``,
``ensure_self_or_manager`` and ``ensure_source``, and stamp every event with
``actor_metadata``. A reader passes the scope helpers: ``allow`` only lets readers reach GET
handlers, and a reader may read everything.

A credential starting with ``csk_`` is an API key, looked up by its hash on every request
(uncached, so revocation is immediate); anything else is a JWT, verified against an explicit
allow-list: HS256 with ``CSPERF_JWT_SECRET``, RS256 with ``CSPERF_JWT_PUBLIC_KEY``. The key is
chosen by the algorithm, never the other way round, so ``alg: none`` and HS256-signed-with-
the-public-key tokens are refused.

Failed authentications are limited per client address and credential prefix (all JWTs from
one address share a bucket) to ``auth_failure_limit`` a minute, then answered 429. The count
is kept in this process: with N replicas a client gets up to N times the limit. That is a
brake on floods, not the defence against guessing, which is the keys' 256 random bits.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import fastapi.routing
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service import observability
from service.api.deps import service_context
from service.api.problems import Problem
from service.config import Settings
from service.context import ServiceContext
from service.domain.principal import ROLES, Principal, event_metadata
from service.store import keys

log = logging.getLogger("csperf.auth")

SAFE_METHODS = frozenset({"GET", "HEAD"})
JWT_ALGORITHMS = ("HS256", "RS256")
_MAX_CREDENTIAL = 8192
_MAX_CLAIM = 128
_MAX_HEADER_ID = 128

BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key issued by the service (`csk_...`) or a JWT (HS256, or RS256).",
)


class CredentialError(Exception):
    """A presented credential is not valid; ``reason`` is for logs, the message for clients."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# -- credentials -------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _rsa_public_key(pem: str) -> RSAPublicKey:
    # Environment variables often carry PEM newlines as the two characters "\n".
    key = load_pem_public_key(pem.replace("\\n", "\n").encode())
    if not isinstance(key, RSAPublicKey):
        raise ValueError("CSPERF_JWT_PUBLIC_KEY is not an RSA public key")
    return key


def _verification_key(alg: object, settings: Settings) -> str | RSAPublicKey | None:
    if alg == "HS256" and settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if alg == "RS256" and settings.jwt_public_key:
        return _rsa_public_key(settings.jwt_public_key)
    return None


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_CLAIM:
        raise CredentialError("bad-claims", f"the token's {name!r} claim is not a valid string")
    return value


def verify_jwt(token: str, settings: Settings) -> Principal:
    """Return the principal of a valid JWT; raise CredentialError otherwise."""
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        detail = "the credential is neither an API key nor a JWT"
        raise CredentialError("malformed", detail) from exc
    key = _verification_key(alg, settings)
    if alg not in JWT_ALGORITHMS or key is None:
        raise CredentialError("algorithm", "the token's signing algorithm is not accepted")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[str(alg)],
            options={"require": ["exp", "sub", "role"]},
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway_seconds,
        )
    except jwt.ExpiredSignatureError as exc:
        raise CredentialError("expired", "the token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise CredentialError("not-yet-valid", "the token is not valid yet") from exc
    except jwt.InvalidSignatureError as exc:
        raise CredentialError("bad-signature", "the token's signature does not verify") from exc
    except jwt.PyJWTError as exc:
        raise CredentialError("invalid-token", "the token is not valid") from exc
    subject, role, source = _claim(claims, "sub"), _claim(claims, "role"), _claim(claims, "source")
    if subject is None or role not in ROLES:
        raise CredentialError("bad-claims", f"the token's role must be one of {list(ROLES)}")
    if role == "ingest" and source is None:
        raise CredentialError("bad-claims", "an ingest token must carry a 'source' claim")
    return Principal(
        subject=subject, role=role, key_id=None, source=source if role == "ingest" else None
    )


async def authenticate(ctx: ServiceContext, credential: str) -> Principal:
    """Return the principal a bearer credential proves; raise CredentialError otherwise."""
    if len(credential) > _MAX_CREDENTIAL:
        raise CredentialError("malformed", "the credential is too long")
    if credential.startswith(keys.KEY_MARK):
        record = await keys.find_active(ctx.db, credential)
        if record is None:
            raise CredentialError("unknown-key", "the API key is unknown or revoked")
        return record.principal
    return verify_jwt(credential, ctx.settings)


def credential_label(credential: str) -> str:
    """Return what logs and rate-limit buckets may say about a credential: never its secret."""
    if credential.startswith(keys.KEY_MARK):
        prefix = keys.key_prefix(credential)
        return f"{keys.KEY_MARK}{prefix}" if prefix else "csk"
    return "jwt"


# -- failed-authentication limit -----------------------------------------------------------


class FailureLimiter:
    """Count failed authentications per bucket in a sliding window; in-process, per replica."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        *,
        max_buckets: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_buckets = max_buckets
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, bucket: str) -> float | None:
        """Return the seconds until the bucket may try again, or None when it may now."""
        if self.limit <= 0:
            return None
        times = self._failures.get(bucket)
        if not times:
            return None
        now = self._clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.limit:
            return None
        return times[0] + self.window - now

    def record(self, bucket: str) -> None:
        """Count one failure against the bucket."""
        if self.limit <= 0:
            return
        now = self._clock()
        times = self._failures.setdefault(bucket, deque(maxlen=self.limit))
        times.append(now)
        if len(self._failures) > self.max_buckets:
            self._prune(now)

    def reset(self) -> None:
        """Forget every failure."""
        self._failures.clear()

    def _prune(self, now: float) -> None:
        # Memory stays bounded however many addresses and prefixes an attacker invents.
        for name in [b for b, t in self._failures.items() if not t or t[-1] <= now - self.window]:
            del self._failures[name]
        while len(self._failures) > self.max_buckets:
            del self._failures[next(iter(self._failures))]


def failure_limiter(request: Request) -> FailureLimiter:
    """Return the app's failed-authentication limiter, creating it on first use."""
    limiter: FailureLimiter | None = getattr(request.app.state, "auth_failure_limiter", None)
    if limiter is None:
        limiter = FailureLimiter(service_context(request).settings.auth_failure_limit)
        request.app.state.auth_failure_limiter = limiter
    return limiter


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


# -- route rules -----------------------------------------------------------------------------


def _unauthorized(detail: str, *, invalid: bool) -> Problem:
    challenge = 'Bearer realm="csperf"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


def _principal_log(principal: Principal) -> dict[str, Any]:
    return {"subject": principal.subject, "role": principal.role, "key_id": principal.key_id}


class Allow:
    """The rule of a route that needs a credential; FastAPI calls it to authenticate."""

    def __init__(self, roles: Collection[str], *, reads: bool) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; roles are {list(ROLES)}")
        self.roles = frozenset(roles) | {"admin"}
        self.reads = reads

    def __repr__(self) -> str:
        return f"allow({', '.join(sorted(self.roles))}, reads={self.reads})"

    def permits(self, role: str, method: str) -> bool:
        """Tell whether a principal of ``role`` may call the route with ``method``."""
        if role == "reader":
            return self.reads and method.upper() in SAFE_METHODS
        return role in self.roles

    async def admitted(self, request: Request) -> Principal | None:
        """Return the principal this rule admits, or None, quietly: nothing logged or counted.

        For a path that answers before FastAPI (service/api/frozen.py): when this says None,
        the route's own dependency runs and refuses, logs and counts as always.
        """
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return None
        bucket = f"{_client(request)}|{credential_label(credential)}"
        if failure_limiter(request).retry_after(bucket) is not None:
            return None
        try:
            principal = await authenticate(service_context(request), credential)
        except CredentialError:
            return None
        return principal if self.permits(principal.role, request.method) else None

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        """Authenticate the request and check its role; return the principal."""
        client = _client(request)
        if credentials is None:
            observability.AUTH_FAILURES.labels("missing").inc()
            log.info(
                "authentication failed: no bearer credential",
                extra={"reason": "missing", "actor": {"client": client}},
            )
            raise _unauthorized("a bearer credential is required", invalid=False)
        credential = credentials.credentials
        label = credential_label(credential)
        bucket = f"{client}|{label}"
        limiter = failure_limiter(request)
        wait = limiter.retry_after(bucket)
        if wait is not None:
            observability.AUTH_FAILURES.labels("rate-limited").inc()
            log.warning(
                "authentication refused: too many failures",
                extra={"reason": "rate-limited", "actor": {"client": client, "credential": label}},
            )
            raise Problem(
                429, "too many failed authentications; retry later", kind="too-many-failures",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            principal = await authenticate(service_context(request), credential)
        except CredentialError as exc:
            limiter.record(bucket)
            observability.AUTH_FAILURES.labels(exc.reason).inc()
            log.warning(
                "authentication failed: %s", exc.reason,
                extra={"reason": exc.reason, "actor": {"client": client, "credential": label}},
            )
            raise _unauthorized(exc.detail, invalid=True) from None
        if not self.permits(principal.role, request.method):
            observability.AUTH_FAILURES.labels("role").inc()
            log.warning(
                "authorisation refused: role %s on %s %s",
                principal.role, request.method, _template(request),
                extra={"reason": "role", "actor": _principal_log(principal)},
            )
            raise Problem(
                403,
                f"the {principal.role} role may not {request.method} {_template(request)}",
                kind="forbidden",
            )
        request.state.principal = principal
        return principal


class Public:
    """The rule of a route anyone may call."""

    def __repr__(self) -> str:
        return "public()"

    async def __call__(self) -> None:
        """Let every request through."""


PUBLIC = Public()


def allow(*roles: str, reads: bool = True) -> Any:
    """Return the dependency that admits ``roles`` (and admin, and reader on GET) as a Principal.

    Use as ``principal: Annotated[Principal, allow("manager")]`` or
    ``dependencies=[allow()]``.
    """
    return Depends(Allow(roles, reads=reads))


def public() -> Any:
    """Return the dependency that marks a route as open to everyone."""
    return Depends(PUBLIC)


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def route_rule(route: object) -> Allow | Public | None:
    """Return the rule a route (or FastAPI route context) declares, or None if it has none."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None
    for call in _calls(dependant):
        if isinstance(call, Allow | Public):
            return call
    return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method and path the app serves, and the rule it declares."""

    method: str
    path: str
    rule: Allow | Public | None
    is_api: bool


def endpoints(app: FastAPI) -> list[Endpoint]:
    """List every method and path of the app with its rule, routers included, sorted."""
    # Newer FastAPI keeps included routers as lazy route groups; flatten them as it does.
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[object] = iterate(app.routes) if iterate is not None else app.routes
    found = []
    for route in routes:
        is_api = isinstance(getattr(route, "original_route", route), APIRoute)
        for method in sorted(getattr(route, "methods", None) or {"*"}):
            path = str(getattr(route, "path", "") or getattr(route, "path_format", ""))
            found.append(Endpoint(method, path, route_rule(route), is_api))
    return sorted(found, key=lambda e: (e.path, e.method))


def _template(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", None) or request.url.path)


# -- scopes ------------------------------------------------------------------------------------


def _out_of_scope(principal: Principal, detail: str) -> Problem:
    observability.AUTH_FAILURES.labels("scope").inc()
    log.warning(
        "authorisation refused: %s", detail,
        extra={"reason": "scope", "actor": _principal_log(principal)},
    )
    return Problem(403, detail, kind="out-of-scope")


def _unscoped(principal: Principal) -> bool:
    # A reader only reaches GET handlers (allow() sees to it) and may read everything.
    return principal.role in ("admin", "reader")


def manages(principal: Principal, manager_ids: Collection[str]) -> bool:
    """Tell whether the principal may act as a manager of the team with ``manager_ids``."""
    return _unscoped(principal) or (
        principal.role == "manager" and principal.subject in manager_ids
    )


def ensure_manager_of(principal: Principal, manager_ids: Collection[str]) -> None:
    """Refuse (403) unless the principal manages the team whose managers are ``manager_ids``."""
    if not manages(principal, manager_ids):
        raise _out_of_scope(principal, "only a manager of this team may do this")


def ensure_self(principal: Principal, agent_id: str) -> None:
    """Refuse (403) unless the principal is the agent ``agent_id`` (or admin or reader)."""
    if _unscoped(principal):
        return
    if principal.role == "agent" and principal.subject == agent_id:
        return
    raise _out_of_scope(principal, "an agent may only act on their own data")


def ensure_self_or_manager(
    principal: Principal, agent_id: str, manager_ids: Collection[str]
) -> None:
    """Refuse (403) unless the principal is the agent or manages the agent's team."""
    if _unscoped(principal):
        return
    if principal.role == "agent" and principal.subject == agent_id:
        return
    if principal.role == "manager" and principal.subject in manager_ids:
        return
    raise _out_of_scope(principal, "only the agent and the team's managers may do this")


def ensure_source(principal: Principal, source: str) -> None:
    """Refuse (403) an ingest principal pushing for a source other than its own."""
    if principal.role != "ingest" or principal.source == source:
        return
    raise _out_of_scope(principal, "this ingest credential may only push for its own source")


# -- audit -------------------------------------------------------------------------------------


def _header_id(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    if not value or len(value) > _MAX_HEADER_ID or not value.isprintable():
        return None
    return value


def actor_metadata(principal: Principal, request: Request) -> dict[str, Any]:
    """Return the metadata every event appended for this request must carry."""
    request_id = getattr(request.state, "request_id", None) or _header_id(request, "x-request-id")
    return event_metadata(
        principal,
        request_id=request_id,
        correlation_id=_header_id(request, "x-correlation-id"),
        causation_id=_header_id(request, "x-causation-id"),
    )
