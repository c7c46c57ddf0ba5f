"""Who is calling: the principal a credential proves, the roles, and the key lifecycle events.

Pure: no FastAPI, no database. The API turns a credential into a ``Principal``; handlers and
domain rules only ever see the principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.domain.errors import IdTaken
from service.domain.events import DomainEvent, event
from service.domain.ids import ID_RE  # subjects and sources are ids of the API's id form

ROLES: tuple[str, ...] = ("admin", "manager", "agent", "rater", "ingest", "reader")

#: Roles whose keys and tokens must name the person (or system) they stand for.
SUBJECT_ROLES: frozenset[str] = frozenset({"manager", "agent", "rater"})

#: Evaluation rater roles (``.../evaluations/{agent_id}/{rater_role}``) that a principal of
#: role ``rater`` may submit as; ``self`` belongs to the agent and ``manager`` to the manager.
EXTERNAL_RATER_ROLES: frozenset[str] = frozenset({"peer", "subordinate", "customer", "expert"})


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a verified credential stands for.

    ``key_id`` is the API key's id, or None for a JWT; ``source`` is set only for ingest.
    """

    subject: str
    role: str
    key_id: str | None = None
    source: str | None = None

    @property
    def is_admin(self) -> bool:
        """Tell whether the principal may do everything."""
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A JWT whose signature and claims verified, and when it is valid: from ``opens`` until
    before ``closes`` (seconds since the epoch, the issuer's leeway included)."""

    principal: Principal
    opens: float
    closes: float

    def valid_at(self, now: float) -> bool:
        """Tell whether the token is valid at this time (seconds since the epoch)."""
        return self.opens <= now < self.closes


#: The principal of the command line: whoever can run it already holds the database.
CLI_PRINCIPAL = Principal(subject="cli", role="admin")
#: The principal that registers CSPERF_BOOTSTRAP_ADMIN_KEY at start-up.
BOOTSTRAP_PRINCIPAL = Principal(subject="bootstrap", role="admin")


def actor(principal: Principal) -> dict[str, Any]:
    """Return the actor record that goes into every event's metadata."""
    return {"subject": principal.subject, "role": principal.role, "key_id": principal.key_id}


def event_metadata(
    principal: Principal,
    *,
    request_id: str | None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> dict[str, Any]:
    """Return event metadata: who acted, in which request, correlated with what."""
    return {
        "actor": actor(principal),
        "request_id": request_id,
        "correlation_id": correlation_id or request_id,
        "causation_id": causation_id,
    }


def credential_problems(
    role: str, subject: str | None, source: str | None
) -> list[tuple[str, str]]:
    """List (field, reason) for a role/subject/source combination a credential cannot carry."""
    problems: list[tuple[str, str]] = []
    if role not in ROLES:
        problems.append(("role", f"unknown role; one of {list(ROLES)}"))
        return problems
    if subject is not None and not ID_RE.fullmatch(subject):
        problems.append(("subject", "1 to 64 letters, digits, '.', '_', ':' or '-'"))
    elif role in SUBJECT_ROLES and not subject:
        problems.append(("subject", f"a {role} credential must name its subject"))
    if source is not None and not ID_RE.fullmatch(source):
        problems.append(("source", "1 to 64 letters, digits, '.', '_', ':' or '-'"))
    elif role == "ingest" and not source:
        problems.append(("source", "an ingest credential must name its source"))
    elif role != "ingest" and source:
        problems.append(("source", "only an ingest credential carries a source"))
    return problems


@event
class ApiKeyIssued(DomainEvent):
    """An API key was issued; the secret and its hash are never part of the event."""

    type: Literal["ApiKeyIssued"] = "ApiKeyIssued"
    key_id: str
    prefix: str
    role: str
    subject: str | None = None
    source: str | None = None
    name: str | None = None


@event
class ApiKeyRevoked(DomainEvent):
    """An API key was revoked; it stops working at once."""

    type: Literal["ApiKeyRevoked"] = "ApiKeyRevoked"
    key_id: str
    prefix: str
    role: str
    subject: str | None = None
    source: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class KeyState:
    """What a key's stream (``apikey:<key_id>``) folds to: how it was issued, and whether it
    was revoked since."""

    issued: ApiKeyIssued
    revoked: bool = False


def key_stream(key_id: str) -> str:
    """Return the stream id of a key's lifecycle events."""
    return f"apikey:{key_id}"


def evolve_key(state: KeyState | None, e: DomainEvent) -> KeyState | None:
    """Fold a key's events: issued, then perhaps revoked."""
    if isinstance(e, ApiKeyIssued):
        return KeyState(e)
    if isinstance(e, ApiKeyRevoked) and state is not None:
        return KeyState(state.issued, revoked=True)
    return state


def decide_issue(state: KeyState | None, issued: ApiKeyIssued) -> list[DomainEvent]:
    """Issue a key under a fresh id; 409 when the (random) id is taken."""
    if state is not None:
        raise IdTaken(f"key id {issued.key_id} is taken")
    return [issued]


def decide_revoke(state: KeyState | None) -> list[DomainEvent]:
    """Revoke an issued key; revoking a revoked (or unknown) key records nothing."""
    if state is None or state.revoked:
        return []
    return [ApiKeyRevoked(**state.issued.data())]
