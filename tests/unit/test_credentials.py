"""Credentials, role rules and scopes, without a database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import APIRouter, FastAPI
from starlette.requests import Request

from service.api.auth import (
    Allow,
    CredentialError,
    FailureLimiter,
    Public,
    allow,
    authenticate,
    credential_label,
    endpoints,
    ensure_manager_of,
    ensure_self,
    ensure_self_or_manager,
    ensure_source,
    key_identity,
    public,
    route_rule,
    verify_jwt,
)
from service.api.deps import actor_metadata
from service.api.problems import Problem
from service.config import Settings
from service.context import ServiceContext
from service.domain.policy import may_rate_as
from service.domain.principal import (
    ROLES,
    ApiKeyIssued,
    Principal,
    credential_problems,
)
from service.store import keys
from service.store.database import Database

SECRET = "unit-test-secret-with-enough-entropy-0123456789"


def _rsa() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, pem


RSA_PRIVATE, RSA_PUBLIC_PEM = _rsa()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": SECRET, "jwt_leeway_seconds": 0}
    values.update(overrides)
    return Settings(**values)


def claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"sub": "m-1", "role": "manager", "exp": now + timedelta(hours=1)}
    values.update(overrides)
    return values


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """Build a token by hand, as an attacker would (pyjwt refuses to make the bad ones)."""
    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in payload.items()}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def refused(token: str, config: Settings | None = None) -> str:
    with pytest.raises(CredentialError) as caught:
        verify_jwt(token, config or settings())
    return caught.value.reason


# -- API keys ------------------------------------------------------------------------------


def test_new_keys_have_a_public_prefix_and_256_random_bits() -> None:
    key, prefix = keys.new_key()
    assert re.fullmatch(r"csk_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", key)
    assert key.startswith(f"csk_{prefix}_")
    assert keys.key_prefix(key) == prefix
    assert len({keys.new_key()[0] for _ in range(100)}) == 100


def test_keys_are_stored_as_sha256() -> None:
    key, _ = keys.new_key()
    assert keys.hash_key(key) == hashlib.sha256(key.encode()).digest()
    assert len(keys.hash_key(key)) == 32


def test_a_malformed_key_shows_no_prefix() -> None:
    # Without the second underscore, the leading characters are secret.
    assert keys.key_prefix("csk_abcdefghijklmnopqrstuvwxyz") is None
    assert credential_label("csk_abcdefghijklmnopqrstuvwxyz") == "csk"
    assert credential_label("csk_abcd1234_secretpart") == "csk_abcd1234"
    assert credential_label("eyJhbGciOi.payload.sig") == "jwt"


def test_bootstrap_key_rules() -> None:
    key = "csk_boot_" + "x" * 40
    assert keys.bootstrap_key_problem(key) is None
    assert keys.bootstrap_key_problem("admin") is not None
    assert keys.bootstrap_key_problem("csk_short") is not None


def test_key_events_carry_no_secret() -> None:
    event = ApiKeyIssued(key_id="abcd1234", prefix="abcd1234", role="agent", subject="a-1")
    data = event.data()
    assert set(data) == {"key_id", "prefix", "role", "subject", "source", "name"}


@pytest.mark.parametrize(
    ("role", "subject", "source", "field"),
    [
        ("boss", None, None, "role"),
        ("agent", None, None, "subject"),
        ("manager", None, None, "subject"),
        ("rater", None, None, "subject"),
        ("ingest", None, None, "source"),
        ("admin", None, "chat", "source"),
        ("agent", "has space", None, "subject"),
        ("ingest", None, "x" * 65, "source"),
    ],
)
def test_credential_problems_name_the_field(
    role: str, subject: str | None, source: str | None, field: str
) -> None:
    assert field in {f for f, _ in credential_problems(role, subject, source)}


def test_valid_credentials_have_no_problems() -> None:
    assert credential_problems("ingest", None, "chat-widget") == []
    assert credential_problems("agent", "a-17", None) == []
    assert credential_problems("admin", None, None) == []
    assert credential_problems("reader", None, None) == []


# -- JWT -------------------------------------------------------------------------------------


def test_a_valid_hs256_token_gives_its_principal() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert verify_jwt(token, settings()).principal == Principal("m-1", "manager", None, None)


def test_an_ingest_token_carries_its_source() -> None:
    token = jwt.encode(claims(role="ingest", source="chat"), SECRET, algorithm="HS256")
    assert verify_jwt(token, settings()).principal.source == "chat"
    no_source = jwt.encode(claims(role="ingest"), SECRET, algorithm="HS256")
    assert refused(no_source) == "bad-claims"


def test_a_forged_signature_is_refused() -> None:
    other = "another-secret-of-enough-length-000"
    token = jwt.encode(claims(role="admin"), other, algorithm="HS256")
    assert refused(token) == "bad-signature"
    header, payload, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=="))
    tampered["role"] = "admin"
    assert refused(f"{header}.{_b64(json.dumps(tampered).encode())}.{signature}") == "bad-signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(alg: str) -> None:
    assert refused(handmade({"alg": alg, "typ": "JWT"}, claims(role="admin"), None)) == "algorithm"


@pytest.mark.parametrize("alg", ["HS512", "HS384", "ES256", "PS256"])
def test_algorithms_off_the_list_are_refused(alg: str) -> None:
    assert refused(handmade({"alg": alg}, claims(), SECRET.encode())) == "algorithm"


def test_expired_tokens_are_refused() -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    token = jwt.encode(claims(exp=past), SECRET, algorithm="HS256")
    assert refused(token) == "expired"


def test_leeway_tolerates_small_clock_skew() -> None:
    just_past = datetime.now(UTC) - timedelta(seconds=5)
    token = jwt.encode(claims(exp=just_past), SECRET, algorithm="HS256")
    assert verify_jwt(token, settings(jwt_leeway_seconds=30)).principal.subject == "m-1"


def test_a_verified_token_is_valid_within_its_claims_and_the_leeway() -> None:
    # What authenticate holds a token by: PyJWT's own bounds on iat, nbf and exp.
    issued = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
    starts = issued + 60
    expires = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    token = jwt.encode(claims(iat=issued, nbf=starts, exp=expires), SECRET, algorithm="HS256")
    verified = verify_jwt(token, settings(jwt_leeway_seconds=30))
    assert verified.valid_at(starts - 30) and verified.valid_at(expires + 29.9)
    assert not verified.valid_at(starts - 31) and not verified.valid_at(expires + 30)


async def test_a_held_token_is_refused_once_it_expires() -> None:
    # The process holds a verified token (its signature is checked once), never past its exp.
    ctx = ServiceContext(settings(), Database("postgresql://unused@127.0.0.1/unused"))
    expires = int(time.time()) + 1
    token = jwt.encode(claims(exp=expires), SECRET, algorithm="HS256")
    assert await authenticate(ctx, token) == Principal("m-1", "manager", None, None)
    assert ctx.tokens.total == 1
    assert await authenticate(ctx, token) == Principal("m-1", "manager", None, None)
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(CredentialError) as caught:
        await authenticate(ctx, token)
    assert caught.value.reason == "expired"


def test_nbf_in_the_future_is_refused() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=10)
    token = jwt.encode(claims(nbf=soon), SECRET, algorithm="HS256")
    assert refused(token) == "not-yet-valid"


@pytest.mark.parametrize("missing", ["exp", "sub", "role"])
def test_required_claims(missing: str) -> None:
    payload = claims()
    del payload[missing]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    assert refused(token) in {"invalid-token", "bad-claims"}


def test_unknown_role_is_refused() -> None:
    assert refused(jwt.encode(claims(role="root"), SECRET, algorithm="HS256")) == "bad-claims"


@pytest.mark.parametrize("subject", [
    "m-1\u202eevil", "m\x00", "m-1\n", "m 1", "x" * 65, "agent\u200b",
])
def test_a_subject_outside_the_id_pattern_is_refused(subject: str) -> None:
    # Issue 17 item 10: control and bidi characters reached the audit trail through 'sub'.
    token = jwt.encode(claims(sub=subject), SECRET, algorithm="HS256")
    with pytest.raises(CredentialError) as caught:
        verify_jwt(token, settings())
    assert caught.value.reason == "bad-claims" and "'sub'" in caught.value.detail


def test_an_ingest_source_outside_the_id_pattern_is_refused() -> None:
    token = jwt.encode(claims(role="ingest", source="crm\u202e"), SECRET, algorithm="HS256")
    assert refused(token) == "bad-claims"


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["numeric-string", True])
def test_time_claims_must_be_numbers(name: str, value: object) -> None:
    moment = int((datetime.now(UTC) + (timedelta(hours=1) if name == "exp"
                                        else -timedelta(minutes=1))).timestamp())
    payload = {**claims(), name: str(moment) if value == "numeric-string" else value}
    # pyjwt would take "1790000000" as a number; hand-made, as a careless issuer would send it.
    token = handmade({"alg": "HS256", "typ": "JWT"}, payload, SECRET.encode())
    refused(token)
    numeric = handmade({"alg": "HS256", "typ": "JWT"}, {**claims(), name: moment},
                       SECRET.encode())
    assert verify_jwt(numeric, settings()).principal.subject == "m-1"


def test_a_failure_names_the_subject_only_when_the_signature_verified() -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(claims(sub="a-7", exp=past), SECRET, algorithm="HS256")
    with pytest.raises(CredentialError) as caught:
        verify_jwt(expired, settings())
    assert caught.value.identity == "sub:a-7"
    forged = jwt.encode(claims(sub="a-7"), "another-secret-0123456789abcdefghij", algorithm="HS256")
    with pytest.raises(CredentialError) as caught:
        verify_jwt(forged, settings())
    assert caught.value.reason == "bad-signature" and caught.value.identity is None
    # The signature is checked before the time claims: a forged expired token names nobody.
    forged_expired = jwt.encode(claims(sub="a-7", exp=past),
                                "another-secret-0123456789abcdefghij", algorithm="HS256")
    with pytest.raises(CredentialError) as caught:
        verify_jwt(forged_expired, settings())
    assert caught.value.reason == "bad-signature" and caught.value.identity is None


def test_a_key_is_identified_by_its_secret_not_its_prefix() -> None:
    assert key_identity("csk_aaaa1111_secret-one") == key_identity("csk_zzzz9999_secret-one")
    assert key_identity("csk_aaaa1111_secret-one") != key_identity("csk_aaaa1111_secret-two")
    assert "secret-one" not in key_identity("csk_aaaa1111_secret-one")
    assert key_identity("csk_nounderscoreatall") != key_identity("csk_nounderscoreatalL")


def test_a_failure_counts_in_every_bucket_and_brakes_past_the_limit_of_any() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(2, 60, clock=clock)
    assert limiter.fail(["addr:a", "key:1"]) is None
    assert limiter.fail(["addr:a", "key:2"]) is None
    assert limiter.fail(["addr:a", "key:3"]) == pytest.approx(60)  # the address is full
    assert limiter.fail(["addr:b", "key:1"]) is None  # key 1 has failed twice now
    assert limiter.fail(["addr:c", "key:1"]) == pytest.approx(60)  # the identity is full


def test_garbage_is_refused() -> None:
    assert refused("not-a-token") == "malformed"
    assert refused("a.b.c") == "malformed"


def test_hs256_is_refused_without_a_secret() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert refused(token, settings(jwt_secret=None)) == "algorithm"


def test_audience_and_issuer_are_enforced_when_configured() -> None:
    config = settings(jwt_audience="csperf", jwt_issuer="https://idp.example")
    good = jwt.encode(claims(aud="csperf", iss="https://idp.example"), SECRET, algorithm="HS256")
    assert verify_jwt(good, config).principal.subject == "m-1"
    assert refused(jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"), config)
    assert refused(jwt.encode(claims(aud="csperf"), SECRET, algorithm="HS256"), config)


def test_rs256_when_a_public_key_is_configured() -> None:
    token = jwt.encode(claims(), RSA_PRIVATE, algorithm="RS256")
    assert verify_jwt(token, settings(jwt_public_key=RSA_PUBLIC_PEM)).principal.subject == "m-1"
    assert refused(token, settings()) == "algorithm"  # RS256 off without a public key


def test_rs256_accepts_pem_with_escaped_newlines() -> None:
    token = jwt.encode(claims(), RSA_PRIVATE, algorithm="RS256")
    escaped = RSA_PUBLIC_PEM.replace("\n", "\\n")
    assert verify_jwt(token, settings(jwt_public_key=escaped)).principal.subject == "m-1"


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    # The classic confusion: sign HS256 with the public PEM, hoping the server verifies with it.
    config = settings(jwt_public_key=RSA_PUBLIC_PEM)
    token = handmade({"alg": "HS256"}, claims(role="admin"), RSA_PUBLIC_PEM.encode())
    assert refused(token, config) == "bad-signature"
    no_secret = settings(jwt_secret=None, jwt_public_key=RSA_PUBLIC_PEM)
    assert refused(token, no_secret) == "algorithm"


def test_rs256_signed_with_another_key_is_refused() -> None:
    other, _ = _rsa()
    token = jwt.encode(claims(), other, algorithm="RS256")
    assert refused(token, settings(jwt_public_key=RSA_PUBLIC_PEM)) == "bad-signature"


# -- role rules ------------------------------------------------------------------------------


def test_admin_is_always_allowed() -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        assert Allow((), reads=True).permits("admin", method)


def test_reader_may_get_and_nothing_else() -> None:
    rule = Allow(("manager", "reader"), reads=True)
    assert rule.permits("reader", "GET")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert not rule.permits("reader", method)
    assert not Allow(("manager",), reads=False).permits("reader", "GET")


def test_listed_roles_only() -> None:
    rule = Allow(("manager", "agent"), reads=True)
    assert rule.permits("manager", "POST") and rule.permits("agent", "GET")
    for role in ("rater", "ingest"):
        assert not rule.permits(role, "GET")


def test_unknown_roles_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="managr"):
        allow("managr")


def test_route_rules_are_discoverable() -> None:
    app = FastAPI()

    @app.get("/a", dependencies=[allow("agent")])
    async def a() -> None:
        """Test route."""

    @app.get("/b", dependencies=[public()])
    async def b() -> None:
        """Test route."""

    @app.get("/c")
    async def c() -> None:
        """Test route."""

    router = APIRouter(prefix="/r", dependencies=[allow("manager")])

    @router.post("/d")
    async def d() -> None:
        """Test route."""

    app.include_router(router)
    rules = {(e.method, e.path): e.rule for e in endpoints(app) if e.is_api}
    rule_a = rules[("GET", "/a")]
    assert isinstance(rule_a, Allow) and rule_a.roles == {"admin", "agent"}
    assert isinstance(rules[("GET", "/b")], Public)
    assert rules[("GET", "/c")] is None
    rule_d = rules[("POST", "/r/d")]  # a router-wide rule counts
    assert isinstance(rule_d, Allow) and rule_d.roles == {"admin", "manager"}
    assert route_rule(object()) is None


# -- scopes ----------------------------------------------------------------------------------


ADMIN = Principal("root", "admin", "k1")
READER = Principal("bi", "reader", "k2")


def forbidden(call: Any, *args: Any) -> None:
    with pytest.raises(Problem) as caught:
        call(*args)
    assert caught.value.status == 403
    assert caught.value.kind == "out-of-scope"


def test_manager_of_another_team_is_refused() -> None:
    ensure_manager_of(Principal("m-1", "manager"), ["m-1", "m-2"])
    forbidden(ensure_manager_of, Principal("m-3", "manager"), ["m-1", "m-2"])
    forbidden(ensure_manager_of, Principal("m-1", "agent"), ["m-1"])  # role, not just the id
    forbidden(ensure_manager_of, Principal("m-1", "rater"), ["m-1"])
    ensure_manager_of(ADMIN, [])
    ensure_manager_of(READER, [])


def test_agent_reading_another_agent_is_refused() -> None:
    ensure_self(Principal("a-1", "agent"), "a-1")
    forbidden(ensure_self, Principal("a-1", "agent"), "a-2")
    forbidden(ensure_self, Principal("a-2", "manager"), "a-2")
    ensure_self(ADMIN, "a-2")
    ensure_self(READER, "a-2")


def test_self_or_manager() -> None:
    ensure_self_or_manager(Principal("a-1", "agent"), "a-1", ["m-1"])
    ensure_self_or_manager(Principal("m-1", "manager"), "a-1", ["m-1"])
    forbidden(ensure_self_or_manager, Principal("a-2", "agent"), "a-1", ["m-1"])
    forbidden(ensure_self_or_manager, Principal("m-2", "manager"), "a-1", ["m-1"])


def test_ingest_for_another_source_is_refused() -> None:
    ensure_source(Principal("apikey:x", "ingest", "x", "chat"), "chat")
    forbidden(ensure_source, Principal("apikey:x", "ingest", "x", "chat"), "phone")
    ensure_source(ADMIN, "phone")


def test_rater_roles() -> None:
    assert may_rate_as(Principal("a-1", "agent"), "self", "a-1")
    assert not may_rate_as(Principal("a-1", "agent"), "self", "a-2")
    assert not may_rate_as(Principal("a-1", "agent"), "peer", "a-2")
    assert may_rate_as(Principal("r-1", "rater"), "peer", "a-2")
    assert not may_rate_as(Principal("r-1", "rater"), "manager", "a-2")
    assert may_rate_as(Principal("m-1", "manager"), "manager", "a-2")
    assert may_rate_as(ADMIN, "customer", "a-2")
    assert may_rate_as(ADMIN, "manager", "a-2")
    assert not may_rate_as(ADMIN, "self", "a-2")  # only the agent's own self-evaluation counts
    assert set(ROLES) == {"admin", "manager", "agent", "rater", "ingest", "reader"}


# -- failed-authentication limit -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_limit_wait_for_the_window() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("ip|jwt") is None
        limiter.record("ip|jwt")
    assert limiter.retry_after("ip|jwt") == pytest.approx(60)
    assert limiter.retry_after("ip|csk_abcd1234") is None  # other buckets are unaffected
    clock.now += 30
    assert limiter.retry_after("ip|jwt") == pytest.approx(30)
    clock.now += 30.5
    assert limiter.retry_after("ip|jwt") is None


def test_a_zero_limit_disables_limiting() -> None:
    limiter = FailureLimiter(0)
    for _ in range(100):
        limiter.record("b")
    assert limiter.retry_after("b") is None


def test_limiter_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(5, 60, max_buckets=100, clock=clock)
    for i in range(1000):
        limiter.record(f"10.0.{i}|jwt")
    assert len(limiter._failures) <= 100


def test_a_flood_of_fresh_identities_neither_grows_memory_nor_frees_its_address() -> None:
    clock = FakeClock()
    limiter = FailureLimiter(5, 60, max_buckets=100, clock=clock)
    answers = [limiter.fail(["addr:attacker", f"key:{i}"]) for i in range(1000)]
    assert len(limiter._failures) <= 100
    # The flooding address keeps failing, so it is never the bucket evicted: still braked.
    assert all(wait is not None for wait in answers[5:])
    assert limiter.retry_after("addr:attacker") is not None


# -- audit metadata ------------------------------------------------------------------------


def _request(headers: dict[str, str]) -> Request:
    scope = {
        "type": "http", "method": "POST", "path": "/", "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "state": {"request_id": "req-1"},
    }
    return Request(scope)


def test_actor_metadata() -> None:
    principal = Principal("m-1", "manager", "abcd1234")
    assert actor_metadata(principal, _request({})) == {
        "actor": {"subject": "m-1", "role": "manager", "key_id": "abcd1234"},
        "request_id": "req-1",
        "correlation_id": "req-1",
        "causation_id": None,
    }
    linked = actor_metadata(
        principal, _request({"X-Correlation-Id": "corr-9", "X-Causation-Id": "evt-3"})
    )
    assert linked["correlation_id"] == "corr-9" and linked["causation_id"] == "evt-3"
    assert actor_metadata(principal, _request({"X-Correlation-Id": "x" * 500}))[
        "correlation_id"
    ] == "req-1"
