"""An agent's own result for a month: withheld, released, appealed (``domain.md``, "Feedback
before results; appeals").

The seed's stage 5 puts the conversation before the result. Under ``results.release``
``after_interview`` (version 2) an agent's rank, composite, other raters' scores and sanctions
reach them only once released: when their feedback interview is recorded as held, when a
manager releases them, or automatically ``release_days`` after the first publication. Under
``on_publication`` (version 1) the publication releases everyone and no per-agent event is
recorded: the release time is the first publication's.

Each agent's month has one stream (``result:{team}:{period}:{agent}``) holding its release and
its appeal, so a manager's release, an interview record and the scheduler deciding at the same
moment queue on one stream and exactly one ``ResultReleased`` is recorded; the appeal window is
judged against the release on the same stream.

While a month is open, and until their release, an agent sees their own live KPIs, targets and
self-evaluation only (``withhold``): the self-evaluation is given without anchoring on the
manager's, and a provisional rank gives nothing away. This holds for every scheme version: it
is a defect fix, not a policy.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from service.domain.conflicts import ensure_not_own_case
from service.domain.errors import Conflict, DomainError, FieldError, Forbidden, NotFound, Text
from service.domain.events import DomainEvent, event
from service.domain.scheme import ResultsPolicy

ReleasedBy = Literal["interview", "manager", "automatic"]
AppealDecision = Literal["uphold", "amend"]


def result_stream(team_id: str, period: str, agent_id: str) -> str:
    """Return the stream id of an agent's result (release and appeal) for a team's month."""
    return f"result:{team_id}:{period}:{agent_id}"


def appeal_id(team_id: str, period: str, agent_id: str) -> str:
    """Return the id of an agent's appeal of a team's month (one appeal per agent-month)."""
    return f"{team_id}:{period}:{agent_id}"


# --- events -------------------------------------------------------------------------------


@event
class ResultReleased(DomainEvent):
    """An agent's own result for the month reached them (``by`` says what released it)."""

    type: Literal["ResultReleased"] = "ResultReleased"
    team_id: str
    period: str
    agent_id: str
    by: ReleasedBy
    #: Who released it: the manager or the interview's recorder; None when automatic.
    released_by: str | None = None
    released_at: datetime
    #: The last moment an appeal is accepted (``appeal_days`` after the release).
    appeal_until: datetime
    #: When the agent's improvement plan (if the month gave them one) is due.
    plan_due_at: datetime
    #: Fair months: the agent was not ranked, and why (they still see their month).
    not_ranked: str | None = None


@event
class AppealFiled(DomainEvent):
    """The agent appealed their month, with a reason."""

    type: Literal["AppealFiled"] = "AppealFiled"
    appeal_id: str
    team_id: str
    period: str
    agent_id: str
    reason: str
    filed_at: datetime
    #: The window the appeal was filed in (its end), for the record.
    appeal_until: datetime


@event
class AppealDecided(DomainEvent):
    """A manager of the team (not the appellant) or an admin decided the appeal."""

    type: Literal["AppealDecided"] = "AppealDecided"
    appeal_id: str
    team_id: str
    period: str
    agent_id: str
    decision: AppealDecision
    note: str | None = None
    decided_by: str
    decided_at: datetime


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentResult:
    """What the agent's result stream says."""

    released: ResultReleased | None = None
    appeal: AppealFiled | None = None
    decision: AppealDecided | None = None


def evolve(state: AgentResult | None, e: DomainEvent) -> AgentResult | None:
    """Apply one result event."""
    current = state or AgentResult()
    if isinstance(e, ResultReleased):
        return replace(current, released=e)
    if isinstance(e, AppealFiled):
        return replace(current, appeal=e)
    if isinstance(e, AppealDecided):
        return replace(current, decision=e)
    return state


# --- rules --------------------------------------------------------------------------------


def release_due_at(first_published_at: datetime, policy: ResultsPolicy) -> datetime | None:
    """Return the latest release of a month's results (None: released at publication)."""
    if policy.release != "after_interview":
        return None
    return first_published_at + timedelta(days=policy.release_days)


def appeal_until(released_at: datetime, policy: ResultsPolicy) -> datetime:
    """Return the last moment of an agent's appeal window (inclusive)."""
    return released_at + timedelta(days=policy.appeal_days)


def plan_due_after(released_at: datetime, policy: ResultsPolicy) -> datetime:
    """Return when an improvement plan is due: ``plan_deadline_days`` after the release."""
    return released_at + timedelta(days=policy.plan_deadline_days)


def plan_due(decided_due_at: datetime | None, granted_at: datetime,
             released: ResultReleased | None) -> datetime | None:
    """Return when an improvement plan is due, given the agent's release.

    A plan granted by a publication before the release is due ``plan_deadline_days`` after the
    release (``plan_due_at`` on the release). One granted by a later publication (a
    correction) keeps the due date that publication decided. Without a release event (not
    released yet, or released at publication) the decided date stands.
    """
    if released is None or decided_due_at is None or granted_at > released.released_at:
        return decided_due_at
    return released.plan_due_at


def final_at(appeal_until: datetime | None, appealed: bool, decided_at: datetime | None
             ) -> datetime | None:
    """Return when an agent's reward and deduction entries of a month become final.

    Once their appeal window passed unused (``appeal_until``), or when their appeal was
    decided; never while an appeal is open or before the result was released (None).
    Readers compare the stored moment with their clock, so nothing needs recording when the
    window passes.
    """
    if decided_at is not None:
        return decided_at
    if appealed:
        return None
    return appeal_until


@dataclass(frozen=True)
class Month:
    """What the release and appeal rules need of the cycle."""

    team_id: str
    period: str
    status: str
    policy: ResultsPolicy
    #: The first publication's time (the release of everyone under on_publication).
    first_published_at: datetime | None
    #: agent -> None when ranked, or why they are not ranked; absent: not in the results.
    results: Mapping[str, str | None]


def released_at(state: AgentResult | None, month: Month) -> datetime | None:
    """Return when the agent's result was released to them, or None while withheld."""
    if month.policy.release != "after_interview":
        return month.first_published_at
    if state is not None and state.released is not None:
        return state.released.released_at
    return None


def is_released(state: AgentResult | None, month: Month) -> bool:
    """Tell whether the agent may see their own result of the month."""
    return released_at(state, month) is not None


def decide_release(
    state: AgentResult | None, month: Month, agent_id: str, *, by: ReleasedBy,
    released_by: str | None, now: datetime,
) -> list[DomainEvent]:
    """Release an agent's result once; a second release (by anyone) records nothing.

    Only a published month's results are released; an automatic release only once due.
    Under ``on_publication`` the publication released everyone: nothing to record.
    """
    if agent_id not in month.results:
        raise NotFound("agent %(agent)s has no result in %(team)s/%(period)s",
                       values={"agent": agent_id, "team": month.team_id, "period": month.period})
    if month.status != "published" or month.first_published_at is None:
        raise Conflict("%(team)s/%(period)s is %(status)s; only a published month's results are"
                       " released", values={"team": month.team_id, "period": month.period,
                                            "status": Text(month.status)},
                       cycle_status=month.status)
    if is_released(state, month):
        return []
    due = release_due_at(month.first_published_at, month.policy)
    if by == "automatic" and (due is None or now < due):
        return []
    return [ResultReleased(
        team_id=month.team_id, period=month.period, agent_id=agent_id, by=by,
        released_by=released_by, released_at=now, appeal_until=appeal_until(now, month.policy),
        plan_due_at=plan_due_after(now, month.policy), not_ranked=month.results[agent_id],
    )]


def decide_appeal(
    state: AgentResult | None, month: Month, agent_id: str, *, by: str, reason: str | None,
    now: datetime,
) -> list[DomainEvent]:
    """File the agent's appeal: by the agent, once, within ``appeal_days`` of their release."""
    if by != agent_id:
        raise Forbidden("only the agent may appeal their own month")
    if not (reason and reason.strip()):
        wrong = FieldError("reason", "required: say what you contest and why")
        raise DomainError("an appeal needs a reason", [wrong])
    where = {"agent": agent_id, "team": month.team_id, "period": month.period}
    if agent_id not in month.results:
        raise NotFound("agent %(agent)s has no result in %(team)s/%(period)s", values=where)
    if state is not None and state.appeal is not None:
        raise Conflict("agent %(agent)s already appealed %(team)s/%(period)s on %(filed)s; a"
                       " month is appealed once",
                       values={**where, "filed": state.appeal.filed_at.isoformat()},
                       appeal_id=state.appeal.appeal_id)
    released = released_at(state, month)
    if released is None or month.first_published_at is None:
        raise Conflict("the result of %(team)s/%(period)s has not been released to %(agent)s"
                       " yet; an appeal follows the release", values=where)
    until = appeal_until(released, month.policy)
    if now > until:
        raise Conflict("the appeal window of %(team)s/%(period)s closed at %(until)s (%(days)s"
                       " days after the release)",
                       values={**where, "until": until.isoformat(),
                               "days": month.policy.appeal_days},
                       window_closed_at=until.isoformat())
    return [AppealFiled(
        appeal_id=appeal_id(month.team_id, month.period, agent_id), team_id=month.team_id,
        period=month.period, agent_id=agent_id, reason=reason.strip(), filed_at=now,
        appeal_until=until,
    )]


def decide_appeal_decision(
    state: AgentResult | None, *, decision: AppealDecision, note: str | None, decided_by: str,
    manager_ids: Collection[str], now: datetime,
) -> list[DomainEvent]:
    """Decide an appeal once: ``uphold`` with a note, or ``amend`` (the month is reopened)."""
    if state is None or state.appeal is None:
        raise NotFound("no such appeal")
    appeal = state.appeal
    ensure_not_own_case(decided_by, appeal.agent_id, Text("decide the appeal of"),
                        team_id=appeal.team_id, manager_ids=manager_ids)
    if state.decision is not None:
        d = state.decision
        raise Conflict("the appeal was already decided (%(decision)s) by %(by)s on %(when)s",
                       values={"decision": Text(d.decision), "by": d.decided_by,
                               "when": d.decided_at.isoformat()}, decision=d.decision)
    if decision == "uphold" and not (note and note.strip()):
        wrong = FieldError("note", "required: tell the agent why the result stands")
        raise DomainError("upholding an appeal needs a note", [wrong])
    return [AppealDecided(
        appeal_id=appeal.appeal_id, team_id=appeal.team_id, period=appeal.period,
        agent_id=appeal.agent_id, decision=decision,
        note=note.strip() if note and note.strip() else None, decided_by=decided_by,
        decided_at=now,
    )]


def correction_reason(appeal: AppealFiled, note: str | None) -> str:
    """Return the reason of the reopening an amended appeal makes, naming the appeal."""
    why = f": {note.strip()}" if note and note.strip() else ""
    return f"appeal {appeal.appeal_id} amended{why}"


# --- what the agent sees ------------------------------------------------------------------

#: Scorecard fields that make up the result (blanked while it is withheld from the agent).
RESULT_FIELDS = ("composite", "rank", "places")


def withhold(document: dict[str, Any], why: str) -> dict[str, Any]:
    """Return an agent's own scorecard without their result or other raters' scores.

    Kept: the live (or frozen) KPI values, their targets and floors, measured attainment, and
    the agent's own self-evaluation. Removed: rank, composite, every other rater's evaluation
    and component, the manager-rated KPIs' scores and the work-performance score (the
    manager's part).
    """
    kpis = {
        name: ({**kpi, "value": None, "attainment": None} if kpi.get("kind") == "rated" else kpi)
        for name, kpi in document.get("kpis", {}).items()
    }
    return {
        **document, **{f: None for f in RESULT_FIELDS}, "tied": False, "kpis": kpis,
        "evaluations": [e for e in document.get("evaluations", [])
                        if e.get("rater_role") == "self"],
        "components": {r: c for r, c in document.get("components", {}).items() if r == "self"},
        "work_performance": None,
        "notes": [why],
        "withheld": True,
    }
