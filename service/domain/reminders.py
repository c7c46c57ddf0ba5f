"""Email reminders, the pure part: which events and deadlines remind whom, and the words.

``KINDS`` is the table of reminder kinds. A kind caused by an event names the event type, its
stream type and a ``derive`` function that says whom it reminds of what; the reminders
projection (service/projections/reminders.py) reads exactly the event types of this table. A
kind that comes from the clock (a deadline nearing) has no event: the scheduler
(service/scheduler.py) makes its reminders. Adding a kind is one entry here and its words in
the catalogues (service/locale/*/LC_MESSAGES/mail.po): ``ResultReleased`` and
``AppealDecided`` (the feedback work) will be one entry each.

Every reminder has an idempotency key, (person, kind, subject): the same reminder made twice,
by a replayed event or a second scheduler pass, is the same outbox row.

The words are gettext message ids with ``{placeholders}`` filled by ``str.format``; the
catalogues translate them, and tests/unit/test_reminders.py fails when a catalogue lacks a
message id or a translation drops or invents a placeholder.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from service.domain import cycle as c
from service.domain.cycle import CyclePublished
from service.domain.events import DomainEvent
from service.domain.release import AppealDecided, ResultReleased
from service.domain.sanctions import PlanOverdue

REMINDER_NAMESPACE = uuid.UUID("5c0f7a3e-2b1d-4d8e-9a61-3f4e2c7b9d10")
MESSAGE_NAMESPACE = uuid.UUID("a3d1e6c2-7f45-4b09-8e2a-61c5d9f0b7e4")
#: How many days before a cycle's evaluation deadline its raters are reminded.
EVALUATION_NOTICE_DAYS = 3
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Reminder:
    """One thing a person is reminded of."""

    person_id: str
    kind: str
    #: What it is about ("team:period:p1"); with the person and kind, its idempotency key.
    subject: str
    params: Mapping[str, str]

    @property
    def reminder_id(self) -> uuid.UUID:
        """Return the idempotency key: the same for the same person, kind and subject."""
        return reminder_id(self.person_id, self.kind, self.subject)


def reminder_id(person_id: str, kind: str, subject: str) -> uuid.UUID:
    """Return the id of the reminder of a person, of a kind, about a subject."""
    return uuid.uuid5(REMINDER_NAMESPACE, f"{person_id}\x1f{kind}\x1f{subject}")


def digest_message_id(person_id: str, day: date) -> uuid.UUID:
    """Return the id of a person's digest of a day (at most one a day: one id a day)."""
    return uuid.uuid5(MESSAGE_NAMESPACE, f"digest\x1f{person_id}\x1f{day.isoformat()}")


def urgent_message_id(reminder: uuid.UUID) -> uuid.UUID:
    """Return the id of the email that carries one urgent reminder on its own."""
    return uuid.uuid5(MESSAGE_NAMESPACE, f"urgent\x1f{reminder}")


Derive = Callable[[DomainEvent], list[Reminder]]


@dataclass(frozen=True)
class Kind:
    """A kind of reminder: its words, whether it waits for the digest, and its cause."""

    name: str
    #: The email's subject when this is the only reminder in it (a gettext message id).
    title: str
    #: Its line in the email, with ``{placeholders}`` (a gettext message id).
    line: str
    #: Sent at once, in an email of its own, instead of in the day's digest.
    urgent: bool = False
    #: For a kind an event causes: the event type, its stream type, and whom it reminds.
    event_type: str | None = None
    stream_type: str | None = None
    derive: Derive | None = None


def _plans_due(e: DomainEvent) -> list[Reminder]:
    assert isinstance(e, CyclePublished)
    # One per agent and month: a correction's republication that still asks for the plan
    # continues the same obligation (service/domain/sanctions.py), so it reminds no one again.
    return [
        Reminder(d.agent_id, "plan_due", f"{e.team_id}:{e.period}",
                 {"team_id": e.team_id, "period": e.period, "due_at": d.due_at.isoformat()})
        for d in e.decisions if d.kind == "improvement_plan" and d.due_at is not None
    ]


def _plan_overdue(e: DomainEvent) -> list[Reminder]:
    assert isinstance(e, PlanOverdue)
    return [Reminder(e.agent_id, "plan_overdue", f"{e.team_id}:{e.period}:p{e.publication}",
                     {"team_id": e.team_id, "period": e.period,
                      "due_at": e.due_at.isoformat()})]


def _result_released(e: DomainEvent) -> list[Reminder]:
    assert isinstance(e, ResultReleased)
    # One per agent and month: the release is recorded once on the agent's result stream.
    return [Reminder(e.agent_id, "result_released", f"{e.team_id}:{e.period}",
                     {"team_id": e.team_id, "period": e.period,
                      "appeal_until": e.appeal_until.isoformat()})]


def _appeal_decided(e: DomainEvent) -> list[Reminder]:
    assert isinstance(e, AppealDecided)
    kind = "appeal_upheld" if e.decision == "uphold" else "appeal_amended"
    return [Reminder(e.agent_id, kind, e.appeal_id,
                     {"team_id": e.team_id, "period": e.period, "note": e.note or ""})]


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("evaluation_due",
         title="Evaluations are due soon",
         line="Evaluations for {team} {period} are due by {deadline}. Still to give: {agents}."),
    Kind("plan_due",
         title="An improvement plan is due",
         line="Your improvement plan for {team} {period} is due by {due_at}.",
         event_type="CyclePublished", stream_type="cycle", derive=_plans_due),
    Kind("plan_overdue",
         title="Your improvement plan is overdue",
         line="Your improvement plan for {team} {period} was due by {due_at} and is overdue."
              " Submit it as soon as you can.",
         urgent=True, event_type="PlanOverdue", stream_type="plan", derive=_plan_overdue),
    Kind("result_released",
         title="Your monthly result is ready",
         line="Your result for {team} {period} is ready to read. If you disagree, you may"
              " appeal it once until {appeal_until}.",
         event_type="ResultReleased", stream_type="result", derive=_result_released),
    # An appeal's decision: one event, two wordings (the kind follows the decision).
    Kind("appeal_upheld",
         title="Your appeal was decided",
         line="Your appeal of {team} {period} was decided: the result stands. {note}",
         event_type="AppealDecided", stream_type="result", derive=_appeal_decided),
    Kind("appeal_amended",
         title="Your appeal was decided",
         line="Your appeal of {team} {period} was granted: the month is being corrected. {note}"),
)}

#: The kinds an event causes, by event type.
BY_EVENT: dict[str, Kind] = {k.event_type: k for k in KINDS.values() if k.event_type}

DIGEST_TITLE = "Your csperf reminders"
GREETING = "Hello,"
FOOTER = ("You receive these reminders from csperf. To stop them, turn reminders off"
          " for {person}: PUT /v1/people/{person} with reminders set to off.")

#: Every message id an email uses: the catalogues must translate each one.
MESSAGES: tuple[str, ...] = (
    DIGEST_TITLE, GREETING, FOOTER,
    *(k.title for k in KINDS.values()), *(k.line for k in KINDS.values()),
)

#: Parameters that hold an instant, shown in the reader's language and the team's time zone.
_INSTANTS = ("due_at", "deadline", "appeal_until")


def derive(e: DomainEvent) -> list[Reminder]:
    """Return the reminders an event causes (none for an event no kind names)."""
    kind = BY_EVENT.get(e.type)
    return kind.derive(e) if kind is not None and kind.derive is not None else []


def placeholders(text: str) -> set[str]:
    """Return the placeholder names in a message."""
    return set(PLACEHOLDER.findall(text))


Translate = Callable[[str], str]


def _fill(translate: Translate, message: str, values: Mapping[str, str]) -> str:
    # A translation whose placeholders went wrong falls back to English rather than failing
    # the whole email (the catalogue test keeps that from happening).
    try:
        return translate(message).format(**values)
    except (KeyError, IndexError, ValueError):
        return message.format(**values)


@dataclass(frozen=True)
class TeamView:
    """What an email shows of a team: its name, and its time zone for the instants."""

    name: str
    timezone: str = "UTC"


def shown(params: Mapping[str, str], locale: str, teams: Mapping[str, TeamView]
          ) -> dict[str, str]:
    """Return the parameters as a reader of ``locale`` sees them: the team by name, instants
    in their language and the team's time zone."""
    values = dict(params)
    team = teams.get(params.get("team_id", ""))
    values["team"] = team.name if team is not None else params.get("team_id", "")
    tz = ZoneInfo(team.timezone if team is not None else "UTC")
    for name in _INSTANTS:
        if name in values:
            moment = datetime.fromisoformat(values[name])
            values[name] = format_datetime(moment, "medium", tzinfo=tz, locale=locale) \
                + f" ({tz.key})"
    return values


@dataclass(frozen=True)
class Email:
    """The words of one email."""

    subject: str
    body: str


def render(person_id: str, reminders: Sequence[Reminder], locale: str,
           translate: Translate, teams: Mapping[str, TeamView]) -> Email:
    """Write the email of some reminders to a person, in their language."""
    lines = [_fill(translate, KINDS[r.kind].line, shown(r.params, locale, teams))
             for r in reminders]
    subject = (translate(KINDS[reminders[0].kind].title) if len(reminders) == 1
               else translate(DIGEST_TITLE))
    body = "\n\n".join([translate(GREETING), *(f"- {line}" for line in lines),
                        _fill(translate, FOOTER, {"person": person_id})])
    return Email(subject=subject, body=body + "\n")


def evaluations_owed(cycle: c.Cycle, roster: Sequence[c.RosterEntry],
                     missing: Sequence[c.MissingEvaluation], manager_ids: Sequence[str]
                     ) -> list[Reminder]:
    """Return one reminder per rater who still owes evaluations of the cycle: the agent their
    self-evaluation, each manager of the team the manager evaluations, an invited rater theirs."""
    names = {a.agent_id: a.name for a in roster}
    owed: dict[str, set[str]] = {}
    for m in missing:
        raters = [m.agent_id] if m.rater_role == "self" else (
            list(manager_ids) if m.rater_role == "manager" else [])
        for rater in raters:
            owed.setdefault(rater, set()).add(m.agent_id)
    for item in c.invited_missing(cycle, roster):
        owed.setdefault(item["rater_id"], set()).add(item["agent_id"])
    return [
        Reminder(person, "evaluation_due", f"{cycle.team_id}:{cycle.period}", {
            "team_id": cycle.team_id, "period": cycle.period,
            "deadline": cycle.deadline.isoformat(),
            "agents": ", ".join(sorted(names.get(a, a) for a in agents)),
        })
        for person, agents in sorted(owed.items())
    ]


@dataclass(frozen=True)
class Pending:
    """A recorded reminder not yet in an email."""

    reminder_id: uuid.UUID
    reminder: Reminder
    created_at: datetime

    @property
    def urgent(self) -> bool:
        """Tell whether it goes out at once, on its own."""
        kind = KINDS.get(self.reminder.kind)
        return kind is not None and kind.urgent


def digest_day(now: datetime) -> date:
    """Return the day a digest sent now counts against (UTC)."""
    return now.astimezone(ZoneInfo("UTC")).date()


def due_now(pending: Sequence[Pending], *, now: datetime, hold_seconds: float,
            digest_sent_today: bool) -> tuple[list[Pending], list[Pending]]:
    """Split a person's pending reminders into the urgent ones (each an email now) and the
    day's digest (empty while it must wait: one went out today already, or the oldest item has
    not waited ``hold_seconds`` for others to join it)."""
    urgent = [p for p in pending if p.urgent]
    rest = [p for p in pending if not p.urgent]
    if digest_sent_today or not rest:
        return urgent, []
    oldest = min(p.created_at for p in rest)
    if (now - oldest).total_seconds() < hold_seconds:
        return urgent, []
    return urgent, rest
