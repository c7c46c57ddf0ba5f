"""Scheme versions as a stream: publishing a new version never changes an old one.

Adoption by agreement (seed, stage 2: KPI standards are set democratically, not imposed). A
version is either published straight into force by an admin (``SchemePublished``: the built-in
default, and a PUT that names no approvers), or *proposed* with the people who must agree to it
and a quorum (``SchemeProposed``). Each named approver may approve once
(``SchemeVersionApproved``); the approval that reaches the quorum also appends
``SchemePublished`` for that version, which puts it in force: cycles opened from then on use it.

Only versions in force are "the scheme": ``SchemeVersions.latest`` and ``versions`` hold them
alone, so a cycle can never open with, or be pinned to, a version nobody agreed to. Version
numbers are shared by both kinds, and a pending proposal older than the version in force is
*superseded*: it can no longer be approved, so the version in force is always the newest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from service.domain.errors import Conflict, DomainError, FieldError, Forbidden, NotFound
from service.domain.events import DomainEvent, event
from service.domain.ids import ID_RE, ID_RULE
from service.domain.scheme import DEFAULT_SCHEME, DEFAULT_SCHEME_V2, Scheme, validate_scheme

VersionStatus = Literal["proposed", "adopted", "superseded"]
#: A proposal names at most this many approvers.
MAX_APPROVERS = 50


def scheme_stream(scheme_id: str) -> str:
    """Return the stream id of a scheme."""
    return f"scheme:{scheme_id}"


@event
class SchemePublished(DomainEvent):
    """A scheme version was published; cycles opened from now on use it."""

    type: Literal["SchemePublished"] = "SchemePublished"
    scheme_id: str
    version: int
    scheme: dict[str, Any]
    #: None on versions published before adoption was recorded with a time.
    published_at: datetime | None = None


@event
class SchemeProposed(DomainEvent):
    """A scheme version was proposed; it comes into force once ``quorum`` approvers agree."""

    type: Literal["SchemeProposed"] = "SchemeProposed"
    scheme_id: str
    version: int
    scheme: dict[str, Any]
    approvers: tuple[str, ...]
    quorum: int
    proposed_by: str
    proposed_at: datetime


@event
class SchemeVersionApproved(DomainEvent):
    """One of the named approvers agreed to a proposed version."""

    type: Literal["SchemeVersionApproved"] = "SchemeVersionApproved"
    scheme_id: str
    version: int
    approver_id: str
    comment: str | None = None
    approved_at: datetime


@dataclass(frozen=True)
class Proposal:
    """A proposed version and the approvals it collected."""

    proposed: SchemeProposed
    scheme: Scheme
    approvals: tuple[SchemeVersionApproved, ...] = ()

    def approved_by(self, approver_id: str) -> SchemeVersionApproved | None:
        """Return the approver's approval, if they gave one."""
        return next((a for a in self.approvals if a.approver_id == approver_id), None)


@dataclass(frozen=True)
class SchemeVersions:
    """Every version of one scheme: those in force, and the proposals."""

    versions: dict[int, Scheme] = field(default_factory=dict)
    proposals: dict[int, Proposal] = field(default_factory=dict)
    published: dict[int, SchemePublished] = field(default_factory=dict)

    @property
    def latest(self) -> Scheme | None:
        """Return the version in force (the newest adopted one), if any."""
        return self.versions[max(self.versions)] if self.versions else None

    @property
    def next_version(self) -> int:
        """Return the number the next published or proposed version gets."""
        return max([*self.versions, *self.proposals], default=0) + 1

    def status(self, version: int) -> VersionStatus:
        """Return whether a version is in force (adopted), awaiting approval, or superseded."""
        if version in self.versions:
            return "adopted"
        latest = self.latest
        return "superseded" if latest is not None and latest.version > version else "proposed"


def evolve(state: SchemeVersions | None, e: DomainEvent) -> SchemeVersions | None:
    """Apply one scheme event."""
    current = state or SchemeVersions()
    if isinstance(e, SchemePublished):
        return replace(current, versions={**current.versions, e.version:
                                          Scheme.model_validate(e.scheme)},
                       published={**current.published, e.version: e})
    if isinstance(e, SchemeProposed):
        proposal = Proposal(e, Scheme.model_validate(e.scheme))
        return replace(current, proposals={**current.proposals, e.version: proposal})
    if isinstance(e, SchemeVersionApproved) and e.version in current.proposals:
        proposal = current.proposals[e.version]
        proposal = replace(proposal, approvals=(*proposal.approvals, e))
        return replace(current, proposals={**current.proposals, e.version: proposal})
    return state


def _checked(state: SchemeVersions | None, proposed: Scheme) -> Scheme:
    version = state.next_version if state else 1
    scheme = proposed.model_copy(update={"version": version})
    problems = validate_scheme(scheme)
    if problems:
        raise DomainError(f"invalid scheme: {len(problems)} problem(s)", problems)
    return scheme


def decide_publish(
    state: SchemeVersions | None, proposed: Scheme, now: datetime | None = None
) -> list[DomainEvent]:
    """Publish proposed as the next version, in force at once, after checking everything."""
    scheme = _checked(state, proposed)
    return [SchemePublished(scheme_id=scheme.scheme_id, version=scheme.version,
                            scheme=scheme.model_dump(mode="json"), published_at=now)]


def decide_propose(
    state: SchemeVersions | None,
    proposed: Scheme,
    *,
    approvers: Sequence[str],
    quorum: int | None,
    proposed_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """Propose the next version; it needs ``quorum`` of ``approvers`` (all of them by default)."""
    named = tuple(dict.fromkeys(approvers))
    problems = [FieldError(f"approvers[{i}]", ID_RULE)
                for i, a in enumerate(approvers) if not ID_RE.fullmatch(a)]
    if not named:
        problems.append(FieldError("approvers", "name at least one approver"))
    elif len(named) > MAX_APPROVERS:
        problems.append(FieldError("approvers", f"at most {MAX_APPROVERS} approvers"))
    needed = len(named) if quorum is None else quorum
    if named and not 1 <= needed <= len(named):
        problems.append(FieldError("quorum", f"between 1 and the {len(named)} approver(s)"))
    try:
        scheme = _checked(state, proposed)
    except DomainError as exc:
        problems.extend(exc.errors)
    if problems:
        raise DomainError(f"invalid proposal: {len(problems)} problem(s)", problems)
    return [SchemeProposed(scheme_id=scheme.scheme_id, version=scheme.version,
                           scheme=scheme.model_dump(mode="json"), approvers=named,
                           quorum=needed, proposed_by=proposed_by, proposed_at=now)]


def decide_approve(
    state: SchemeVersions | None,
    scheme_id: str,
    version: int,
    *,
    approver_id: str,
    comment: str | None,
    now: datetime,
) -> list[DomainEvent]:
    """Approve a proposed version as one of its named approvers; the quorum puts it in force."""
    proposal = state.proposals.get(version) if state else None
    if state is None or proposal is None:
        if state is not None and version in state.versions:
            raise Conflict(f"version {version} of {scheme_id} was published by an admin;"
                           " there is nothing to approve")
        raise NotFound(f"scheme {scheme_id} has no proposed version {version}")
    status = state.status(version)
    if status != "proposed":
        raise Conflict(f"version {version} of {scheme_id} is {status}; it takes no more"
                       " approvals", version_status=status)
    if approver_id not in proposal.proposed.approvers:
        raise Forbidden(f"{approver_id} is not one of the approvers named in version {version}")
    earlier = proposal.approved_by(approver_id)
    if earlier is not None:
        raise Conflict(f"{approver_id} already approved version {version} on"
                       f" {earlier.approved_at.isoformat()}")
    text = comment.strip() if comment and comment.strip() else None
    events: list[DomainEvent] = [SchemeVersionApproved(
        scheme_id=scheme_id, version=version, approver_id=approver_id, comment=text,
        approved_at=now,
    )]
    if len(proposal.approvals) + 1 >= proposal.proposed.quorum:
        events.append(SchemePublished(scheme_id=scheme_id, version=version,
                                      scheme=proposal.proposed.scheme, published_at=now))
    return events


def version_history(state: SchemeVersions) -> list[dict[str, Any]]:
    """Return every version, newest first: the scheme with its status, approvers, quorum and
    who approved it when."""
    items = []
    for version in sorted({*state.versions, *state.proposals}, reverse=True):
        proposal = state.proposals.get(version)
        published = state.published.get(version)
        scheme = state.versions.get(version) or (proposal.scheme if proposal else None)
        assert scheme is not None
        items.append({
            **scheme.model_dump(mode="json"),
            "status": state.status(version),
            "proposed_by": proposal.proposed.proposed_by if proposal else None,
            "proposed_at": proposal.proposed.proposed_at if proposal else None,
            "approvers": list(proposal.proposed.approvers) if proposal else [],
            "quorum": proposal.proposed.quorum if proposal else 0,
            "approvals": [
                {"approver_id": a.approver_id, "approved_at": a.approved_at,
                 "comment": a.comment}
                for a in (proposal.approvals if proposal else ())
            ],
            "adopted_at": published.published_at if published else None,
        })
    return items


def decide_builtin(state: SchemeVersions | None, now: datetime | None = None
                   ) -> list[DomainEvent]:
    """Publish the built-in online-shop-cs: version 1 on a new installation, then the
    fair-months version once, unless some version of the scheme already has fair months.

    An upgraded installation thus gets version 2 in force (as its next version number), and
    an admin who later publishes a version without fair months is not overruled at the next
    start: the fair-months version is in the history, so it is never appended again.
    """
    events: list[DomainEvent] = []
    if state is None or not (state.versions or state.proposals):
        events += decide_publish(state, DEFAULT_SCHEME, now)
        for e in events:
            state = evolve(state, e)
    assert state is not None
    known = [*state.versions.values(), *(p.scheme for p in state.proposals.values())]
    if not any(s.results.fair_months for s in known):
        events += decide_publish(state, DEFAULT_SCHEME_V2, now)
    return events
