"""Authentication and authorisation for every route: credentials, role rules, scopes, actors.

Every route declares its rule as a dependency, which ``route_rule`` can read back so a test can
check every route of the app:

- ``allow(*roles)``: a bearer credential is required and its role must be listed. ``admin`` is
  always allowed. ``reader`` is allowed on every GET/HEAD route (``reads=True``, the default)
  and never on anything else, whatever the list says; ``reads=False`` keeps readers off a GET
  that is not business data (the key listing). ``ingest`` belongs only on ``POST /v1/metrics``.
- ``public()``: no credential (health probes).

Handlers then narrow the role to the data with ``ensure_manager_of``, ``ensure_self``,
``ensure_self_or_manager``, ``ensure_source`` and ``ensure_rates_as``. Every one of these
asks ``service.domain.policy``, which decides who may do what for the pages too; this module
only turns its no into a logged, counted 403. A reader passes the scope helpers: ``allow``
only lets readers reach GET handlers, and a reader may read everything.

A credential starting with ``csk_`` is an API key, looked up by its hash and then held in
this process until a revocation drops every process's held keys at once (a ``NOTIFY`` in the
revoking transaction, ``service.store.invalidation``), so revocation is immediate; anything
else is a JWT, verified against an explicit allow-list: HS256 with ``CSPERF_JWT_SECRET``,
RS256 with ``CSPERF_JWT_PUBLIC_KEY``. The key is chosen by the algorithm, never the other way
round, so ``alg: none`` and HS256-signed-with-the-public-key tokens are refused.

Failed authentications are counted, ``auth_failure_limit`` a minute, in two buckets: the
client address, and the identity the credential presents (an API key's secret part, since
the prefix in front of it is free text nobody checks; a JWT's ``sub`` once its signature
verifies; a JWT whose signature fails presents no identity anybody proved, so it counts per
address only). A failure past the limit of either bucket is answered 429 with Retry-After.
A credential is always checked first, and a valid one is never refused: the brake only
changes how failures are answered, so nobody behind a shared address (a proxy, an office
NAT) is locked out by somebody else's bad tokens, and nobody can lock a user out by sending
bad tokens in their name. The client address is the TCP peer, or, behind a proxy listed in
``CSPERF_TRUSTED_PROXIES``, the address uvicorn reads from X-Forwarded-For. The count is kept
in this process: with N replicas a client gets up to N times the limit. That is a brake on
floods (clients told to back off, logs that say so), not the defence against guessing,
which is the keys' 256 random bits and the JWT signature.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase

from service import observability
from service.api.deps import service_context
from service.api.problems import Problem
from service.config import Settings, rsa_public_key
from service.context import ServiceContext
from service.domain import policy
from service.domain.directory import Team
from service.domain.errors import Text
from service.domain.ids import ID_RE
from service.domain.principal import ROLES, Principal, VerifiedToken, credential_problems
from service.store import keys

log = logging.getLogger("csperf.auth")

JWT_ALGORITHMS = ("HS256", "RS256")
_MAX_CREDENTIAL = 8192
_MAX_CLAIM = 128

#: The scheme every rule declares in the OpenAPI document.
BEARER = HTTPBearerModel(
    description="An API key issued by the service (`csk_...`) or a JWT (HS256, or RS256).",
)


def bearer_credential(request: Request) -> str | None:
    """Return the request's bearer credential, or None when it presents none (as FastAPI's
    HTTPBearer reads the Authorization header)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    if not credential or scheme.lower() != "bearer":
        return None
    return credential


class CredentialError(Exception):
    """A presented credential is not valid; ``reason`` is for logs, the message for clients.

    ``identity`` is the failure bucket of the identity the credential presents, or None when
    it presents none that anybody proved (a JWT whose signature fails).
    """

    def __init__(self, reason: str, detail: str, identity: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.identity = identity


class TooManyFailures(Exception):
    """A failed authentication past the limit of its address or identity: answer 429."""

    def __init__(self, failure: CredentialError, retry_after: float) -> None:
        super().__init__(failure.detail)
        self.failure = failure
        self.retry_after = retry_after


# -- credentials -------------------------------------------------------------------------


def _verification_key(alg: object, settings: Settings) -> str | RSAPublicKey | None:
    if alg == "HS256" and settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    if alg == "RS256" and settings.jwt_public_key:
        return rsa_public_key(settings.jwt_public_key)
    return None


#: Time claims PyJWT checks; it would take a numeric string ("exp": "9999999999") as a number.
_TIME_CLAIMS = ("exp", "nbf", "iat")
#: Errors PyJWT raises before or while checking the signature: nobody proved the claims.
_UNSIGNED_ERRORS = (
    jwt.DecodeError, jwt.InvalidAlgorithmError, jwt.InvalidKeyError, jwt.InvalidSignatureError
)


def _claim(claims: dict[str, Any], name: str, identity: str | None) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_CLAIM:
        detail = f"the token's {name!r} claim is not a valid string"
        raise CredentialError("bad-claims", detail, identity)
    return value


def _subject_identity(claims: dict[str, Any]) -> str | None:
    """Return the failure bucket of a signed token's subject, when it is a well-formed id."""
    subject = claims.get("sub")
    if isinstance(subject, str) and ID_RE.fullmatch(subject):
        return f"sub:{subject}"
    return None


def _signed_identity(token: str) -> str | None:
    """Return the subject bucket of a token whose signature verified but whose claims failed."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return _subject_identity(claims)


def verify_jwt(token: str, settings: Settings) -> VerifiedToken:
    """Return a valid JWT's principal and validity window; raise CredentialError otherwise."""
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
    except jwt.InvalidSignatureError as exc:
        raise CredentialError("bad-signature", "the token's signature does not verify") from exc
    except _UNSIGNED_ERRORS as exc:
        raise CredentialError("invalid-token", "the token is not valid") from exc
    # Past here the signature verified, so the subject is the issuer's word: count by it.
    except jwt.ExpiredSignatureError as exc:
        raise CredentialError("expired", "the token has expired", _signed_identity(token)) from exc
    except jwt.ImmatureSignatureError as exc:
        raise CredentialError(
            "not-yet-valid", "the token is not valid yet", _signed_identity(token)
        ) from exc
    except jwt.PyJWTError as exc:
        raise CredentialError("invalid-token", "the token is not valid", _signed_identity(token)
                              ) from exc
    identity = _subject_identity(claims)
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CredentialError(
                "bad-claims", f"the token's {name!r} claim must be a number (seconds since"
                " the epoch)", identity,
            )
    subject = _claim(claims, "sub", identity)
    role = _claim(claims, "role", identity)
    source = _claim(claims, "source", identity)
    if subject is None or role not in ROLES:
        raise CredentialError(
            "bad-claims", f"the token's role must be one of {list(ROLES)}", identity
        )
    if role == "ingest" and source is None:
        raise CredentialError("bad-claims", "an ingest token must carry a 'source' claim", identity)
    # The same rule as a key's: ids of the API's id form, so no control or bidi character
    # reaches the audit trail.
    problems = credential_problems(role, subject, source if role == "ingest" else None)
    if problems:
        field, reason = problems[0]
        name = "sub" if field == "subject" else field
        raise CredentialError("bad-claims", f"the token's {name!r} claim: {reason}", identity)
    principal = Principal(
        subject=subject, role=role, key_id=None, source=source if role == "ingest" else None
    )
    # PyJWT's own tests, as bounds: iat and nbf at most now + leeway, exp after now - leeway.
    leeway = settings.jwt_leeway_seconds
    opens = max((int(claims[n]) for n in ("iat", "nbf") if n in claims), default=-math.inf)
    return VerifiedToken(principal, opens - leeway, int(claims["exp"]) + leeway)


async def authenticate(ctx: ServiceContext, credential: str) -> Principal:
    """Return the principal a bearer credential proves; raise CredentialError otherwise."""
    if len(credential) > _MAX_CREDENTIAL:
        raise CredentialError("malformed", "the credential is too long")
    if credential.startswith(keys.KEY_MARK):
        held = _held_key(credential)
        principal = ctx.keys.get(held)
        if principal is not None:
            return principal
        stamp = ctx.keys.stamp()
        record = await keys.find_active(ctx.db, credential)
        if record is None:
            raise CredentialError(
                "unknown-key", "the API key is unknown or revoked", key_identity(credential)
            )
        # Held until a revocation drops every process's keys (service.store.invalidation).
        ctx.keys.put(held, record.principal, stamp)
        return record.principal
    # A JWT proves the same principal until its exp: its signature and claims are checked once
    # (a tenth of a PUT's CPU went to them), then only its time window, as PyJWT checks it.
    held = _held_key(credential)
    now = time.time()
    verified = ctx.tokens.get(held)
    if verified is None or not verified.valid_at(now):
        verified = verify_jwt(credential, ctx.settings)
        ctx.tokens.put(held, verified)
    return verified.principal


#: Verified keys are held under a MAC with this process's own random key, not the key or its
#: stored hash: what memory holds proves nothing to the database or to another process.
_HELD_KEY = secrets.token_bytes(32)


def _held_key(credential: str) -> bytes:
    # Keyed BLAKE2b is a MAC in its own right and Python's own code: OpenSSL's HMAC-SHA256
    # took twice its time here (1.35 against 0.63 us a call, more under load).
    return hashlib.blake2b(credential.encode("utf-8", "surrogatepass"), key=_HELD_KEY,
                           digest_size=32).digest()


#: Bucket names hold an HMAC of a presented key's secret under this process's own random key,
#: so not even this process's memory holds a plain hash of something that may be a real key.
_BUCKET_KEY = secrets.token_bytes(32)


def key_identity(credential: str) -> str:
    """Return the failure bucket of a presented API key: its secret part, not its prefix.

    A key is found by the hash of all of it, so the prefix in front is free text: an attacker
    who changes it keeps the same identity here (and the same address bucket anyway).
    """
    prefix = keys.key_prefix(credential)
    secret = credential[len(keys.KEY_MARK) + len(prefix) + 1 :] if prefix else credential
    digest = hmac.new(_BUCKET_KEY, secret.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "key:" + digest.hexdigest()[:32]


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
        # Least recently failed first: a bucket that keeps failing is never the one evicted.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

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
        times = self._failures.get(bucket)
        if times is None:
            times = self._failures[bucket] = deque(maxlen=self.limit)
        else:
            self._failures.move_to_end(bucket)
        times.append(now)
        if len(self._failures) > self.max_buckets:
            self._prune()

    def fail(self, buckets: Iterable[str]) -> float | None:
        """Count one failure against each bucket; return the longest wait of those that were
        already at the limit (answer 429), or None when none was (answer 401)."""
        names = list(dict.fromkeys(buckets))
        braked = [name for name in names if self.retry_after(name) is not None]
        for name in names:
            self.record(name)
        waits = [self.retry_after(name) for name in braked]
        return max((w for w in waits if w is not None), default=None) if braked else None

    def reset(self) -> None:
        """Forget every failure."""
        self._failures.clear()

    def _prune(self) -> None:
        # Memory stays bounded however many addresses and keys an attacker invents. The least
        # recently failed go first (the expired ones are among them), so a flood's own
        # address bucket, failing all the time, stays. Down to nine tenths, so the next pass is
        # max_buckets/10 new buckets away: a flood of fresh identities costs a few dictionary
        # steps per failure, not a scan of every bucket.
        low_water = self.max_buckets * 9 // 10
        while len(self._failures) > low_water:
            self._failures.popitem(last=False)


def failure_limiter(request: Request) -> FailureLimiter:
    """Return the app's failed-authentication limiter, creating it on first use."""
    limiter: FailureLimiter | None = getattr(request.app.state, "auth_failure_limiter", None)
    if limiter is None:
        limiter = FailureLimiter(service_context(request).settings.auth_failure_limit)
        request.app.state.auth_failure_limiter = limiter
    return limiter


def client_address(request: Request) -> str:
    """Return the client's address: the peer's, or behind a trusted proxy the forwarded one.

    uvicorn has already rewritten it from X-Forwarded-For when the peer is in
    CSPERF_TRUSTED_PROXIES (``service.cli.proxy_options``), and only then.
    """
    return request.client.host if request.client is not None else "unknown"


async def check_credential(request: Request, credential: str) -> Principal:
    """Authenticate a credential and count its failure; raise CredentialError (401) or
    TooManyFailures (429)."""
    try:
        return await authenticate(service_context(request), credential)
    except CredentialError as exc:
        buckets = [f"addr:{client_address(request)}"]
        if exc.identity is not None:
            buckets.append(exc.identity)
        wait = failure_limiter(request).fail(buckets)
        if wait is not None:
            raise TooManyFailures(exc, wait) from None
        raise


def retry_after_seconds(exc: TooManyFailures) -> int:
    """Return the whole seconds a braked client should wait (Retry-After)."""
    return max(1, math.ceil(exc.retry_after))


def log_failure(request: Request, credential: str, exc: CredentialError | TooManyFailures) -> None:
    """Count and log a failed authentication, saying nothing secret about the credential."""
    reason = "rate-limited" if isinstance(exc, TooManyFailures) else exc.reason
    observability.AUTH_FAILURES.labels(reason).inc()
    actor = {"client": client_address(request), "credential": credential_label(credential)}
    if isinstance(exc, TooManyFailures):
        log.warning("authentication refused: too many failures (%s)", exc.failure.reason,
                    extra={"reason": reason, "actor": actor})
    else:
        log.warning("authentication failed: %s", reason, extra={"reason": reason, "actor": actor})


# -- route rules -----------------------------------------------------------------------------


def _unauthorized(detail: str, *, invalid: bool) -> Problem:
    challenge = 'Bearer realm="csperf"' + (', error="invalid_token"' if invalid else "")
    return Problem(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


def _principal_log(principal: Principal) -> dict[str, Any]:
    return {"subject": principal.subject, "role": principal.role, "key_id": principal.key_id}


class Allow(SecurityBase):
    """The rule of a route that needs a credential; FastAPI calls it to authenticate.

    It is its own security scheme (the bearer one, in the OpenAPI document) and reads the
    header itself: FastAPI solved a scheme dependency under it on every request, about as
    much CPU as the rest of the rule for a held credential.
    """

    def __init__(self, roles: Collection[str], *, reads: bool) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; roles are {list(ROLES)}")
        self.roles = frozenset(roles) | {"admin"}
        self.reads = reads
        self.model = BEARER
        self.scheme_name = "bearer"

    def __repr__(self) -> str:
        return f"allow({', '.join(sorted(self.roles))}, reads={self.reads})"

    def permits(self, role: str, method: str) -> bool:
        """Tell whether a principal of ``role`` may call the route with ``method``."""
        return policy.route_admits(self.roles, role, method, reads=self.reads)

    async def __call__(self, request: Request) -> Principal:
        """Authenticate the request's bearer credential and check its role."""
        return await self.admit(request, bearer_credential(request))

    async def admit(self, request: Request, credential: str | None) -> Principal:
        """Authenticate a credential and check its role; return the principal."""
        if credential is None:
            observability.AUTH_FAILURES.labels("missing").inc()
            log.info(
                "authentication failed: no bearer credential",
                extra={"reason": "missing", "actor": {"client": client_address(request)}},
            )
            raise _unauthorized("a bearer credential is required", invalid=False)
        try:
            principal = await check_credential(request, credential)
        except TooManyFailures as exc:
            log_failure(request, credential, exc)
            raise Problem(
                429, "too many failed authentications; retry later", kind="too-many-failures",
                headers={"Retry-After": str(retry_after_seconds(exc))},
            ) from None
        except CredentialError as exc:
            log_failure(request, credential, exc)
            raise _unauthorized(exc.detail, invalid=True) from None
        if not self.permits(principal.role, request.method):
            observability.AUTH_FAILURES.labels("role").inc()
            log.warning(
                "authorisation refused: role %s on %s %s",
                principal.role, request.method, _template(request),
                extra={"reason": "role", "actor": _principal_log(principal)},
            )
            raise Problem(
                403, "the %(role)s role may not %(method)s %(route)s", kind="forbidden",
                values={"role": Text(principal.role), "method": request.method,
                        "route": _template(request)},
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


_MANAGERS_ONLY = "only a manager of this team may do this"


def ensure_manager_of(principal: Principal, manager_ids: Collection[str]) -> None:
    """Refuse (403) unless the principal manages the team whose managers are ``manager_ids``."""
    if not policy.may_manage(principal, manager_ids):
        raise _out_of_scope(principal, _MANAGERS_ONLY)


def ensure_self(principal: Principal, agent_id: str) -> None:
    """Refuse (403) unless the principal is the agent ``agent_id`` (or admin or reader)."""
    if not policy.may_act_as_agent(principal, agent_id):
        raise _out_of_scope(principal, "an agent may only act on their own data")


def ensure_self_or_manager(
    principal: Principal, agent_id: str, manager_ids: Collection[str]
) -> None:
    """Refuse (403) unless the principal is the agent or manages the agent's team."""
    if not policy.may_see_agent(principal, agent_id, manager_ids):
        raise _out_of_scope(principal, "only the agent and the team's managers may do this")


def ensure_person(principal: Principal, person_id: str) -> None:
    """Refuse (403) unless the principal is the person ``person_id`` (or admin or reader)."""
    if not policy.may_reach_person(principal, person_id):
        raise _out_of_scope(principal,
                            "a person may only read or change their own contact details")


def ensure_source(principal: Principal, source: str) -> None:
    """Refuse (403) an ingest principal pushing for a source other than its own."""
    if not policy.may_push_for(principal, source):
        raise _out_of_scope(principal, "this ingest credential may only push for its own source")


def rater_admission(principal: Principal, rater_role: str) -> Callable[[Team], None]:
    """Return the check of an evaluation's rater against the team it is given in, for the
    command to run on each state of the team it decides on: a manager evaluation is given by a
    manager of the team (403 otherwise).

    A refusal is counted and logged once, however many states of the team the command runs it
    on (the one it holds, then the one read anew when anything moved): it is one refused
    request, and the second state refusing again is its answer, not another attempt."""
    refused: list[Problem] = []

    def admit(team: Team) -> None:
        if rater_role != "manager" or policy.may_manage(principal, team.manager_ids):
            return
        if not refused:
            refused.append(_out_of_scope(principal, _MANAGERS_ONLY))
        raise refused[0]
    return admit


def ensure_rates_as(principal: Principal, rater_role: str, agent_id: str) -> None:
    """Refuse (403) a principal whose role may not submit an evaluation as ``rater_role``."""
    if not policy.may_rate_as(principal, rater_role, agent_id):
        refusal = policy.rating_refusal(principal, rater_role)
        raise Problem(403, refusal.message, values=refusal.values, kind="forbidden")
