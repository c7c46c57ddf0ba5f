"""Feedback communication (seed, stage 5): classify, schedule, outline, hold and record.

After a month is published, every agent of its frozen results gets a formal conversation with a
manager before the next cycle. The seed's steps, as data:

1. *Classify* the evaluatees on two axes: the result level (``band``: top, middle or bottom of
   the published ranking) and a second axis, the trend against the previous published month of
   the same team (``improving``, ``steady``, ``declining``). The nine cells have names and a
   suggested focus for the conversation (``CATEGORIES``).
2. *Plan* the interview: when, where, who (``InterviewScheduled``). No two interviews of one
   manager may overlap: each manager has a calendar stream (``calendar:{manager_id}``) that is
   written in the same transaction as the interview, so two schedulings cannot both pass.
3. *Outline* it: the overall objective, sub-objectives and the ordered questions
   (``InterviewOutlinePrepared``).
4. *Record* it once held: the four interpretation questions of the seed (what should the person
   do; what did they do; why this result; what to improve), the agreed actions and the next
   cycle's plan (``InterviewRecorded``), then the agent acknowledges the record
   (``InterviewAcknowledged``).

Bands use the rank's position in the ranking, not a fixed score: percentile = (n - rank) /
(n - 1) over the n ranked agents; above 2/3 is ``top``, below 1/3 is ``bottom``. In a ranking
without a first and a last (a team of one, everyone tied) everyone is ``middle``. The trend
compares composites: a change of ``TREND_POINTS`` (5) points or more either way is improving or
declining; without a published previous month the trend is ``steady`` and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from service.domain.cycle import FrozenResult
from service.domain.errors import Conflict, DomainError, FieldError, Forbidden, NotFound
from service.domain.events import DomainEvent, event
from service.domain.frozen import Frozen

Band = Literal["top", "middle", "bottom"]
Trend = Literal["improving", "steady", "declining"]
TREND_POINTS = 5.0
#: An interview is a conversation, not a day out: longer bookings are a typing mistake.
MAX_INTERVIEW = timedelta(hours=8)
#: Interviews are due this long after publication; monitoring flags them afterwards.
INTERVIEW_DUE = timedelta(days=7)
#: Times outside these are typing mistakes (and beyond what the database stores as a moment).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

#: (band, trend) -> (category, the conversation's focus).
CATEGORIES: dict[tuple[str, str], tuple[str, str]] = {
    ("top", "improving"): ("rising_star", "recognise the progress; agree stretch goals"),
    ("top", "steady"): ("star", "recognise consistency; discuss growth and sharing practice"),
    ("top", "declining"): ("slipping_star", "find what changed before it costs the lead"),
    ("middle", "improving"): ("climber", "reinforce what worked; set the next step up"),
    ("middle", "steady"): ("core", "pick one or two KPIs to lift; remove obstacles"),
    ("middle", "declining"): ("drifting", "find the cause early; agree corrective actions"),
    ("bottom", "improving"): ("recovering", "acknowledge the recovery; keep the plan going"),
    ("bottom", "steady"): ("struggling", "analyse root causes; agree a concrete improvement"
                                         " plan and support"),
    ("bottom", "declining"): ("at_risk", "urgent: root causes, a close-follow-up plan, and"
                                         " the consequences made clear"),
}


def band_of(rank: int, ranked: int, has_first_and_last: bool) -> Band:
    """Return the result band of a rank among ``ranked`` agents."""
    if not has_first_and_last or ranked < 2:
        return "middle"
    percentile = (ranked - rank) / (ranked - 1)
    if percentile > 2 / 3:
        return "top"
    if percentile < 1 / 3:
        return "bottom"
    return "middle"


def trend_of(score: float, previous: float | None) -> Trend:
    """Return the trend of a composite against the previous month's."""
    if previous is None:
        return "steady"
    delta = score - previous
    if delta >= TREND_POINTS:
        return "improving"
    if delta <= -TREND_POINTS:
        return "declining"
    return "steady"


def classify(
    results: Sequence[FrozenResult], previous: Mapping[str, float]
) -> list[dict[str, object]]:
    """Classify each agent of a month's frozen results; unranked agents have no category."""
    ranked = [r for r in results if r.rank is not None and r.score.composite is not None]
    has_ends = len({r.rank for r in ranked}) > 1
    items: list[dict[str, object]] = []
    for r in results:
        before = previous.get(r.agent_id)
        if r.rank is None or r.score.composite is None:
            items.append({"agent_id": r.agent_id, "name": r.name, "rank": None, "score": None,
                          "band": None, "trend": None, "previous_score": before, "delta": None,
                          "category": None, "focus": "not ranked: "
                          + ", ".join(r.score.missing_roles or ("no composite",))})
            continue
        score = r.score.composite
        band = band_of(r.rank, len(ranked), has_ends)
        trend = trend_of(score, before)
        category, focus = CATEGORIES[(band, trend)]
        items.append({
            "agent_id": r.agent_id, "name": r.name, "rank": r.rank, "score": score,
            "band": band, "trend": trend, "previous_score": before,
            "delta": round(score - before, 4) if before is not None else None,
            "category": category,
            "focus": focus if before is not None
            else f"{focus} (no previous published month: trend taken as steady)",
        })
    return items


# --- interviews -----------------------------------------------------------------------------


def interview_id(team_id: str, period: str, agent_id: str) -> str:
    """Return the id of an agent's feedback interview for a team's month."""
    return f"{team_id}:{period}:{agent_id}"


def interview_stream(team_id: str, period: str, agent_id: str) -> str:
    """Return the stream id of an agent's feedback interview for a team's month."""
    return f"interview:{team_id}:{period}:{agent_id}"


def calendar_stream(manager_id: str) -> str:
    """Return the stream id of a manager's interview calendar."""
    return f"calendar:{manager_id}"




class AgreedAction(Frozen):
    """An action agreed in the interview, with an optional due date."""

    action: str
    due_date: date | None = None


@event
class InterviewScheduled(DomainEvent):
    """A manager scheduled (or rescheduled) an agent's feedback interview."""

    type: Literal["InterviewScheduled"] = "InterviewScheduled"
    team_id: str
    period: str
    agent_id: str
    manager_id: str
    starts_at: datetime
    ends_at: datetime
    place: str
    participants: tuple[str, ...]
    revision: int
    scheduled_at: datetime


@event
class InterviewOutlinePrepared(DomainEvent):
    """The interview's outline: the overall objective, sub-objectives, ordered questions."""

    type: Literal["InterviewOutlinePrepared"] = "InterviewOutlinePrepared"
    team_id: str
    period: str
    agent_id: str
    objective: str
    sub_objectives: tuple[str, ...] = ()
    questions: tuple[str, ...]
    prepared_by: str
    prepared_at: datetime


@event
class InterviewRecorded(DomainEvent):
    """What the interview established: the four questions, actions and next cycle's plan."""

    type: Literal["InterviewRecorded"] = "InterviewRecorded"
    team_id: str
    period: str
    agent_id: str
    expectations: str
    achievements: str
    reasons: str
    improvements: str
    agreed_actions: tuple[AgreedAction, ...]
    next_cycle_plan: str
    notes: str | None = None
    revision: int
    recorded_by: str
    recorded_at: datetime


@event
class InterviewAcknowledged(DomainEvent):
    """The agent acknowledged the interview's record."""

    type: Literal["InterviewAcknowledged"] = "InterviewAcknowledged"
    team_id: str
    period: str
    agent_id: str
    comment: str | None = None
    acknowledged_at: datetime


@event
class InterviewBooked(DomainEvent):
    """A slot of a manager's calendar was taken by an interview."""

    type: Literal["InterviewBooked"] = "InterviewBooked"
    manager_id: str
    interview_id: str
    starts_at: datetime
    ends_at: datetime


@event
class InterviewReleased(DomainEvent):
    """An interview left a manager's calendar (rescheduled with another manager)."""

    type: Literal["InterviewReleased"] = "InterviewReleased"
    manager_id: str
    interview_id: str


@dataclass(frozen=True)
class Interview:
    """An agent's feedback interview for a team's month."""

    schedule: InterviewScheduled | None = None
    outline: InterviewOutlinePrepared | None = None
    record: InterviewRecorded | None = None
    acknowledged: InterviewAcknowledged | None = None

    @property
    def status(self) -> str:
        """Return scheduled, recorded or acknowledged (unscheduled before any of it)."""
        if self.acknowledged is not None:
            return "acknowledged"
        if self.record is not None:
            return "recorded"
        return "scheduled" if self.schedule is not None else "unscheduled"


def evolve_interview(state: Interview | None, e: DomainEvent) -> Interview | None:
    """Apply one interview event."""
    current = state or Interview()
    if isinstance(e, InterviewScheduled):
        return replace(current, schedule=e)
    if isinstance(e, InterviewOutlinePrepared):
        return replace(current, outline=e)
    if isinstance(e, InterviewRecorded):
        return replace(current, record=e)
    if isinstance(e, InterviewAcknowledged):
        return replace(current, acknowledged=e)
    return state


@dataclass(frozen=True)
class Calendar:
    """A manager's booked interview slots."""

    slots: Mapping[str, InterviewBooked] = field(default_factory=dict)


def evolve_calendar(state: Calendar | None, e: DomainEvent) -> Calendar | None:
    """Apply one calendar event."""
    current = state or Calendar()
    if isinstance(e, InterviewBooked):
        return Calendar({**current.slots, e.interview_id: e})
    if isinstance(e, InterviewReleased):
        return Calendar({k: v for k, v in current.slots.items() if k != e.interview_id})
    return state


def clash(calendar: Calendar | None, interview: str, starts_at: datetime, ends_at: datetime
          ) -> InterviewBooked | None:
    """Return the earliest other booking that overlaps [starts_at, ends_at), if any."""
    overlapping = [
        slot for slot in (calendar or Calendar()).slots.values()
        if slot.interview_id != interview and slot.starts_at < ends_at
        and starts_at < slot.ends_at
    ]
    return min(overlapping, key=lambda s: (s.starts_at, s.interview_id), default=None)


@dataclass(frozen=True)
class Schedule:
    """A request to schedule an interview."""

    team_id: str
    period: str
    agent_id: str
    manager_id: str
    starts_at: datetime
    ends_at: datetime
    place: str
    participants: Sequence[str]


def require_published(cycle_status: str | None, team_id: str, period: str) -> None:
    """Refuse (409) feedback steps on a month that is not published (404 if none)."""
    if cycle_status is None:
        raise NotFound(f"team {team_id} has no cycle for {period}")
    if cycle_status != "published":
        raise Conflict(f"{team_id}/{period} is {cycle_status}; feedback interviews follow the"
                       " publication of the month", cycle_status=cycle_status)


def decide_schedule(
    interview: Interview | None,
    calendars: Mapping[str, Calendar | None],
    cmd: Schedule,
    *,
    cycle_status: str | None,
    evaluated: bool,
    now: datetime,
) -> dict[str, list[DomainEvent]]:
    """Schedule or move an interview; return the events per stream (interview, calendars).

    ``calendars`` holds the new manager's calendar and, when the interview moves from another
    manager, the old one's. ``evaluated``: the agent is in the month's published results.
    """
    require_published(cycle_status, cmd.team_id, cmd.period)
    if not evaluated:
        raise DomainError(f"agent {cmd.agent_id} is not in the published results of"
                          f" {cmd.team_id}/{cmd.period}",
                          [FieldError("agent_id", "not evaluated in this month")])
    problems = [FieldError(name, f"must be between {EARLIEST.date()} and {LATEST.date()}")
                for name, value in (("starts_at", cmd.starts_at), ("ends_at", cmd.ends_at))
                if not EARLIEST <= value < LATEST]
    length = cmd.ends_at - cmd.starts_at
    if not problems and length <= timedelta(0):
        problems.append(FieldError("ends_at", "must be after starts_at"))
    elif not problems and length > MAX_INTERVIEW:
        problems.append(FieldError("ends_at", "an interview lasts at most 8 hours"))
    if not cmd.place.strip():
        problems.append(FieldError("place", "must not be blank: a quiet place, agreed"))
    if problems:
        raise DomainError("invalid interview schedule", problems)
    current = interview or Interview()
    if current.record is not None:
        raise Conflict("the interview was already held and recorded; it cannot be moved")
    key = interview_id(cmd.team_id, cmd.period, cmd.agent_id)
    other = clash(calendars.get(cmd.manager_id), key, cmd.starts_at, cmd.ends_at)
    if other is not None:
        raise Conflict(
            f"manager {cmd.manager_id} already has interview {other.interview_id} from"
            f" {other.starts_at.isoformat()} to {other.ends_at.isoformat()}",
            clash={"interview_id": other.interview_id, "starts_at": other.starts_at.isoformat(),
                   "ends_at": other.ends_at.isoformat()},
        )
    participants = tuple(dict.fromkeys([cmd.manager_id, cmd.agent_id, *cmd.participants]))
    previous = current.schedule
    if previous is not None and (
        previous.manager_id, previous.starts_at, previous.ends_at, previous.place,
        previous.participants,
    ) == (cmd.manager_id, cmd.starts_at, cmd.ends_at, cmd.place.strip(), participants):
        return {}
    events: dict[str, list[DomainEvent]] = {
        interview_stream(cmd.team_id, cmd.period, cmd.agent_id): [InterviewScheduled(
            team_id=cmd.team_id, period=cmd.period, agent_id=cmd.agent_id,
            manager_id=cmd.manager_id, starts_at=cmd.starts_at, ends_at=cmd.ends_at,
            place=cmd.place.strip(), participants=participants,
            revision=(previous.revision + 1) if previous else 1, scheduled_at=now,
        )],
        calendar_stream(cmd.manager_id): [InterviewBooked(
            manager_id=cmd.manager_id, interview_id=key, starts_at=cmd.starts_at,
            ends_at=cmd.ends_at,
        )],
    }
    if previous is not None and previous.manager_id != cmd.manager_id:
        events[calendar_stream(previous.manager_id)] = [
            InterviewReleased(manager_id=previous.manager_id, interview_id=key)
        ]
    return events


def _scheduled(interview: Interview | None, agent_id: str) -> Interview:
    if interview is None or interview.schedule is None:
        raise Conflict(f"no interview of agent {agent_id} is scheduled; schedule it first")
    return interview


def decide_outline(
    interview: Interview | None,
    *,
    objective: str,
    sub_objectives: Sequence[str],
    questions: Sequence[str],
    prepared_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """Prepare (or revise) the interview outline before it is recorded."""
    problems = []
    if not objective.strip():
        problems.append(FieldError("objective", "must not be blank: what the talk is for"))
    if not questions:
        problems.append(FieldError("questions", "list the questions, in the order to ask them"))
    problems.extend(FieldError(f"questions[{i}]", "must not be blank")
                    for i, q in enumerate(questions) if not q.strip())
    problems.extend(FieldError(f"sub_objectives[{i}]", "must not be blank")
                    for i, q in enumerate(sub_objectives) if not q.strip())
    if problems:
        raise DomainError("invalid interview outline", problems)
    current = _scheduled(interview, "the agent")
    assert current.schedule is not None
    if current.record is not None:
        raise Conflict("the interview was already recorded; its outline is history now")
    s = current.schedule
    return [InterviewOutlinePrepared(
        team_id=s.team_id, period=s.period, agent_id=s.agent_id, objective=objective.strip(),
        sub_objectives=tuple(x.strip() for x in sub_objectives),
        questions=tuple(q.strip() for q in questions), prepared_by=prepared_by,
        prepared_at=now,
    )]


@dataclass(frozen=True)
class Record:
    """What a held interview established."""

    expectations: str
    achievements: str
    reasons: str
    improvements: str
    agreed_actions: Sequence[AgreedAction]
    next_cycle_plan: str
    notes: str | None = None


def record_problems(r: Record) -> list[FieldError]:
    """List what is missing from an interview record: every seed question is required."""
    problems = [
        FieldError(name, f"must not be blank: {question}")
        for name, value, question in (
            ("expectations", r.expectations, "what should the person do"),
            ("achievements", r.achievements, "what did they do"),
            ("reasons", r.reasons, "why this result"),
            ("improvements", r.improvements, "what to improve"),
            ("next_cycle_plan", r.next_cycle_plan, "the plan agreed for the next cycle"),
        )
        if not value.strip()
    ]
    if not r.agreed_actions:
        problems.append(FieldError("agreed_actions", "record at least one agreed action"))
    problems.extend(FieldError(f"agreed_actions[{i}].action", "must not be blank")
                    for i, a in enumerate(r.agreed_actions) if not a.action.strip())
    return problems


def decide_record(
    interview: Interview | None, r: Record, *, recorded_by: str, now: datetime
) -> list[DomainEvent]:
    """Record the held interview; a revision is allowed until the agent acknowledges it."""
    problems = record_problems(r)
    if problems:
        raise DomainError("invalid interview record", problems)
    current = _scheduled(interview, "the agent")
    s = current.schedule
    assert s is not None
    if now < s.starts_at:
        raise Conflict(f"the interview starts at {s.starts_at.isoformat()}; record it once held")
    if current.acknowledged is not None:
        raise Conflict("the agent acknowledged the record; it can no longer change")
    previous = current.record
    return [InterviewRecorded(
        team_id=s.team_id, period=s.period, agent_id=s.agent_id,
        expectations=r.expectations.strip(), achievements=r.achievements.strip(),
        reasons=r.reasons.strip(), improvements=r.improvements.strip(),
        agreed_actions=tuple(AgreedAction(action=a.action.strip(), due_date=a.due_date)
                             for a in r.agreed_actions),
        next_cycle_plan=r.next_cycle_plan.strip(),
        notes=r.notes.strip() if r.notes and r.notes.strip() else None,
        revision=(previous.revision + 1) if previous else 1, recorded_by=recorded_by,
        recorded_at=now,
    )]


def decide_acknowledge(
    interview: Interview | None, agent_id: str, *, by: str, comment: str | None, now: datetime
) -> list[DomainEvent]:
    """The agent acknowledges the record, once; nobody else can."""
    if by != agent_id:
        raise Forbidden("only the agent acknowledges their interview record")
    current = _scheduled(interview, agent_id)
    s = current.schedule
    assert s is not None
    if current.record is None:
        raise Conflict("the interview has not been recorded yet; nothing to acknowledge")
    if current.acknowledged is not None:
        when = current.acknowledged.acknowledged_at.isoformat()
        raise Conflict(f"the record was already acknowledged on {when}")
    return [InterviewAcknowledged(
        team_id=s.team_id, period=s.period, agent_id=agent_id,
        comment=comment.strip() if comment and comment.strip() else None, acknowledged_at=now,
    )]
