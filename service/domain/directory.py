"""Teams and agents: event-sourced aggregates; a changed team is a transfer that keeps history."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from babel import Locale, UnknownLocaleError

from service.domain.errors import DomainError, FieldError, NotFound
from service.domain.events import DomainEvent, event
from service.domain.ids import ID_RE, ID_RULE
from service.domain.kpis import TeamTarget
from service.domain.periods import zone
from service.domain.presence import ABSENCE_KINDS, AbsenceKind, DateRange, Span

DEFAULT_TIMEZONE = "UTC"
DEFAULT_CURRENCY = "CNY"
DEFAULT_SCHEME_ID = "online-shop-cs"


def check_id(value: str, field_name: str) -> None:
    """Refuse an id outside the API's id alphabet."""
    if not ID_RE.fullmatch(value):
        raise DomainError(f"invalid {field_name}", [FieldError(field_name, ID_RULE)])


def team_stream(team_id: str) -> str:
    """Return the stream id of a team."""
    return f"team:{team_id}"


def agent_stream(agent_id: str) -> str:
    """Return the stream id of an agent."""
    return f"agent:{agent_id}"


# --- events -------------------------------------------------------------------------------


class TeamStated(DomainEvent):
    """What both team events carry: the whole team as it is from now on."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: tuple[str, ...]
    scheme_id: str
    #: The team's own KPI targets and floors over the scheme's (absent on older events).
    kpi_targets: dict[str, TeamTarget] = {}
    #: The language and conventions its pages default to, a CLDR locale such as ``ko`` or
    #: ``de_DE`` (absent on older events, and None when the team has none).
    locale: str | None = None


@event
class TeamRegistered(TeamStated):
    """A team was created."""

    type: Literal["TeamRegistered"] = "TeamRegistered"


@event
class TeamChanged(TeamStated):
    """A team's name, time zone, currency, managers or scheme changed."""

    type: Literal["TeamChanged"] = "TeamChanged"


@event
class AgentRegistered(DomainEvent):
    """An agent joined the service in a team."""

    type: Literal["AgentRegistered"] = "AgentRegistered"
    agent_id: str
    name: str
    team_id: str
    position: str | None
    effective_at: datetime


@event
class AgentChanged(DomainEvent):
    """An agent's name or position changed."""

    type: Literal["AgentChanged"] = "AgentChanged"
    agent_id: str
    name: str
    position: str | None


@event
class AgentTransferred(DomainEvent):
    """An agent moved to another team; samples before effective_at stay with the old one."""

    type: Literal["AgentTransferred"] = "AgentTransferred"
    agent_id: str
    from_team_id: str
    to_team_id: str
    effective_at: datetime


@event
class AgentEmploymentChanged(DomainEvent):
    """An agent's employment span (hire and leaving dates, team time zone) was set."""

    type: Literal["AgentEmploymentChanged"] = "AgentEmploymentChanged"
    agent_id: str
    hired_on: date | None
    left_on: date | None


@event
class AbsenceRecorded(DomainEvent):
    """An absence of an agent was recorded, or changed (same absence_id): dates inclusive."""

    type: Literal["AbsenceRecorded"] = "AbsenceRecorded"
    agent_id: str
    absence_id: str
    from_date: date
    to_date: date
    kind: AbsenceKind
    note: str | None = None
    recorded_at: datetime


@event
class AbsenceCancelled(DomainEvent):
    """A recorded absence was cancelled; the record stays in the agent's history."""

    type: Literal["AbsenceCancelled"] = "AbsenceCancelled"
    agent_id: str
    absence_id: str
    cancelled_at: datetime


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    """A team as its stream tells it."""

    team_id: str
    name: str
    timezone: str
    currency: str
    manager_ids: tuple[str, ...]
    scheme_id: str
    version: int = 0
    kpi_targets: Mapping[str, TeamTarget] = field(default_factory=dict)
    locale: str | None = None


@dataclass(frozen=True)
class Membership:
    """A stretch of time an agent spent in a team (until None: still there)."""

    team_id: str
    since: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class Absence:
    """An absence as recorded last, and whether it was cancelled."""

    absence_id: str
    from_date: date
    to_date: date
    kind: AbsenceKind
    note: str | None
    recorded_at: datetime
    revision: int = 1
    cancelled_at: datetime | None = None

    @property
    def dates(self) -> DateRange:
        """Return the absence's inclusive date range."""
        return DateRange(self.from_date, self.to_date)


@dataclass(frozen=True)
class Agent:
    """An agent as its stream tells it."""

    agent_id: str
    name: str
    team_id: str
    position: str | None
    history: tuple[Membership, ...] = field(default_factory=tuple)
    version: int = 0
    hired_on: date | None = None
    left_on: date | None = None
    absences: Mapping[str, Absence] = field(default_factory=dict)

    @property
    def span(self) -> Span:
        """Return the employment span."""
        return Span(self.hired_on, self.left_on)

    def active_absences(self) -> list[DateRange]:
        """Return the date ranges of the absences not cancelled."""
        return [a.dates for a in self.absences.values() if a.cancelled_at is None]


def evolve_team(state: Team | None, e: DomainEvent) -> Team | None:
    """Apply one team event."""
    if isinstance(e, TeamStated):
        version = state.version if state else 0
        return Team(e.team_id, e.name, e.timezone, e.currency, e.manager_ids, e.scheme_id,
                    version + 1, dict(e.kpi_targets), e.locale)
    return state


def evolve_agent(state: Agent | None, e: DomainEvent) -> Agent | None:
    """Apply one agent event."""
    if isinstance(e, AgentRegistered):
        return Agent(e.agent_id, e.name, e.team_id, e.position,
                     (Membership(e.team_id, e.effective_at),), 1)
    if state is None:
        return None
    if isinstance(e, AgentChanged):
        return replace(state, name=e.name, position=e.position, version=state.version + 1)
    if isinstance(e, AgentTransferred):
        closed = replace(state.history[-1], until=e.effective_at)
        history = (*state.history[:-1], closed, Membership(e.to_team_id, e.effective_at))
        return replace(state, team_id=e.to_team_id, history=history, version=state.version + 1)
    if isinstance(e, AgentEmploymentChanged):
        return replace(state, hired_on=e.hired_on, left_on=e.left_on, version=state.version + 1)
    if isinstance(e, AbsenceRecorded):
        previous = state.absences.get(e.absence_id)
        absence = Absence(e.absence_id, e.from_date, e.to_date, e.kind, e.note, e.recorded_at,
                          previous.revision + 1 if previous else 1)
        return replace(state, absences={**state.absences, e.absence_id: absence},
                       version=state.version + 1)
    if isinstance(e, AbsenceCancelled):
        cancelled = replace(state.absences[e.absence_id], cancelled_at=e.cancelled_at)
        return replace(state, absences={**state.absences, e.absence_id: cancelled},
                       version=state.version + 1)
    return state


def team_at(agent: Agent, moment: datetime) -> str | None:
    """Return the team the agent belonged to at a moment (None before they joined)."""
    for stretch in reversed(agent.history):
        if stretch.since <= moment and (stretch.until is None or moment < stretch.until):
            return stretch.team_id
    # Samples that predate registration belong to the first team: the agent was working
    # before someone entered them in the directory.
    return agent.history[0].team_id if agent.history and moment < agent.history[0].since else None


# --- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PutTeam:
    """Create or change a team (PUT semantics: fields left out keep their value)."""

    team_id: str
    name: str
    timezone: str | None = None
    currency: str | None = None
    manager_ids: Sequence[str] | None = None
    scheme_id: str | None = None
    #: None keeps the team's; {} clears them. Checked against the scheme by the caller.
    kpi_targets: Mapping[str, TeamTarget] | None = None
    #: None keeps the team's; "" clears it; else a language tag (``zh-Hans``, ``de-DE``).
    locale: str | None = None


def decide_put_team(state: Team | None, cmd: PutTeam) -> list[DomainEvent]:
    """Register a new team or record what changed; nothing when nothing changed."""
    check_id(cmd.team_id, "team_id")
    problems: list[FieldError] = []
    timezone = cmd.timezone or (state.timezone if state else DEFAULT_TIMEZONE)
    try:
        zone(timezone)
    except DomainError as exc:
        problems.extend(exc.errors)
    currency = (cmd.currency or (state.currency if state else DEFAULT_CURRENCY)).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        problems.append(FieldError("currency", "an ISO 4217 code of three letters"))
    managers = tuple(cmd.manager_ids) if cmd.manager_ids is not None else (
        state.manager_ids if state else ()
    )
    for index, manager in enumerate(managers):
        if not ID_RE.fullmatch(manager):
            problems.append(FieldError(f"manager_ids[{index}]", ID_RULE))
    scheme_id = cmd.scheme_id or (state.scheme_id if state else DEFAULT_SCHEME_ID)
    locale = state.locale if state else None
    if cmd.locale is not None:
        locale = team_locale(cmd.locale) if cmd.locale.strip() else None
        if cmd.locale.strip() and locale is None:
            problems.append(FieldError("locale", "a language tag CLDR knows, such as ko,"
                                                 " zh-Hans or de-DE (or \"\" to clear it)"))
    if not cmd.name.strip():
        problems.append(FieldError("name", "must not be blank"))
    if problems:
        raise DomainError("invalid team", problems)
    targets = dict(cmd.kpi_targets) if cmd.kpi_targets is not None else (
        dict(state.kpi_targets) if state else {})
    fields = dict(team_id=cmd.team_id, name=cmd.name.strip(), timezone=timezone,
                  currency=currency, manager_ids=tuple(dict.fromkeys(managers)),
                  scheme_id=scheme_id, kpi_targets=targets, locale=locale)
    if state is None:
        return [TeamRegistered(**fields)]
    if (state.name, state.timezone, state.currency, state.manager_ids, state.scheme_id,
            dict(state.kpi_targets), state.locale) == (
        fields["name"], timezone, currency, fields["manager_ids"], scheme_id, targets, locale
    ):
        return []
    return [TeamChanged(**fields)]


@dataclass(frozen=True)
class PutAgent:
    """Create or change an agent; a different team_id is a transfer."""

    agent_id: str
    name: str
    team_id: str
    position: str | None = None
    hired_on: date | None = None
    left_on: date | None = None
    #: Which of hired_on and left_on the caller sent (PUT semantics: a date left out keeps its
    #: value; one sent as null clears it, as when a leaver is re-hired).
    dates_sent: frozenset[str] = frozenset()


def _employment(state: Agent | None, cmd: PutAgent) -> tuple[date | None, date | None]:
    hired = cmd.hired_on if "hired_on" in cmd.dates_sent else (state.hired_on if state else None)
    left = cmd.left_on if "left_on" in cmd.dates_sent else (state.left_on if state else None)
    if hired is not None and left is not None and left < hired:
        raise DomainError("invalid employment span", [FieldError(
            "left_on", f"{left.isoformat()} is before hired_on {hired.isoformat()}")])
    return hired, left


def decide_put_agent(state: Agent | None, cmd: PutAgent, now: datetime) -> list[DomainEvent]:
    """Register, change or transfer an agent; the caller has checked that the team exists."""
    check_id(cmd.agent_id, "agent_id")
    check_id(cmd.team_id, "team_id")
    if not cmd.name.strip():
        raise DomainError("invalid agent", [FieldError("name", "must not be blank")])
    position = cmd.position.strip() if cmd.position else None
    hired, left = _employment(state, cmd)
    employment: list[DomainEvent] = []
    if (hired, left) != ((state.hired_on, state.left_on) if state else (None, None)):
        employment.append(AgentEmploymentChanged(agent_id=cmd.agent_id, hired_on=hired,
                                                 left_on=left))
    if state is None:
        return [AgentRegistered(agent_id=cmd.agent_id, name=cmd.name.strip(),
                                team_id=cmd.team_id, position=position, effective_at=now),
                *employment]
    events: list[DomainEvent] = list(employment)
    if (state.name, state.position) != (cmd.name.strip(), position if cmd.position is not None
                                        else state.position):
        events.append(AgentChanged(agent_id=cmd.agent_id, name=cmd.name.strip(),
                                   position=position if cmd.position is not None
                                   else state.position))
    if state.team_id != cmd.team_id:
        events.append(AgentTransferred(agent_id=cmd.agent_id, from_team_id=state.team_id,
                                       to_team_id=cmd.team_id, effective_at=now))
    return events


@dataclass(frozen=True)
class PutAbsence:
    """Record or change an absence of an agent (dates inclusive, team time zone)."""

    agent_id: str
    absence_id: str
    from_date: date
    to_date: date
    kind: str
    note: str | None = None


def decide_put_absence(state: Agent | None, cmd: PutAbsence, now: datetime
                       ) -> list[DomainEvent]:
    """Record an absence inside the employment span; nothing when it is unchanged."""
    if state is None:
        raise NotFound(f"no agent {cmd.agent_id}")
    check_id(cmd.absence_id, "absence_id")
    problems: list[FieldError] = []
    if cmd.kind not in ABSENCE_KINDS:
        problems.append(FieldError("kind", f"one of {list(ABSENCE_KINDS)}"))
    if cmd.to_date < cmd.from_date:
        problems.append(FieldError(
            "to", f"{cmd.to_date.isoformat()} is before from {cmd.from_date.isoformat()}"))
    span = state.span
    if span.hired_on is not None and cmd.from_date < span.hired_on:
        problems.append(FieldError(
            "from", f"before the employment span: hired_on is {span.hired_on.isoformat()}"))
    if span.left_on is not None and cmd.to_date > span.left_on:
        problems.append(FieldError(
            "to", f"after the employment span: left_on is {span.left_on.isoformat()}"))
    if problems:
        raise DomainError("invalid absence", problems)
    note = cmd.note.strip() if cmd.note and cmd.note.strip() else None
    current = state.absences.get(cmd.absence_id)
    if current is not None and current.cancelled_at is None and (
        current.from_date, current.to_date, current.kind, current.note
    ) == (cmd.from_date, cmd.to_date, cmd.kind, note):
        return []
    return [AbsenceRecorded(agent_id=cmd.agent_id, absence_id=cmd.absence_id,
                            from_date=cmd.from_date, to_date=cmd.to_date,
                            kind=cmd.kind,
                            note=note, recorded_at=now)]


def decide_cancel_absence(state: Agent | None, agent_id: str, absence_id: str, now: datetime
                          ) -> list[DomainEvent]:
    """Cancel an absence (kept in the history); cancelling it again changes nothing."""
    if state is None:
        raise NotFound(f"no agent {agent_id}")
    current = state.absences.get(absence_id)
    if current is None:
        raise NotFound(f"agent {agent_id} has no absence {absence_id}")
    if current.cancelled_at is not None:
        return []
    return [AbsenceCancelled(agent_id=agent_id, absence_id=absence_id, cancelled_at=now)]


# --- people: how to reach a person (agents, managers, raters) --------------------------------

#: The languages of reminders: English, Korean, Simplified Chinese (gettext catalogue names).
LOCALES: tuple[str, ...] = ("en", "ko", "zh_Hans")
DEFAULT_LOCALE = "en"
MAX_EMAIL = 254
#: A deliberately plain check: one @, a dot in the domain, no spaces or line breaks (a line
#: break in an address would let it write headers of its own). The mail server has the last word.
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


def person_stream(person_id: str) -> str:
    """Return the stream id of a person's contact details."""
    return f"person:{person_id}"


@event
class PersonContactChanged(DomainEvent):
    """A person's email address, language or reminder choice was set (all three as they are now)."""

    type: Literal["PersonContactChanged"] = "PersonContactChanged"
    person_id: str
    email: str | None
    locale: str
    reminders: bool


@dataclass(frozen=True)
class Person:
    """How to reach a person: an agent, a manager (an id in a team's manager_ids) or a rater."""

    person_id: str
    email: str | None = None
    locale: str = DEFAULT_LOCALE
    reminders: bool = True
    version: int = 0


def evolve_person(state: Person | None, e: DomainEvent) -> Person | None:
    """Apply one person event."""
    if isinstance(e, PersonContactChanged):
        return Person(e.person_id, e.email, e.locale, e.reminders,
                      (state.version if state else 0) + 1)
    return state


@dataclass(frozen=True)
class PutPerson:
    """Set a person's contact details; fields left out (not in ``sent``) keep their value."""

    person_id: str
    email: str | None = None
    locale: str | None = None
    reminders: bool | None = None
    sent: frozenset[str] = frozenset()


def team_locale(tag: str) -> str | None:
    """Return a team's locale as CLDR names it (``de-de`` is ``de_DE``), None if CLDR has none.

    Any CLDR locale is a team's: its conventions format the team's numbers and dates for a
    reader of its language; its language is the pages' default only where we have that
    language's catalogue (LOCALES), and English otherwise.
    """
    text = tag.strip().replace("-", "_")
    if not text or len(text) > 35 or not re.fullmatch(r"[A-Za-z0-9_]+", text):
        return None
    try:
        return str(Locale.parse(text))
    except (UnknownLocaleError, ValueError):
        return None


def normal_locale(value: str) -> str | None:
    """Return the catalogue name of a language tag (``zh-Hans`` is ``zh_Hans``), None if unknown."""
    wanted = value.strip().replace("-", "_").lower()
    return next((name for name in LOCALES if name.lower() == wanted), None)


def decide_put_person(state: Person | None, cmd: PutPerson) -> list[DomainEvent]:
    """Record the person's contact details; nothing when nothing changed."""
    check_id(cmd.person_id, "person_id")
    current = state or Person(cmd.person_id)
    problems: list[FieldError] = []
    email = current.email
    if "email" in cmd.sent:
        email = cmd.email.strip() if cmd.email and cmd.email.strip() else None
        if email is not None and (len(email) > MAX_EMAIL or not EMAIL_PATTERN.fullmatch(email)):
            problems.append(FieldError("email", "an address like name@example.com, at most"
                                                f" {MAX_EMAIL} characters, or null for none"))
    locale = current.locale
    if "locale" in cmd.sent and cmd.locale is not None:
        found = normal_locale(cmd.locale)
        if found is None:
            problems.append(FieldError("locale", f"one of {list(LOCALES)}"))
        else:
            locale = found
    reminders = cmd.reminders if "reminders" in cmd.sent and cmd.reminders is not None \
        else current.reminders
    if problems:
        raise DomainError("invalid contact details", problems)
    if state is not None and (state.email, state.locale, state.reminders) == (
            email, locale, reminders):
        return []
    return [PersonContactChanged(person_id=cmd.person_id, email=email, locale=locale,
                                 reminders=reminders)]
