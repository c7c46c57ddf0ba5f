"""Outgoing webhooks, the pure part: what a subscription matches, how deliveries are signed,
when a failed one is retried, and which URLs are acceptable.

Signing (``X-Csperf-Signature: t=<unix seconds>,v1=<hex>``): HMAC-SHA256 with the
subscription's secret over ``"<t>.<body>"``. The timestamp is signed with the body so a
receiver can refuse old replays (accept, say, five minutes of skew); the body is the same bytes
on every attempt of a delivery. Compare in constant time (``hmac.compare_digest``).

At least once: a delivery whose answer was lost is sent again, so receivers deduplicate by
``X-Csperf-Delivery`` (one id per subscription and event, stable across attempts).

Subscription events never carry the URL itself (webhook URLs often hold a token in their path)
or the secret: only the URL's origin and a hash of the whole URL.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from service.domain.errors import IdTaken
from service.domain.events import DomainEvent, event

_JITTER = random.Random()  # noqa: S311 - jitter, not a secret
DELIVERY_NAMESPACE = uuid.UUID("0b8f3a52-6a55-4c1e-a0d4-7d3c52e8c9a1")
ALL_TYPES = "*"
TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$")
MAX_URL = 2000
SIGNATURE_HEADER = "X-Csperf-Signature"
DELIVERY_HEADER = "X-Csperf-Delivery"
EVENT_TYPE_HEADER = "X-Csperf-Event-Type"
EVENT_ID_HEADER = "X-Csperf-Event-Id"
TIMESTAMP_HEADER = "X-Csperf-Timestamp"


@event
class WebhookSubscribed(DomainEvent):
    """An admin subscribed a URL to events (neither the full URL nor the secret is recorded)."""

    type: Literal["WebhookSubscribed"] = "WebhookSubscribed"
    subscription_id: str
    url_origin: str
    url_sha256: str
    event_types: list[str]
    stream_types: list[str] | None = None
    description: str | None = None


@event
class WebhookDeleted(DomainEvent):
    """An admin deleted a subscription; its pending deliveries were cancelled."""

    type: Literal["WebhookDeleted"] = "WebhookDeleted"
    subscription_id: str
    url_origin: str
    cancelled_deliveries: int


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """What a subscription's stream (``webhook:<id>``) folds to: how it was subscribed, and
    whether it was deleted since."""

    subscribed: WebhookSubscribed
    deleted: bool = False


def subscription_stream(subscription_id: str) -> str:
    """Return the stream id of a subscription's events."""
    return f"webhook:{subscription_id}"


def evolve(state: SubscriptionState | None, e: DomainEvent) -> SubscriptionState | None:
    """Fold a subscription's events: subscribed, then perhaps deleted."""
    if isinstance(e, WebhookSubscribed):
        return SubscriptionState(e)
    if isinstance(e, WebhookDeleted) and state is not None:
        return SubscriptionState(state.subscribed, deleted=True)
    return state


def decide_subscribe(state: SubscriptionState | None, subscribed: WebhookSubscribed
                     ) -> list[DomainEvent]:
    """Subscribe under a fresh id; 409 when the (random) id is taken."""
    if state is not None:
        raise IdTaken(f"subscription id {subscribed.subscription_id} is taken")
    return [subscribed]


def decide_delete(state: SubscriptionState | None, pending: int) -> list[DomainEvent]:
    """Delete an active subscription, naming the ``pending`` deliveries this cancels;
    deleting a deleted one records nothing."""
    if state is None or state.deleted:
        return []
    subscribed = state.subscribed
    return [WebhookDeleted(subscription_id=subscribed.subscription_id,
                           url_origin=subscribed.url_origin, cancelled_deliveries=pending)]


def url_problem(url: str) -> str | None:
    """Say why a URL cannot receive webhooks (None: it can): http or https, a host, no
    credentials in it."""
    if len(url) > MAX_URL:
        return f"at most {MAX_URL} characters"
    if not url.isprintable() or any(c.isspace() for c in url):
        return "no spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "the URL must name a host"
    if parts.username is not None or parts.password is not None:
        return "no user or password in the URL (they would be logged); use a token in the" \
               " path or verify the signature instead"
    if port == 0:
        return "not a valid port"
    return None


def url_origin(url: str) -> str:
    """Return what may be logged about a URL: its scheme, host and port, no path or query."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 address
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"


def url_sha256(url: str) -> str:
    """Return the hash that identifies a URL in events without revealing it."""
    return hashlib.sha256(url.encode()).hexdigest()


def type_problem(name: str) -> str | None:
    """Say why a type name filter is refused (None: fine)."""
    if name == ALL_TYPES or TYPE_NAME.fullmatch(name):
        return None
    return "a type name (letters, digits, . _ : -, up to 100) or * for every type"


def matches(
    event_types: Sequence[str], stream_types: Sequence[str] | None, event_type: str,
    stream_type: str,
) -> bool:
    """Tell whether a subscription wants an event."""
    if stream_types is not None and stream_type not in stream_types:
        return False
    return ALL_TYPES in event_types or event_type in event_types


def delivery_id(subscription_id: str, event_id: uuid.UUID) -> uuid.UUID:
    """Return the delivery's id: the same for a subscription and event, however often the
    dispatcher replays it (so receivers can deduplicate on it)."""
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{subscription_id}\x1f{event_id}")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature header value of a body sent at a timestamp."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """Tell whether a signature header is valid for a body (what a receiver does)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def retry_delay(
    attempts: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Return the wait before the next attempt after ``attempts`` failed ones.

    Exponential (base, 2 base, 4 base, ..) up to ``cap``, with +-20 % jitter so that many
    deliveries failing together do not retry in lockstep.
    """
    exponent = min(max(attempts - 1, 0), 30)
    delay: float = min(base * 2.0**exponent, cap)
    return delay * (rng or _JITTER).uniform(0.8, 1.2)
