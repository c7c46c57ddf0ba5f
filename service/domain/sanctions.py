"""Consequences of published months: the sanctions ledger, improvement plans, reassignment reviews.

Pure: no I/O. The consequences of a month are decided once, at publication, and recorded in the
``CyclePublished`` event (``cycle.decide_publish``). This module turns the publications of a
month into a ledger:

- A decision that a publication takes for the first time is a *grant* entry.
- When a correction (reopen, revise, close, publish again) no longer holds a reward or a
  deduction, a *reversal* entry of the opposite amount is written; entries are never edited or
  removed, so the amounts of a month's entries always sum to what the latest publication owes.
- An improvement plan or reassignment review that a later publication no longer calls for is
  closed by a *cancellation* entry. One that it still calls for continues as it is: its deadline,
  submissions and reviews stay those of the publication that opened it (a correction that leaves
  an agent in the bottom two does not restart their week).

Improvement plans (stream ``plan:{team}:{period}:{agent}``) and reassignment reviews (stream
``review:{team}:{period}:{agent}``) are aggregates of their own; their events name the
publication that opened the obligation they answer, so a plan answers exactly one obligation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from service.domain.conflicts import ensure_not_own_case
from service.domain.cycle import ConsequencesRevised, CycleClosed, CycleOpened, CyclePublished
from service.domain.errors import Conflict, DomainError, FieldError, NotFound, Text
from service.domain.events import DomainEvent, event
from service.domain.frozen import Frozen
from service.domain.ids import ID_RE
from service.domain.results import PlanDecision, ResultDecision, ResultKind, standing

EntryType = Literal["grant", "reversal", "cancellation", "basis_change"]
EndStatus = Literal["reversed", "cancelled", "basis_changed"]
ReviewDecision = Literal["reassign", "retain"]

#: Kinds that carry an amount owed (to or by the agent); the others are obligations.
AMOUNT_KINDS: tuple[ResultKind, ...] = ("reward", "deduction")
KINDS: tuple[ResultKind, ...] = ("reward", "deduction", "improvement_plan", "reassignment_review")
#: Every status a ledger item can have. Rewards and deductions: active, then perhaps reversed;
#: plans: due, submitted, approved, rejected, overdue, cancelled; reviews: open, reassign,
#: retain, cancelled; the entries that reverse or cancel another: reversal, cancellation,
#: and basis_change (a decided review no longer called for: it keeps its decision).
STATUSES: tuple[str, ...] = (
    "active", "reversed", "reversal", "due", "submitted", "approved", "rejected", "overdue",
    "cancelled", "cancellation", "open", "reassign", "retain", "basis_change",
)

_KIND_WORDS: dict[str, Text] = {
    "reward": Text("reward"),
    "deduction": Text("deduction"),
    "improvement_plan": Text("improvement plan"),
    "reassignment_review": Text("reassignment review"),
}
_REVIEW_ID_PERIOD = re.compile(r"(?=:(\d{4}-(?:0[1-9]|1[0-2])):)")


def entry_id(team_id: str, period: str, agent_id: str, kind: str, publication: int) -> str:
    """Return the id of the ledger entry a publication grants."""
    return f"{team_id}:{period}:{agent_id}:{kind}:p{publication}"


def review_id(team_id: str, period: str, agent_id: str) -> str:
    """Return the id of an agent's reassignment review for a team's month."""
    return f"{team_id}:{period}:{agent_id}"


def parse_review_id(text: str) -> list[tuple[str, str, str]]:
    """Return every (team_id, period, agent_id) a review id can stand for."""
    # Ids may contain ':', so "a:2026-11:b:2026-12:c" has two readings; the caller keeps the
    # one that names an existing review.
    readings = []
    for match in _REVIEW_ID_PERIOD.finditer(text):
        period = match.group(1)
        team_id = text[: match.start()]
        agent_id = text[match.start() + len(period) + 2:]
        if ID_RE.fullmatch(team_id) and ID_RE.fullmatch(agent_id):
            readings.append((team_id, period, agent_id))
    return readings


def plan_stream(team_id: str, period: str, agent_id: str) -> str:
    """Return the stream id of an agent's improvement plan for a team's month."""
    return f"plan:{team_id}:{period}:{agent_id}"


def review_stream(team_id: str, period: str, agent_id: str) -> str:
    """Return the stream id of an agent's reassignment review for a team's month."""
    return f"review:{team_id}:{period}:{agent_id}"


# --- the ledger -----------------------------------------------------------------------------




class LedgerEntry(Frozen):
    """One line of the ledger: a grant, or the reversal or cancellation of an earlier one."""

    id: str
    team_id: str
    period: str
    agent_id: str
    kind: ResultKind
    entry: EntryType
    publication: int
    #: The line's position among those its publication wrote (a stable order for readers).
    ordinal: int
    amount: float | None = None
    currency: str | None = None
    due_at: datetime | None = None
    reason: str
    rank: int | None = None
    places: tuple[int, int] | None = None
    months: tuple[str, ...] = ()
    reverses: str | None = None
    created_at: datetime

    @property
    def initial_status(self) -> str:
        """Return the status the entry starts with."""
        if self.entry != "grant":
            return self.entry
        return {"improvement_plan": "due", "reassignment_review": "open"}.get(self.kind, "active")


class Standing(Frozen):
    """Where an agent stood in the month's latest closed ranking."""

    rank: int | None
    places: tuple[int, int] | None


class Ledger(Frozen):
    """A team's month as the ledger sees it: what is in force and what has ended."""

    team_id: str
    period: str
    publication: int = 0
    ranked: int = 0
    standings: dict[str, Standing] = Field(default_factory=dict)
    #: Grants in force, by "kind:agent_id".
    active: dict[str, LedgerEntry] = Field(default_factory=dict)
    #: Grants a later publication ended, by entry id.
    ended: dict[str, LedgerEntry] = Field(default_factory=dict)
    #: The entry that ended each ended grant (its reason names the correction), by grant id.
    endings: dict[str, LedgerEntry] = Field(default_factory=dict)

    def obligation(self, kind: ResultKind, agent_id: str) -> LedgerEntry | None:
        """Return the grant of this kind in force for the agent, if any."""
        return self.active.get(f"{kind}:{agent_id}")

    def ever(self, kind: ResultKind, agent_id: str) -> LedgerEntry | None:
        """Return the latest ended grant of this kind for the agent, if any."""
        ended = [e for e in self.ended.values() if e.kind == kind and e.agent_id == agent_id]
        return max(ended, key=lambda e: e.publication) if ended else None


class Settlement(Frozen):
    """What one publication changes in the ledger: new entries, and grants that end."""

    entries: tuple[LedgerEntry, ...] = ()
    ended: tuple[tuple[str, EndStatus], ...] = ()


#: What settles a month's ledger: a publication, or a revision after an earlier correction.
Settling = CyclePublished | ConsequencesRevised


def _settled_at(e: Settling) -> datetime:
    return e.published_at if isinstance(e, CyclePublished) else e.revised_at


def _by(e: Settling) -> str:
    """Name what settles, in words: "publication 2 (correction: ...)", "revision 3 after ..."."""
    if isinstance(e, ConsequencesRevised):
        return f"revision {e.publication}, after {e.cause()},"
    return (f"publication {e.publication} (correction: {e.correction})" if e.correction
            else f"publication {e.publication}")


def _now_standing(ledger: Ledger, agent_id: str) -> str:
    found = ledger.standings.get(agent_id)
    if found is None or found.rank is None or found.places is None:
        return "not ranked"
    return standing(found.rank, found.places, ledger.ranked)


def _holds(entry: LedgerEntry, decision: ResultDecision | None) -> bool:
    if decision is None:
        return False
    if entry.kind in AMOUNT_KINDS:
        return (entry.amount, entry.currency) == (decision.amount, decision.currency)
    return True


def _end_status(old: LedgerEntry, decided: bool) -> EndStatus:
    if old.kind in AMOUNT_KINDS:
        return "reversed"
    return "basis_changed" if decided else "cancelled"


def _ending(ledger: Ledger, old: LedgerEntry, e: Settling, ordinal: int, decided: bool
            ) -> LedgerEntry:
    now = ledger.standings.get(old.agent_id)
    word = _KIND_WORDS[old.kind]
    is_amount = old.kind in AMOUNT_KINDS
    status = _end_status(old, decided)
    verb = "no longer grants this" if is_amount else "no longer calls for this"
    # A decided review is history a person made: it keeps its decision, to be looked at again.
    after = ("; the decision stands, marked for a person to look at again"
             if status == "basis_changed" else "")
    return LedgerEntry(
        id=f"{old.id}:{status}-p{e.publication}",
        team_id=old.team_id, period=old.period, agent_id=old.agent_id, kind=old.kind,
        entry={"reversed": "reversal", "cancelled": "cancellation",
               "basis_changed": "basis_change"}[status],
        publication=e.publication,
        ordinal=ordinal, amount=-old.amount if is_amount and old.amount is not None else None,
        currency=old.currency if is_amount else None,
        reason=(f"{_by(e)} {verb} {word} (from publication {old.publication}):"
                f" now {_now_standing(ledger, old.agent_id)}{after}"),
        rank=now.rank if now else None, places=now.places if now else None,
        reverses=old.id, created_at=_settled_at(e),
    )


def _grant(ledger: Ledger, d: ResultDecision, e: Settling, ordinal: int) -> LedgerEntry:
    reason = d.reason
    if isinstance(e, ConsequencesRevised):
        reason += f" (opened by revision {e.publication}, after {e.cause()})"
    return LedgerEntry(
        id=entry_id(ledger.team_id, ledger.period, d.agent_id, d.kind, e.publication),
        team_id=ledger.team_id, period=ledger.period, agent_id=d.agent_id, kind=d.kind,
        entry="grant", publication=e.publication, ordinal=ordinal, amount=d.amount,
        currency=d.currency, due_at=d.due_at, reason=reason, rank=d.rank, places=d.places,
        months=d.months, created_at=_settled_at(e),
    )


def settle(ledger: Ledger, e: Settling, decided: Set[str] = frozenset()
           ) -> tuple[Ledger, Settlement]:
    """Apply a publication or revision: end the grants it no longer holds, grant the new ones.

    ``decided``: ids of review grants a person has decided; one no longer called for keeps
    its decision and is marked ``basis_changed`` instead of cancelled.
    """
    decisions = {(d.kind, d.agent_id): d for d in e.decisions}
    active = dict(ledger.active)
    ended = dict(ledger.ended)
    endings = dict(ledger.endings)
    entries: list[LedgerEntry] = []
    closing: list[tuple[str, EndStatus]] = []
    for key, old in sorted(ledger.active.items()):
        if _holds(old, decisions.get((old.kind, old.agent_id))):
            continue
        ending = _ending(ledger, old, e, len(entries), old.id in decided)
        entries.append(ending)
        closing.append((old.id, _end_status(old, old.id in decided)))
        ended[old.id] = active.pop(key)
        endings[old.id] = ending
    for d in e.decisions:
        key = f"{d.kind}:{d.agent_id}"
        if key in active:
            continue  # still held: the grant of an earlier publication stays in force
        grant = _grant(ledger, d, e, len(entries))
        entries.append(grant)
        active[key] = grant
    state = ledger.model_copy(update={"publication": e.publication, "active": active,
                                      "ended": ended, "endings": endings})
    return state, Settlement(entries=tuple(entries), ended=tuple(closing))


def evolve_ledger(state: Ledger | None, e: DomainEvent) -> Ledger | None:
    """Apply one cycle event to the month's ledger."""
    if isinstance(e, CycleOpened):
        return Ledger(team_id=e.team_id, period=e.period)
    if state is None:
        return None
    if isinstance(e, CycleClosed):
        standings = {r.agent_id: Standing(rank=r.rank, places=r.places) for r in e.results}
        ranked = sum(1 for r in e.results if r.rank is not None)
        return state.model_copy(update={"standings": standings, "ranked": ranked})
    if isinstance(e, CyclePublished | ConsequencesRevised):
        return settle(state, e)[0]
    return state


def fold_ledger(state: Ledger | None, events: Sequence[DomainEvent]) -> Ledger | None:
    """Apply a cycle stream's events to the ledger."""
    for e in events:
        state = evolve_ledger(state, e)
    return state


def _obligation(ledger: Ledger | None, kind: ResultKind, agent_id: str) -> LedgerEntry:
    """Return the obligation in force, or raise saying why there is none."""
    word = _KIND_WORDS[kind]
    if ledger is None:
        raise NotFound("no such cycle")
    where = f"{ledger.team_id}/{ledger.period}"
    if ledger.publication == 0:
        raise Conflict("%(where)s has not been published; a %(word)s follows a publication",
                       values={"where": where, "word": word})
    found = ledger.obligation(kind, agent_id)
    if found is not None:
        return found
    cancelled = ledger.ever(kind, agent_id)
    if cancelled is not None:
        ending = ledger.endings.get(cancelled.id)
        # A decided review that ended keeps its decision: it "no longer stands", not cancelled.
        verb = (Text("no longer stands since a later publication")
                if kind == "reassignment_review" else Text("was cancelled by a later publication"))
        values = {"word": word, "agent": agent_id, "where": where,
                  "publication": cancelled.publication, "verb": verb}
        if ending is None:
            raise Conflict("the %(word)s of agent %(agent)s in %(where)s (publication"
                           " %(publication)s) %(verb)s", values=values, cancelled=cancelled.id)
        raise Conflict("the %(word)s of agent %(agent)s in %(where)s (publication"
                       " %(publication)s) %(verb)s: %(reason)s",
                       values={**values, "reason": ending.reason}, cancelled=cancelled.id)
    if kind == "reassignment_review":
        raise NotFound("no reassignment review of agent %(agent)s in %(where)s",
                       values={"agent": agent_id, "where": where})
    raise Conflict("publication %(publication)s of %(where)s decided no %(word)s for agent"
                   " %(agent)s", values={"publication": ledger.publication, "where": where,
                                         "word": word, "agent": agent_id})


# --- improvement plans ----------------------------------------------------------------------


class PlanAction(Frozen):
    """One action of an improvement plan, with the date it is due."""

    action: str
    due_date: date


@event
class PlanSubmitted(DomainEvent):
    """The agent submitted (or resubmitted) an improvement plan."""

    type: Literal["PlanSubmitted"] = "PlanSubmitted"
    team_id: str
    period: str
    agent_id: str
    publication: int
    submission: int
    root_causes: str
    actions: tuple[PlanAction, ...]
    due_at: datetime
    submitted_at: datetime
    late: bool


@event
class PlanReviewed(DomainEvent):
    """A manager approved or rejected the latest submission of a plan."""

    type: Literal["PlanReviewed"] = "PlanReviewed"
    team_id: str
    period: str
    agent_id: str
    publication: int
    submission: int
    decision: PlanDecision
    comment: str
    reviewer_id: str
    reviewed_at: datetime


@event
class PlanOverdue(DomainEvent):
    """A plan's deadline passed without a submission (recorded for notifications and BI)."""

    type: Literal["PlanOverdue"] = "PlanOverdue"
    team_id: str
    period: str
    agent_id: str
    publication: int
    due_at: datetime
    detected_at: datetime


@dataclass(frozen=True)
class PlanRecord:
    """What happened to the plan answering one obligation."""

    publication: int
    submissions: tuple[PlanSubmitted, ...] = ()
    reviews: tuple[PlanReviewed, ...] = ()
    overdue: PlanOverdue | None = None

    @property
    def latest(self) -> PlanSubmitted | None:
        """Return the latest submission, if any."""
        return self.submissions[-1] if self.submissions else None

    @property
    def decision(self) -> PlanReviewed | None:
        """Return the review of the latest submission, if it has one."""
        latest = self.latest
        if latest is None:
            return None
        return next((r for r in reversed(self.reviews) if r.submission == latest.submission),
                    None)


@dataclass(frozen=True)
class Plan:
    """An agent's improvement plans for a team's month, one record per obligation."""

    records: Mapping[int, PlanRecord] = field(default_factory=dict)

    def record(self, publication: int) -> PlanRecord:
        """Return the record of the obligation opened by a publication (empty if none yet)."""
        return self.records.get(publication, PlanRecord(publication))


def evolve_plan(state: Plan | None, e: DomainEvent) -> Plan | None:
    """Apply one plan event."""
    plan = state or Plan()
    if not isinstance(e, PlanSubmitted | PlanReviewed | PlanOverdue):
        return state
    record = plan.record(e.publication)
    if isinstance(e, PlanSubmitted):
        record = replace(record, submissions=(*record.submissions, e))
    elif isinstance(e, PlanReviewed):
        record = replace(record, reviews=(*record.reviews, e))
    else:
        record = replace(record, overdue=e)
    return Plan({**plan.records, e.publication: record})


def plan_problems(root_causes: str, actions: Sequence[PlanAction]) -> list[FieldError]:
    """List what is missing from a plan's content."""
    problems = []
    if not root_causes.strip():
        problems.append(FieldError("root_causes", "must not be blank: say why the month went so"))
    if not actions:
        problems.append(FieldError("actions", "list at least one action with its due date"))
    problems.extend(
        FieldError(f"actions.{i}.action", "must not be blank")
        for i, a in enumerate(actions)
        if not a.action.strip()
    )
    return problems


def decide_submit_plan(
    state: Plan | None,
    ledger: Ledger | None,
    agent_id: str,
    *,
    root_causes: str,
    actions: Sequence[PlanAction],
    now: datetime,
) -> list[DomainEvent]:
    """Accept a plan while one is owed and not yet approved; after the deadline it is late."""
    problems = plan_problems(root_causes, actions)
    if problems:
        raise DomainError("invalid improvement plan", problems)
    owed = _obligation(ledger, "improvement_plan", agent_id)
    assert owed.due_at is not None
    record = (state or Plan()).record(owed.publication)
    decision = record.decision
    if decision is not None and decision.decision == "approved":
        raise Conflict("the plan was approved on %(when)s; there is nothing to resubmit",
                       values={"when": decision.reviewed_at.isoformat()})
    return [PlanSubmitted(
        team_id=owed.team_id, period=owed.period, agent_id=agent_id,
        publication=owed.publication, submission=len(record.submissions) + 1,
        root_causes=root_causes.strip(),
        actions=tuple(PlanAction(action=a.action.strip(), due_date=a.due_date) for a in actions),
        due_at=owed.due_at, submitted_at=now, late=now > owed.due_at,
    )]


def decide_review_plan(
    state: Plan | None,
    ledger: Ledger | None,
    agent_id: str,
    *,
    decision: PlanDecision,
    comment: str,
    reviewer_id: str,
    now: datetime,
    manager_ids: Sequence[str] = (),
) -> list[DomainEvent]:
    """Approve or reject the latest submission, once; a rejection must say why.

    Nobody reviews their own plan (403 conflict-of-interest; ``manager_ids`` name who may).
    """
    owed = _obligation(ledger, "improvement_plan", agent_id)
    ensure_not_own_case(reviewer_id, agent_id, Text("review the improvement plan of"),
                        team_id=owed.team_id, manager_ids=manager_ids)
    record = (state or Plan()).record(owed.publication)
    latest = record.latest
    if latest is None:
        raise Conflict("agent %(agent)s has not submitted the plan yet; nothing to review",
                       values={"agent": agent_id})
    reviewed = record.decision
    if reviewed is not None:
        done = {"submission": latest.submission, "decision": Text(reviewed.decision)}
        if reviewed.decision == "rejected":
            raise Conflict("submission %(submission)s was already %(decision)s; the agent may"
                           " resubmit", values=done)
        raise Conflict("submission %(submission)s was already %(decision)s", values=done)
    if decision == "rejected" and not comment.strip():
        wrong = FieldError("comment", "required when the decision is rejected")
        raise DomainError("a rejection must say why", [wrong])
    return [PlanReviewed(
        team_id=owed.team_id, period=owed.period, agent_id=agent_id,
        publication=owed.publication, submission=latest.submission, decision=decision,
        comment=comment.strip(), reviewer_id=reviewer_id, reviewed_at=now,
    )]


def decide_plan_overdue(
    state: Plan | None, ledger: Ledger | None, agent_id: str, now: datetime
) -> list[DomainEvent]:
    """Record, once, that a plan in force passed its deadline with nothing submitted."""
    owed = ledger.obligation("improvement_plan", agent_id) if ledger is not None else None
    if owed is None or owed.due_at is None or now <= owed.due_at:
        return []
    record = (state or Plan()).record(owed.publication)
    if record.submissions or record.overdue is not None:
        return []
    return [PlanOverdue(team_id=owed.team_id, period=owed.period, agent_id=agent_id,
                        publication=owed.publication, due_at=owed.due_at, detected_at=now)]


# --- reassignment reviews -------------------------------------------------------------------


@event
class ReassignmentReviewDecided(DomainEvent):
    """A manager decided a reassignment review: reassign the agent or retain them in post."""

    type: Literal["ReassignmentReviewDecided"] = "ReassignmentReviewDecided"
    review_id: str
    team_id: str
    period: str
    agent_id: str
    publication: int
    decision: ReviewDecision
    note: str
    decided_by: str
    decided_at: datetime


@dataclass(frozen=True)
class Review:
    """An agent's reassignment review decisions for a team's month, by obligation."""

    decisions: Mapping[int, ReassignmentReviewDecided] = field(default_factory=dict)


def evolve_review(state: Review | None, e: DomainEvent) -> Review | None:
    """Apply one review event."""
    if not isinstance(e, ReassignmentReviewDecided):
        return state
    decisions = (state or Review()).decisions
    return Review({**decisions, e.publication: e})


def decide_reassignment(
    state: Review | None,
    ledger: Ledger | None,
    agent_id: str,
    *,
    decision: ReviewDecision,
    note: str,
    decided_by: str,
    now: datetime,
    manager_ids: Sequence[str] = (),
) -> list[DomainEvent]:
    """Decide an open review once, with a note; deciding again is a conflict.

    Nobody decides their own review (403 conflict-of-interest; ``manager_ids`` name who may).
    """
    owed = _obligation(ledger, "reassignment_review", agent_id)
    ensure_not_own_case(decided_by, agent_id, Text("decide the reassignment review of"),
                        team_id=owed.team_id, manager_ids=manager_ids)
    earlier = (state or Review()).decisions.get(owed.publication)
    if earlier is not None:
        raise Conflict(
            "the review was already decided: %(decision)s by %(by)s on %(when)s",
            values={"decision": Text(earlier.decision), "by": earlier.decided_by,
                    "when": earlier.decided_at.isoformat()}, decision=earlier.decision,
        )
    if not note.strip():
        wrong = FieldError("note", "must not be blank: record why")
        raise DomainError("a decision needs a note", [wrong])
    return [ReassignmentReviewDecided(
        review_id=review_id(owed.team_id, owed.period, agent_id), team_id=owed.team_id,
        period=owed.period, agent_id=agent_id, publication=owed.publication, decision=decision,
        note=note.strip(), decided_by=decided_by, decided_at=now,
    )]
